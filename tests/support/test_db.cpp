#include "test_db.hpp"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <pqxx/pqxx>
#include <random>

namespace stepwise::test {

std::string admin_url() {
  const char* u = std::getenv("STEPWISE_TEST_DATABASE_URL");
  return u ? u : "";
}

std::string with_database(const std::string& url, const std::string& db) {
  // postgres://user:pw@host:port/dbname[?params]
  const auto scheme = url.find("://");
  const auto slash = url.find('/', scheme == std::string::npos ? 0 : scheme + 3);
  const auto q = url.find('?', slash == std::string::npos ? 0 : slash);
  const std::string base = slash == std::string::npos ? url : url.substr(0, slash);
  const std::string params = q == std::string::npos ? "" : url.substr(q);
  return base + "/" + db + params;
}

namespace {
std::string random_name() {
  std::random_device rd;
  std::mt19937_64 gen(rd() ^ static_cast<unsigned long long>(getpid()));
  static const char* hex = "0123456789abcdef";
  std::string s = "sw_";
  for (int i = 0; i < 12; ++i) s += hex[gen() % 16];
  return s;
}
}  // namespace

TestDb::TestDb() : name_(random_name()) {
  pqxx::connection c(admin_url());
  pqxx::nontransaction w(c);
  // From template0: a test that puts objects into template1 for a moment (a DBA's extension)
  // must not leak them into the databases of tests running beside it.
  w.exec("CREATE DATABASE " + c.quote_name(name_) + " TEMPLATE template0");
  url_ = with_database(admin_url(), name_);
}

TestDb::~TestDb() {
  try {
    pqxx::connection c(admin_url());
    pqxx::nontransaction w(c);
    try {
      w.exec("DROP DATABASE IF EXISTS " + c.quote_name(name_) + " WITH (FORCE)");
    } catch (const pqxx::sql_error&) {
      w.exec("DROP DATABASE IF EXISTS " + c.quote_name(name_) +
             " CASCADE");  // CockroachDB's spelling
    }
  } catch (...) {
  }
}

std::vector<std::vector<std::string>> TestDb::query(const std::string& sql) const {
  pqxx::connection c(url_);
  pqxx::nontransaction w(c);
  const auto r = w.exec(sql);
  std::vector<std::vector<std::string>> out;
  for (const auto& row : r) {
    std::vector<std::string> cols;
    for (const auto& f : row) cols.push_back(f.is_null() ? "" : f.c_str());
    out.push_back(std::move(cols));
  }
  return out;
}

std::string TestDb::scalar(const std::string& sql) const {
  const auto rows = query(sql);
  if (rows.empty() || rows[0].empty()) throw std::runtime_error("no rows: " + sql);
  return rows[0][0];
}

std::string TestDb::snapshot() const {
  static const char* kQuery = R"(
    SELECT 'column ' || c.relname || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod) ||
           CASE WHEN a.attnotnull THEN ' not null' ELSE '' END ||
           coalesce(' default ' || pg_get_expr(d.adbin, d.adrelid), '')
    FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
    LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
    WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast') AND a.attnum > 0
      AND NOT a.attisdropped AND c.relkind IN ('r', 'v', 'm', 'p') AND c.relname NOT LIKE 'stepwise\_log%'
    UNION ALL
    SELECT 'index ' || pg_get_indexdef(i.indexrelid) || CASE WHEN i.indisvalid THEN '' ELSE ' INVALID' END
    FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast') AND c.relname NOT LIKE 'stepwise\_log%'
    UNION ALL
    SELECT 'constraint ' || conrelid::regclass || ' ' || conname || ' ' || pg_get_constraintdef(oid)
    FROM pg_constraint WHERE connamespace NOT IN ('pg_catalog'::regnamespace, 'information_schema'::regnamespace)
      AND conrelid::regclass::text NOT LIKE 'stepwise\_log%'
    UNION ALL
    SELECT 'view ' || c.relname || ' ' || pg_get_viewdef(c.oid) FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('v', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
    UNION ALL
    SELECT 'enum ' || t.typname || ' ' || string_agg(e.enumlabel, ',' ORDER BY e.enumsortorder)
    FROM pg_type t JOIN pg_enum e ON e.enumtypid = t.oid GROUP BY t.typname
    UNION ALL
    SELECT 'function ' || p.oid::regprocedure || ' ' || md5(p.prosrc) FROM pg_proc p
    JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
    ORDER BY 1)";
  std::string out;
  for (const auto& row : query(kQuery)) out += row[0] + "\n";
  return out;
}

ProcessResult TestDb::stepwise(std::vector<std::string> args,
                               std::map<std::string, std::string> env,
                               std::chrono::milliseconds timeout) const {
  args.insert(args.begin(), {"--database-url", url_});
  // Keep the caller's environment from leaking a different database into the run.
  env.emplace("STEPWISE_DATABASE_URL", "");
  env.emplace("DATABASE_URL", "");
  return run(stepwise_cmd(std::move(args)), env, timeout);
}

MigrationDir::MigrationDir() {
  std::string tmpl = "/tmp/stepwise-migrations-XXXXXX";
  if (mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  path_ = tmpl;
}

MigrationDir::~MigrationDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

void MigrationDir::write(const std::string& name, const std::string& content) const {
  std::ofstream out(path_ + "/" + name, std::ios::binary);
  out << content;
}

void MigrationDir::remove(const std::string& name) const {
  std::filesystem::remove(path_ + "/" + name);
}

}  // namespace stepwise::test
