// Bad input, table-driven: every case runs the real binary against a fresh database and checks
// that it fails the documented way (docs/exit-codes.md) with a clear one-line error naming the
// culprit, never prints a password, and leaves the database exactly as it found it (catalog and
// the content of every table, the log table included, compared before and after).
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <pqxx/pqxx>
#include <random>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "tcp_forwarder.hpp"
#include "test_db.hpp"

namespace stepwise::test {
namespace {

// ---------------------------------------------------------------------------------------------
// The state of a database: every non-system schema, relation, column, index, constraint, type,
// function, trigger, sequence value and privilege, plus the full content of every table.

constexpr const char* kCatalogSnapshot = R"SQL(
WITH ns AS (
  SELECT oid, nspname FROM pg_catalog.pg_namespace
  WHERE nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
    AND nspname NOT LIKE 'pg\_temp\_%' AND nspname NOT LIKE 'pg\_toast\_temp\_%'
)
SELECT 'database acl ' || coalesce(d.datacl::text, '-')
  FROM pg_catalog.pg_database d WHERE d.datname = current_database()
UNION ALL
SELECT 'schema ' || ns.nspname || ' owner ' || pg_catalog.pg_get_userbyid(n.nspowner)
       || ' acl ' || coalesce(n.nspacl::text, '-')
  FROM pg_catalog.pg_namespace n JOIN ns ON ns.oid = n.oid
UNION ALL
SELECT 'relation ' || ns.nspname || '.' || c.relname || ' kind ' || c.relkind::text
       || ' owner ' || pg_catalog.pg_get_userbyid(c.relowner) || ' acl ' || coalesce(c.relacl::text, '-')
       || coalesce(' comment ' || pg_catalog.obj_description(c.oid, 'pg_class'), '')
       || CASE WHEN c.relkind IN ('i', 'I')
               THEN ' def ' || pg_catalog.pg_get_indexdef(c.oid)
                    || (SELECT CASE WHEN i.indisvalid THEN ' valid' ELSE ' INVALID' END
                          FROM pg_catalog.pg_index i WHERE i.indexrelid = c.oid)
               ELSE '' END
       || CASE WHEN c.relkind IN ('v', 'm') THEN ' def ' || pg_catalog.pg_get_viewdef(c.oid) ELSE '' END
  FROM pg_catalog.pg_class c JOIN ns ON ns.oid = c.relnamespace
UNION ALL
SELECT 'column ' || ns.nspname || '.' || c.relname || '.' || a.attname || ' '
       || pg_catalog.format_type(a.atttypid, a.atttypmod)
       || CASE WHEN a.attnotnull THEN ' not null' ELSE '' END
       || coalesce(' default ' || pg_catalog.pg_get_expr(ad.adbin, ad.adrelid), '')
  FROM pg_catalog.pg_attribute a
  JOIN pg_catalog.pg_class c ON c.oid = a.attrelid JOIN ns ON ns.oid = c.relnamespace
  LEFT JOIN pg_catalog.pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
  WHERE a.attnum > 0 AND NOT a.attisdropped
UNION ALL
SELECT 'constraint ' || ns.nspname || '.' || co.conname || ' on '
       || coalesce(NULLIF(co.conrelid, 0)::regclass::text, NULLIF(co.contypid, 0)::regtype::text, '-')
       || ' ' || pg_catalog.pg_get_constraintdef(co.oid)
  FROM pg_catalog.pg_constraint co JOIN ns ON ns.oid = co.connamespace
UNION ALL
SELECT 'type ' || ns.nspname || '.' || t.typname || ' ' || t.typtype::text
       || coalesce(' labels ' || (SELECT string_agg(e.enumlabel, ',' ORDER BY e.enumsortorder)
                                    FROM pg_catalog.pg_enum e WHERE e.enumtypid = t.oid), '')
  FROM pg_catalog.pg_type t JOIN ns ON ns.oid = t.typnamespace
UNION ALL
SELECT 'function ' || ns.nspname || '.' || p.proname || '('
       || pg_catalog.pg_get_function_identity_arguments(p.oid) || ') ' || p.prokind::text
       || ' returns ' || coalesce(pg_catalog.pg_get_function_result(p.oid), '-')
       || ' body ' || md5(coalesce(p.prosrc, ''))
  FROM pg_catalog.pg_proc p JOIN ns ON ns.oid = p.pronamespace
UNION ALL
SELECT 'trigger ' || tg.tgname || ' ' || pg_catalog.pg_get_triggerdef(tg.oid)
  FROM pg_catalog.pg_trigger tg JOIN pg_catalog.pg_class c ON c.oid = tg.tgrelid
  JOIN ns ON ns.oid = c.relnamespace WHERE NOT tg.tgisinternal
UNION ALL
SELECT 'sequence ' || s.schemaname || '.' || s.sequencename || ' last '
       || coalesce(s.last_value::text, 'null')
  FROM pg_catalog.pg_sequences s
UNION ALL
SELECT 'extension ' || x.extname || ' ' || x.extversion FROM pg_catalog.pg_extension x
UNION ALL
SELECT 'event trigger ' || et.evtname FROM pg_catalog.pg_event_trigger et
UNION ALL
SELECT 'policy ' || po.polname || ' on ' || po.polrelid::regclass::text FROM pg_catalog.pg_policy po
UNION ALL
SELECT 'default acl ' || coalesce(da.defaclacl::text, '-') FROM pg_catalog.pg_default_acl da
ORDER BY 1
)SQL";

constexpr const char* kTables = R"SQL(
SELECT format('%I.%I', n.nspname, c.relname)
  FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind IN ('r', 'p')
   AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
   AND n.nspname NOT LIKE 'pg\_temp\_%' AND n.nspname NOT LIKE 'pg\_toast\_temp\_%'
 ORDER BY 1
)SQL";

std::vector<std::string> snapshot(const TestDb& db) {
  pqxx::connection c(db.url());
  pqxx::nontransaction w(c);
  std::vector<std::string> out;
  for (const auto& row : w.exec(kCatalogSnapshot)) out.emplace_back(row[0].c_str());
  for (const auto& t : w.exec(kTables)) {
    const std::string table = t[0].c_str();
    for (const auto& row : w.exec("SELECT t::text FROM " + table + " t ORDER BY 1"))
      out.push_back("row " + table + " " + row[0].c_str());
  }
  return out;
}

std::string diff(const std::vector<std::string>& before, const std::vector<std::string>& after) {
  const std::multiset<std::string> b(before.begin(), before.end()), a(after.begin(), after.end());
  std::ostringstream s;
  for (const auto& x : b)
    if (a.count(x) < b.count(x)) s << "  - " << x << "\n";
  for (const auto& x : a)
    if (b.count(x) < a.count(x)) s << "  + " << x << "\n";
  return s.str();
}

// ---------------------------------------------------------------------------------------------
// The table of cases.

// What the case prepared, for building the command line and the expected culprits.
struct Ctx {
  TestDb& db;
  MigrationDir& dir;
  std::string& role;          // a login role the case created (dropped after the case)
  std::string role_password;  // its password: never printed
  std::string role_url;       // this database, as that role
};

struct Invocation {
  std::vector<std::string> args;
  std::map<std::string, std::string> env;
  bool own_url = false;  // args carry their own --database-url (else this database, as admin)
};

enum class Expect {
  kError,    // non-zero exit, "stepwise: error: ..." naming the culprit
  kWarning,  // exit 0 with a warning line naming the culprit; nothing changed
  kOk,       // exit 0, no error; nothing changed
};

struct Case {
  Case(std::string name_, std::function<void(Ctx&)> setup_,
       std::function<Invocation(const Ctx&)> invoke_, int exit_code_,
       std::vector<std::string> culprits_, Expect expect_ = Expect::kError, int problems_ = 1,
       std::vector<std::string> anywhere_ = {}, bool logs_first_ = false,
       std::vector<std::string> secrets_ = {})
      : name(std::move(name_)),
        setup(std::move(setup_)),
        invoke(std::move(invoke_)),
        exit_code(exit_code_),
        culprits(std::move(culprits_)),
        expect(expect_),
        problems(problems_),
        anywhere(std::move(anywhere_)),
        logs_first(logs_first_),
        secrets(std::move(secrets_)) {}

  std::string name;
  std::function<void(Ctx&)> setup;  // files and prior state; runs before the "before" snapshot
  std::function<Invocation(const Ctx&)> invoke;
  int exit_code;
  // Each must appear in the first error line (kError) / a warning line (kWarning) / stdout (kOk).
  // "{dir}", "{db}", "{port}" and "{role}" are replaced by the case's values.
  std::vector<std::string> culprits;
  Expect expect;
  int problems;                       // number of "stepwise: error:" lines: one per problem
  std::vector<std::string> anywhere;  // each must appear in some error line
  bool logs_first;                    // progress log lines may precede the error
  std::vector<std::string> secrets;   // must never be printed
};

// gtest prints a parameter when a case fails: its name says it all.
void PrintTo(const Case& c, std::ostream* os) {
  *os << c.name;
}

std::string host_of(const std::string& url) {
  const auto at = url.find('@');
  const auto colon = url.find(':', at);
  return url.substr(at + 1, colon - at - 1);
}

std::string password_of(const std::string& url) {
  const auto scheme = url.find("://") + 3;
  const auto at = url.find('@', scheme);
  const auto colon = url.find(':', scheme);
  return url.substr(colon + 1, at - colon - 1);
}

std::string user_url(const TestDb& db, const std::string& user, const std::string& password,
                     const std::string& database) {
  return "postgres://" + user + ":" + password + "@" + host_of(db.url()) + ":" +
         std::to_string(server_port(db.url())) + "/" + database;
}

std::string replace_all(std::string s, const std::string& what, const std::string& with) {
  for (auto pos = s.find(what); pos != std::string::npos; pos = s.find(what, pos + with.size()))
    s.replace(pos, what.size(), with);
  return s;
}

// Setup helpers -------------------------------------------------------------------------------

using Files = std::vector<std::pair<std::string, std::string>>;

std::function<void(Ctx&)> files(Files fs) {
  return [fs = std::move(fs)](Ctx& c) {
    for (const auto& [name, content] : fs) c.dir.write(name, content);
  };
}

// A valid file next to the bad ones, so that the set would otherwise do something.
const std::pair<std::string, std::string> kGood{"1_good.up.sql", "CREATE TABLE good (id int);\n"};

std::function<void(Ctx&)> good_plus(Files fs) {
  fs.insert(fs.begin(), kGood);
  return files(std::move(fs));
}

// Three valid migrations and a releases.json.
std::function<void(Ctx&)> releases(std::string json) {
  return files({{"1_a.up.sql", "CREATE TABLE a (id int);\n"},
                {"2_b.up.sql", "CREATE TABLE b (id int);\n"},
                {"3_c.up.sql", "CREATE TABLE c (id int);\n"},
                {"releases.json", std::move(json)}});
}

void run_ok(const Ctx& c, const std::vector<std::string>& args) {
  const auto r = c.db.stepwise(args);
  ASSERT_EQ(r.exit_code, 0) << "setup run failed:\n" << r.err;
}

// Writes files, applies them with `up --source`, then writes `then` (and removes `gone`).
std::function<void(Ctx&)> applied_then(Files first, Files then,
                                       std::vector<std::string> gone = {}) {
  return [=](Ctx& c) {
    for (const auto& [name, content] : first) c.dir.write(name, content);
    run_ok(c, {"--source", c.dir.path(), "up"});
    for (const auto& [name, content] : then) c.dir.write(name, content);
    for (const auto& name : gone) c.dir.remove(name);
  };
}

// The example application (the embedded set, copied to the folder), applied; then one pending
// migration; then a role that may only connect and read.
void example_applied_plus_pending(Ctx& c) {
  std::filesystem::copy(
      STEPWISE_MIGRATIONS_DIR, c.dir.path(),
      std::filesystem::copy_options::recursive | std::filesystem::copy_options::overwrite_existing);
  run_ok(c, {"--source", c.dir.path(), "up"});
  c.dir.write("20240401000000_add_task_notes.up.sql", "ALTER TABLE tasks ADD COLUMN notes text;\n");
}

void read_only_role(Ctx& c) {
  std::random_device rd;
  c.role = "sw_ro_" + std::to_string(rd() % 1000000000u);
  c.role_password = "Ro-Pw-" + std::to_string(rd() % 1000000000u);
  c.db.query("CREATE ROLE " + c.role + " LOGIN PASSWORD '" + c.role_password + "'");
  c.db.query("GRANT CONNECT ON DATABASE " + c.db.name() + " TO " + c.role);
  c.db.query("GRANT USAGE ON SCHEMA public TO " + c.role);
  c.db.query("GRANT SELECT ON ALL TABLES IN SCHEMA public TO " + c.role);
  c.role_url = user_url(c.db, c.role, c.role_password, c.db.name());
}

// Invocation helpers --------------------------------------------------------------------------

// stepwise --source <dir> <args...>
std::function<Invocation(const Ctx&)> src(std::vector<std::string> args) {
  return [args = std::move(args)](const Ctx& c) {
    std::vector<std::string> a{"--source", c.dir.path()};
    a.insert(a.end(), args.begin(), args.end());
    return Invocation{a, {}, false};
  };
}

// stepwise <args...> (embedded set)
std::function<Invocation(const Ctx&)> plain(std::vector<std::string> args,
                                            std::map<std::string, std::string> env = {}) {
  return [args = std::move(args), env = std::move(env)](const Ctx&) {
    return Invocation{args, env, false};
  };
}

// stepwise --database-url <url built from the ctx> <args...>
std::function<Invocation(const Ctx&)> with_url(std::function<std::string(const Ctx&)> url,
                                               std::vector<std::string> args) {
  return [url = std::move(url), args = std::move(args)](const Ctx& c) {
    std::vector<std::string> a{"--database-url", url(c)};
    a.insert(a.end(), args.begin(), args.end());
    return Invocation{a, {}, true};
  };
}

std::string wrong_password_url(const Ctx& c) {
  return user_url(c.db, "postgres", "Wr0ng-Secret-Value", c.db.name());
}

// The cases -----------------------------------------------------------------------------------

std::vector<Case> cases() {
  std::vector<Case> v;
  const auto add = [&](Case c) { v.push_back(std::move(c)); };
  const std::string big_file = "7_big.up.sql";

  // --- migration file names (exit 3) ---
  add({"NameWithoutVersion",
       good_plus({{"init.up.sql", "SELECT 1;"}}),
       src({"up"}),
       3,
       {"init.up.sql", "version"}});
  add({"NameWithoutUnderscore",
       good_plus({{"2init.up.sql", "SELECT 1;"}}),
       src({"up"}),
       3,
       {"2init.up.sql", "'_'"}});
  add({"NameWithEmptySlug",
       good_plus({{"2_.up.sql", "SELECT 1;"}}),
       src({"up"}),
       3,
       {"2_.up.sql"}});
  add({"NameWithoutDirection",
       good_plus({{"001_init.sql", "SELECT 1;"}}),
       src({"up"}),
       3,
       {"001_init.sql", "not a migration file name"}});
  add({"NameWithUnknownDirection",
       good_plus({{"2_x.sideways.sql", "SELECT 1;"}}),
       src({"up"}),
       3,
       {"2_x.sideways.sql"}});
  add({"VersionZero",
       good_plus({{"0_zero.up.sql", "SELECT 1;"}}),
       src({"up"}),
       3,
       {"0_zero.up.sql", "not 0"}});
  // Versions of any length are valid (HostileHistories); only zero is refused, however written.
  add({"VersionZeroWithLeadingZeros",
       good_plus({{"0000_zero.up.sql", "SELECT 1;"}}),
       src({"up"}),
       3,
       {"0000_zero.up.sql", "not 0"}});
  add({"NameWithTab",
       good_plus({{"2_a\tb.up.sql", "SELECT 1;"}}),
       src({"up"}),
       3,
       {"control character"}});
  add({"NameWithNewline",
       good_plus({{"2_two\nlines.up.sql", "SELECT 1;"}}),
       src({"up"}),
       3,
       {"2_two", "lines.up.sql", "control character"}});
  add({"NameNotUtf8",
       good_plus({{"2_caf\xe9.up.sql", "SELECT 1;"}}),
       src({"up"}),
       3,
       {"2_caf", "UTF-8"}});

  // --- pairing (exit 3) ---
  add({"DuplicateVersion",
       good_plus({{"0001_other.up.sql", "SELECT 1;"}}),
       src({"up"}),
       3,
       {"duplicate version 1", "1_good.up.sql", "0001_other.up.sql"}});
  add({"DuplicateDownVersion",
       good_plus({{"2_x.up.sql", "SELECT 1;"},
                  {"2_x.down.sql", "SELECT 1;"},
                  {"02_x.down.sql", "SELECT 1;"}}),
       src({"up"}),
       3,
       {"duplicate version 2", "02_x.down.sql", "2_x.down.sql"}});
  add({"DownWithoutUp",
       good_plus({{"2_orphan.down.sql", "DROP TABLE good;"}}),
       src({"up"}),
       3,
       {"2_orphan.down.sql", "without its up file"}});
  add({"DownNameMismatch",
       good_plus({{"2_a.up.sql", "SELECT 1;"}, {"2_b.down.sql", "SELECT 1;"}}),
       src({"up"}),
       3,
       {"2_b.down.sql", "2_a.up.sql"}});

  // --- file contents (exit 3); empty and white-space-only files are valid steps ---
  add({"NulByte",
       good_plus({{"2_nul.up.sql", std::string("CREATE TABLE n (id int);\0\n", 26)}}),
       src({"up"}),
       3,
       {"2_nul.up.sql", "NUL"}});
  add({"InvalidUtf8",
       good_plus({{"2_bad.up.sql", "CREATE TABLE t (v text DEFAULT '\xc3\x28');\n"}}),
       src({"up"}),
       3,
       {"2_bad.up.sql", "UTF-8"}});
  add({"Latin1File",
       good_plus({{"2_latin1.up.sql", "-- caf\xe9\nCREATE TABLE l (id int);\n"}}),
       src({"up"}),
       3,
       {"2_latin1.up.sql", "UTF-8"}});
  add({"OverlongUtf8",
       good_plus({{"2_overlong.up.sql", "SELECT '\xc0\xaf';\n"}}),
       src({"up"}),
       3,
       {"2_overlong.up.sql", "UTF-8"}});
  add({"Utf8Surrogate",
       good_plus({{"2_surrogate.up.sql", "SELECT '\xed\xa0\x80';\n"}}),
       src({"up"}),
       3,
       {"2_surrogate.up.sql", "UTF-8"}});
  add({"InvalidUtf8InDownFile",
       good_plus({{"1_good.down.sql", "DROP TABLE good; -- \xff\n"}}),
       src({"up"}),
       3,
       {"1_good.down.sql", "UTF-8"}});
  // Large contents are made when the case runs, not when the table is built.
  add({"FileOf50MB",
       [=](Ctx& c) {
         good_plus({})(c);
         c.dir.write(big_file, "-- " + std::string(50u * 1024u * 1024u, 'x') + "\n");
       },
       src({"up"}),
       3,
       {big_file, "52428804", "16777216"}});
  add({"FileOneByteOverTheLimit",
       [=](Ctx& c) {
         good_plus({})(c);
         c.dir.write(big_file, "--" + std::string(16u * 1024u * 1024u - 2u, 'x') + "\n");
       },
       src({"up"}),
       3,
       {big_file, "16777217", "16777216"}});

  // --- directives (exit 3) ---
  add({"UnknownDirective",
       good_plus({{"2_d.up.sql", "-- stepwise:no-transactions\nSELECT 1;\n"}}),
       src({"up"}),
       3,
       {"2_d.up.sql", "no-transactions"}});
  add({"UnknownDirectiveUpperCase",
       good_plus({{"2_d.up.sql", "-- STEPWISE: Frobnicate\nSELECT 1;\n"}}),
       src({"up"}),
       3,
       {"2_d.up.sql", "frobnicate"}});
  add({"EmptyDirective",
       good_plus({{"2_d.up.sql", "-- stepwise:\nSELECT 1;\n"}}),
       src({"up"}),
       3,
       {"2_d.up.sql", "directive"}});
  add({"UnknownDirectiveAfterAKnownOne",
       good_plus({{"2_d.up.sql",
                   "-- stepwise:no-transaction\n-- stepwise:transaction-per-row\nSELECT 1;\n"}}),
       src({"up"}),
       3,
       {"2_d.up.sql", "transaction-per-row"}});
  add({"CommitInsideTransactionalFile",
       good_plus({{"2_c.up.sql", "CREATE TABLE a (id int);\nCOMMIT;\nCREATE TABLE b (id int);\n"}}),
       src({"up"}),
       3,
       {"2_c.up.sql:2", "COMMIT"}});

  // --- several problems at once: every one reported, one line each (exit 3) ---
  add({"EveryProblemReportedOnce",
       good_plus({{"2_dir.up.sql", "-- stepwise:bogus\n"},
                  {"3_bad.up.sql", "SELECT '\xff';"},
                  {"x_name.up.sql", "SELECT 1;"},
                  {"4_d.up.sql", "-- stepwise:frob\nSELECT 1;"}}),
       src({"up"}),
       3,
       {},
       Expect::kError,
       4,
       {"2_dir.up.sql", "3_bad.up.sql", "x_name.up.sql", "4_d.up.sql"}});

  // --- the source folder itself (exit 3) ---
  add({"SourceFolderMissing",
       nullptr,
       plain({"--source", "/nonexistent/stepwise-migrations", "up"}),
       3,
       {"/nonexistent/stepwise-migrations"}});
  add({"SourceIsAFile",
       good_plus({}),
       [](const Ctx& c) {
         return Invocation{{"--source", c.dir.path() + "/1_good.up.sql", "up"}, {}, false};
       },
       3,
       {"1_good.up.sql"}});

  // --- releases.json (exit 3): every error names the release and the field ---
  add({"ReleasesMalformedJson",
       releases(R"({"releases": [{"name": "1.0.0", "schema": 1,)"),
       src({"up"}),
       3,
       {"releases.json", "JSON"}});
  add({"ReleasesEmptyFile", releases(""), src({"up"}), 3, {"releases.json", "JSON"}});
  add({"ReleasesTrailingGarbage",
       releases(R"({"releases": [{"name": "1.0.0", "schema": 1, "min_schema": 1}]} x)"),
       src({"up"}),
       3,
       {"releases.json", "JSON"}});
  add({"ReleasesNotAnObject", releases("[]"), src({"up"}), 3, {"releases.json", "releases"}});
  add({"ReleasesEmptyArray",
       releases(R"({"releases": []})"),
       src({"up"}),
       3,
       {"releases.json", "empty"}});
  add({"ReleaseNotAnObject",
       releases(R"({"releases": [42]})"),
       src({"up"}),
       3,
       {"releases.json", "release #1"}});
  add({"ReleasesNotMonotonic",
       releases(R"({"releases": [{"name": "1.0.0", "schema": 2, "min_schema": 1},
                                 {"name": "1.1.0", "schema": 1, "min_schema": 1}]})"),
       src({"up"}),
       3,
       {"releases.json", "1.1.0", "\"schema\""}});
  add({"ReleasesMinSchemaGoesBack",
       releases(R"({"releases": [{"name": "1.0.0", "schema": 2, "min_schema": 2},
                                 {"name": "1.1.0", "schema": 3, "min_schema": 1}]})"),
       src({"up"}),
       3,
       {"releases.json", "1.1.0", "\"min_schema\""}});
  add({"ReleasesMinSchemaNewerThanSchema",
       releases(R"({"releases": [{"name": "1.0.0", "schema": 1, "min_schema": 2}]})"),
       src({"up"}),
       3,
       {"releases.json", "1.0.0", "\"min_schema\""}});
  add({"ReleasesUnknownVersion",
       releases(R"({"releases": [{"name": "1.0.0", "schema": 99, "min_schema": 1}]})"),
       src({"up"}),
       3,
       {"releases.json", "1.0.0", "\"schema\"", "99"}});
  add({"ReleasesMissingField",
       releases(R"({"releases": [{"name": "1.0.0", "schema": 1}]})"),
       src({"up"}),
       3,
       {"releases.json", "1.0.0", "\"min_schema\"", "missing"}});
  add({"ReleasesMissingName",
       releases(R"({"releases": [{"schema": 1, "min_schema": 1}]})"),
       src({"up"}),
       3,
       {"releases.json", "release #1", "\"name\""}});
  add({"ReleasesDuplicateName",
       releases(R"({"releases": [{"name": "1.0.0", "schema": 1, "min_schema": 1},
                                 {"name": "1.0.0", "schema": 2, "min_schema": 1}]})"),
       src({"up"}),
       3,
       {"releases.json", "1.0.0", "\"name\"", "duplicate"}});
  // A string of digits is a version (for versions beyond 64 bits); any other string is not.
  add({"ReleasesSchemaAsString",
       releases(R"({"releases": [{"name": "1.0.0", "schema": "2a", "min_schema": 1}]})"),
       src({"up"}),
       3,
       {"releases.json", "1.0.0", "\"schema\""}});
  add({"ReleasesNegativeSchema",
       releases(R"({"releases": [{"name": "1.0.0", "schema": -1, "min_schema": 1}]})"),
       src({"up"}),
       3,
       {"releases.json", "1.0.0", "\"schema\"", "-1"}});
  add({"ReleasesFractionalSchema",
       releases(R"({"releases": [{"name": "1.0.0", "schema": 1.5, "min_schema": 1}]})"),
       src({"up"}),
       3,
       {"releases.json", "1.0.0", "\"schema\""}});
  add({"ReleasesSchemaAboveBigint",
       releases(
           R"({"releases": [{"name": "1.0.0", "schema": 18446744073709551615, "min_schema": 1}]})"),
       src({"up"}),
       3,
       {"releases.json", "1.0.0", "\"schema\""}});
  add({"ReleasesUnknownField",
       releases(R"({"releases": [{"name": "1.0.0", "schema": 1, "min_schemas": 1}]})"),
       src({"up"}),
       3,
       {"releases.json", "1.0.0", "min_schemas"},
       Expect::kError,
       2,
       {"\"min_schema\": missing"}});
  add({"ReleaseNameWithNewline",
       releases(R"({"releases": [{"name": "1.0.0", "schema": 2, "min_schema": 1},
                                 {"name": "1.1\n0", "schema": 1, "min_schema": 1}]})"),
       src({"up"}),
       3,
       {"releases.json", "1.1", "\"schema\""}});
  add({"ReleasesRawControlCharacter",
       releases("{\"releases\": [{\"name\": \"1.0\n.0\", \"schema\": 1, \"min_schema\": 1}]}"),
       src({"up"}),
       3,
       {"releases.json", "JSON"}});
  add({"ReleasesDeeplyNested",
       [](Ctx& c) {
         releases("{\"releases\": [" + std::string(100000, '[') + std::string(100000, ']') +
                  "]}")(c);
       },
       src({"up"}),
       3,
       {"releases.json", "release #1"}});
  add({"ReleasesLargerThanItsLimit",
       [](Ctx& c) {
         releases(R"({"releases": [{"name": "1.0.0", "schema": 1, "min_schema": 1, "notes": ")" +
                  std::string(5u * 1024u * 1024u, 'n') + "\"}]}")(c);
       },
       src({"up"}),
       3,
       {"releases.json", "limit"}});
  // Found by tests/fuzz/releases_fuzz: a number too large for a double is not a parse_error.
  add({"ReleasesNumberOverflow",
       releases(R"({"releases": [{"name": "1.0.0", "schema": 1e400, "min_schema": 1}]})"),
       src({"up"}),
       3,
       {"releases.json"}});
  add({"ReleasesUnterminatedLongString",
       releases(R"({"releases": [{"name": "1.0.0", "schema": 1, "min_schema": 1, "notes": ")" +
                std::string(100000, 'n')),
       src({"up"}),
       3,
       {"releases.json", "JSON"}});
  add({"ReleasesAndFilesBothBad",
       [](Ctx& c) {
         releases(R"({"releases": [{"name": "1.0.0", "schema": 1}]})")(c);
         c.dir.write("4_bad.up.sql", "-- stepwise:bogus\n");
       },
       src({"up"}),
       3,
       {},
       Expect::kError,
       2,
       {"4_bad.up.sql", "\"min_schema\""}});

  // --- command line (exit 2) ---
  add({"UnknownFlag", nullptr, plain({"--frobnicate", "up"}), 2, {"--frobnicate"}});
  add({"UnknownSubcommandFlag",
       nullptr,
       plain({"up", "--allow-out-of-orderr"}),
       2,
       {"--allow-out-of-orderr"}});
  add({"FlagOfAnotherCommand",
       nullptr,
       plain({"status", "--allow-out-of-order"}),
       2,
       {"--allow-out-of-order"}});
  add({"MisspelledOptionWithValue",
       nullptr,
       plain({"--log-tabel", "x", "up"}),
       2,
       {"--log-tabel"}});
  add({"UnknownCommand", nullptr, plain({"upp"}), 2, {"upp"}});
  add({"NoCommand", nullptr, plain({}), 2, {"subcommand"}});
  add({"ExtraArgument", nullptr, plain({"up", "extra"}), 2, {"extra"}});
  add({"ArgumentWithNewline", nullptr, plain({"up", "two\nlines"}), 2, {"two", "lines"}});
  add({"OptionMissingItsValue", nullptr, plain({"up", "--lock-timeout"}), 2, {"--lock-timeout"}});
  add({"LockTimeoutBadUnit",
       nullptr,
       plain({"--lock-timeout", "10x", "up"}),
       2,
       {"--lock-timeout", "10x"}});
  add({"ConnectTimeoutNegative",
       nullptr,
       plain({"--connect-timeout", "-1s", "up"}),
       2,
       {"--connect-timeout", "-1s"}});
  add({"StatementTimeoutEmpty",
       nullptr,
       plain({"--statement-timeout", "", "up"}),
       2,
       {"--statement-timeout", "\"\""}});
  add({"DurationWithTwoDots",
       nullptr,
       plain({"--lock-timeout", "1.2.3s", "up"}),
       2,
       {"--lock-timeout", "1.2.3s"}});
  add({"DurationUnitWithoutNumber",
       nullptr,
       plain({"--lock-timeout", "s", "up"}),
       2,
       {"--lock-timeout", "\"s\""}});
  add({"DurationTooLarge",
       nullptr,
       plain({"--statement-timeout", "99999999999h", "up"}),
       2,
       {"--statement-timeout", "99999999999h"}});
  add({"DurationFromEnvironment",
       nullptr,
       plain({"up"}, {{"STEPWISE_LOCK_TIMEOUT", "forever"}}),
       2,
       {"lock-timeout", "forever"}});
  add({"BadOutputFormat", nullptr, plain({"--output", "yaml", "up"}), 2, {"--output", "yaml"}});
  add({"OutputFormatWithNewline",
       nullptr,
       plain({"--output", "json\nyaml", "status"}),
       2,
       {"--output", "json", "yaml"}});
  add({"BadLogLevel", nullptr, plain({"--log-level", "loud", "up"}), 2, {"--log-level", "loud"}});
  add({"DdlLockRetriesNotANumber",
       nullptr,
       plain({"--ddl-lock-retries", "abc", "up"}),
       2,
       {"--ddl-lock-retries", "abc"}});
  add({"DdlLockRetriesOutOfRange",
       nullptr,
       plain({"--ddl-lock-retries", "-5", "up"}),
       2,
       {"--ddl-lock-retries", "-5"}});
  add({"BadLockStrategy",
       nullptr,
       plain({"--lock-strategy", "mutex", "up"}),
       2,
       {"--lock-strategy", "mutex"}});
  add({"LeaseTtlTooShort",
       nullptr,
       plain({"--lease-ttl", "10ms", "up"}),
       2,
       {"--lease-ttl", "10ms"}});

  // --- log-table names: refused before any SQL is sent (exit 2) ---
  add({"LogTableInjectionSemicolon",
       nullptr,
       plain({"--log-table", "x;drop table y", "up"}),
       2,
       {"--log-table", "x;drop table y"}});
  add({"LogTableDoubleQuoteInside",
       nullptr,
       plain({"--log-table", "a\"b", "up"}),
       2,
       {"--log-table", "a\\\"b"}});
  add({"LogTableThreeParts",
       nullptr,
       plain({"--log-table", "a.b.c", "up"}),
       2,
       {"--log-table", "a.b.c"}});
  add({"LogTable64Bytes",
       nullptr,
       plain({"--log-table", std::string(64, 'a'), "up"}),
       2,
       {"--log-table", "63"}});
  add({"LogTableEmpty", nullptr, plain({"--log-table", "", "up"}), 2, {"--log-table"}});
  add({"LogTableSingleQuoteInjection",
       nullptr,
       plain({"--log-table", "x'); DROP TABLE y; --", "up"}),
       2,
       {"--log-table", "DROP TABLE y"}});
  add({"LogTableCommentInjection",
       nullptr,
       plain({"--log-table", "public.log--", "up"}),
       2,
       {"--log-table", "public.log--"}});
  add({"LogTableQuotedInjection",
       nullptr,
       plain({"--log-table", "\"x\";drop table y", "up"}),
       2,
       {"--log-table", "drop table y"}});
  add({"LogTableUnterminatedQuote",
       nullptr,
       plain({"--log-table", "\"abc", "up"}),
       2,
       {"--log-table", "abc"}});
  add({"LogTableTrailingDot",
       nullptr,
       plain({"--log-table", "public.", "up"}),
       2,
       {"--log-table", "public."}});
  add({"LogTableFromEnvironment",
       nullptr,
       plain({"status"}, {{"STEPWISE_LOG_TABLE", "log;drop schema public cascade"}}),
       2,
       {"log-table", "drop schema public cascade"}});
  add({"LogTableInjectionForStatus",
       nullptr,
       plain({"--log-table", "x;drop table y", "status"}),
       2,
       {"--log-table", "x;drop table y"}});

  // --- connecting (exit 4); the password is never printed ---
  add({"WrongPassword",
       nullptr,
       with_url(wrong_password_url, {"--connect-timeout", "5s", "up"}),
       4,
       {"{db}", "password authentication failed"},
       Expect::kError,
       1,
       {},
       false,
       {"Wr0ng-Secret-Value"}});
  add({"WrongPasswordForStatus",
       nullptr,
       with_url(wrong_password_url, {"status"}),
       4,
       {"{db}", "password authentication failed"},
       Expect::kError,
       1,
       {},
       false,
       {"Wr0ng-Secret-Value"}});
  add({"UnknownUser",
       nullptr,
       with_url(
           [](const Ctx& c) {
             return user_url(c.db, "sw_nobody_here", "Some-Secret-Pw", c.db.name());
           },
           {"up"}),
       4,
       {"sw_nobody_here"},
       Expect::kError,
       1,
       {},
       false,
       {"Some-Secret-Pw"}});
  add({"UnknownDatabase",
       nullptr,
       with_url(
           [](const Ctx& c) {
             return user_url(c.db, "postgres", password_of(c.db.url()), "sw_no_such_database");
           },
           {"up"}),
       4,
       {"sw_no_such_database"}});
  add({"UnreachableHost",
       nullptr,
       with_url([](const Ctx&) { return std::string("postgres://app:Unreach-Pw@127.0.0.1:1/app"); },
                {"--connect-timeout", "1s", "up"}),
       4,
       {"127.0.0.1:1"},
       Expect::kError,
       1,
       {},
       true,
       {"Unreach-Pw"}});
  add({"MalformedDsnQueryParameter",
       nullptr,
       with_url(
           [](const Ctx& c) {
             return user_url(c.db, "postgres", "Dsn-Secret-1", c.db.name()) + "?sslmod=disable";
           },
           {"up"}),
       4,
       {"sslmod"},
       Expect::kError,
       1,
       {},
       false,
       {"Dsn-Secret-1"}});
  add({"MalformedDsnKeywords",
       nullptr,
       with_url(
           [](const Ctx&) { return std::string("host=127.0.0.1 password=Dsn-Secret-2 dbname"); },
           {"up"}),
       4,
       {"dbname"},
       Expect::kError,
       1,
       {},
       false,
       {"Dsn-Secret-2"}});
  add({"MalformedDsnIpv6",
       nullptr,
       with_url([](const Ctx&) { return std::string("postgres://app:Dsn-Secret-3@[::1/app"); },
                {"up"}),
       4,
       {"invalid connection string"},
       Expect::kError,
       1,
       {},
       false,
       {"Dsn-Secret-3"}});
  add({"MalformedDsnScheme",
       nullptr,
       with_url([](const Ctx&) { return std::string("mysql://app:Dsn-Secret-4@db/app"); }, {"up"}),
       4,
       {"invalid connection string"},
       Expect::kError,
       1,
       {},
       false,
       {"Dsn-Secret-4"}});
  add({"MalformedDsnPort",
       nullptr,
       with_url(
           [](const Ctx&) {
             return std::string("postgres://app:Dsn-Secret-5@127.0.0.1:notaport/app");
           },
           {"up"}),
       4,
       {"notaport"},
       Expect::kError,
       1,
       {},
       false,
       {"Dsn-Secret-5"}});
  add({"MalformedDsnSslMode",
       nullptr,
       with_url(
           [](const Ctx& c) {
             return user_url(c.db, "postgres", "Dsn-Secret-6", c.db.name()) + "?sslmode=bogus";
           },
           {"up"}),
       4,
       {"bogus"},
       Expect::kError,
       1,
       {},
       false,
       {"Dsn-Secret-6"}});

  // --- prior state ---
  add({"AppliedMigrationEditedAfterwards",
       applied_then({{"1_a.up.sql", "CREATE TABLE a (id int);\n"},
                     {"2_b.up.sql", "CREATE TABLE b (id int);\n"}},
                    {{"1_a.up.sql", "CREATE TABLE a (id bigint);\n"}}),
       src({"up"}),
       0,
       {"1_a.up.sql"},
       Expect::kWarning});
  add({"AppliedMigrationEditedAfterwardsStatus",
       applied_then({{"1_a.up.sql", "CREATE TABLE a (id int);\n"}},
                    {{"1_a.up.sql", "CREATE TABLE a (id bigint);\n"}}),
       src({"status"}),
       0,
       {"(file changed since)", "1 applied, 0 pending"},
       Expect::kOk});
  add({"AppliedFileRemovedDatabaseAhead",
       applied_then({{"1_a.up.sql", "CREATE TABLE a (id int);\n"},
                     {"2_b.up.sql", "CREATE TABLE b (id int);\n"}},
                    {}, {"2_b.up.sql"}),
       src({"up"}),
       0,
       {"ahead of this build"},
       Expect::kWarning});
  add({"PendingOlderThanApplied",
       applied_then({{"1_a.up.sql", "CREATE TABLE a (id int);\n"},
                     {"3_c.up.sql", "CREATE TABLE c (id int);\n"}},
                    {{"2_b.up.sql", "CREATE TABLE b (id int);\n"}}),
       src({"up"}),
       6,
       {"2_b.up.sql", "3"}});
  add({"UnknownAppliedVersionBelowPendingWork",
       applied_then({{"1_a.up.sql", "CREATE TABLE a (id int);\n"},
                     {"2_b.up.sql", "CREATE TABLE b (id int);\n"}},
                    {{"3_c.up.sql", "CREATE TABLE c (id int);\n"}}, {"2_b.up.sql"}),
       src({"up"}),
       6,
       {"2", "3"}});
  add({"BadFileAddedAfterApply",
       applied_then({{"1_a.up.sql", "CREATE TABLE a (id int);\n"}},
                    {{"2_b.up.sql", "-- stepwise:bogus\n"}}),
       src({"up"}),
       3,
       {"2_b.up.sql", "bogus"}});
  add({"StatusWithoutLogTable", nullptr, plain({"status"}), 10, {"public.stepwise_log"}});
  add({"StatusWithoutCustomLogTable",
       nullptr,
       plain({"--log-table", "audit.missing", "status"}),
       10,
       {"audit.missing"}});
  add({"StatusWithBadSource",
       good_plus({{"2_bad.up.sql", "-- stepwise:bogus\n"}}),
       src({"status"}),
       3,
       {"2_bad.up.sql"}});

  // --- a role that may only connect and read ---
  add({"ReadOnlyRoleUp",
       [](Ctx& c) {
         example_applied_plus_pending(c);
         read_only_role(c);
       },
       [](const Ctx& c) {
         return Invocation{
             {"--database-url", c.role_url, "--source", c.dir.path(), "up"}, {}, true};
       },
       1,
       {"permission denied"},
       Expect::kError,
       1,
       {},
       true});
  add({"ReadOnlyRoleStatus",
       [](Ctx& c) {
         example_applied_plus_pending(c);
         read_only_role(c);
       },
       [](const Ctx& c) {
         return Invocation{
             {"--database-url", c.role_url, "--source", c.dir.path(), "status"}, {}, true};
       },
       0,
       {"20240401000000", "add_task_notes", "pending", "10 applied, 1 pending"},
       Expect::kOk});
  add({"ReadOnlyRoleUpOnAFreshDatabase",
       read_only_role,
       [](const Ctx& c) {
         return Invocation{{"--database-url", c.role_url, "up"}, {}, true};
       },
       1,
       {"permission denied for schema public"},
       Expect::kError,
       1,
       {},
       false});
  add({"ReadOnlyRoleUpWithItsOwnLogSchema",
       read_only_role,
       [](const Ctx& c) {
         return Invocation{
             {"--database-url", c.role_url, "--log-table", "audit.log", "up"}, {}, true};
       },
       1,
       {"permission denied for database {db}"},
       Expect::kError,
       1,
       {},
       false});
  return v;
}

// ---------------------------------------------------------------------------------------------

const std::regex& log_line() {
  static const std::regex re(
      R"(^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z (trace|debug|info|warning|error|critical) .*)");
  return re;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start < text.size()) {
    const auto nl = text.find('\n', start);
    out.push_back(text.substr(start, nl == std::string::npos ? std::string::npos : nl - start));
    if (nl == std::string::npos) break;
    start = nl + 1;
  }
  return out;
}

constexpr std::string_view kError = "stepwise: error: ";
constexpr std::string_view kHint = "stepwise: hint: ";
constexpr std::size_t kLongestLine = 2000;

class BadInputTest : public ::testing::TestWithParam<Case> {
 protected:
  void TearDown() override {
    if (!role_.empty() && db_) {
      try {
        db_->query("DROP OWNED BY " + role_);
        db_.reset();
        pqxx::connection c(admin_url());
        pqxx::nontransaction w(c);
        w.exec("DROP ROLE IF EXISTS " + role_);
      } catch (const std::exception& e) {
        ADD_FAILURE() << "cleanup of role " << role_ << ": " << e.what();
      }
    }
  }
  std::unique_ptr<TestDb> db_;
  std::string role_;
};

TEST_P(BadInputTest, FailsClearlyAndChangesNothing) {
  REQUIRE_TEST_DATABASE();
  const Case& tc = GetParam();
  db_ = std::make_unique<TestDb>();
  TestDb& db = *db_;
  MigrationDir dir;
  Ctx ctx{db, dir, role_, "", ""};  // role_ is dropped in TearDown, even after a failed setup
  if (tc.setup) {
    tc.setup(ctx);
    if (::testing::Test::HasFatalFailure()) return;
  }
  const auto before = snapshot(db);

  const auto inv = tc.invoke(ctx);
  ProcessResult r;
  if (inv.own_url) {
    auto env = inv.env;
    env.emplace("STEPWISE_DATABASE_URL", "");
    env.emplace("DATABASE_URL", "");
    env.emplace("PGPASSWORD", "");
    r = run(stepwise_cmd(inv.args), env, std::chrono::seconds(60));
  } else {
    r = db.stepwise(inv.args, inv.env, std::chrono::seconds(60));
  }
  const auto cut = [](const std::string& text) {
    constexpr std::size_t kShow = 4000;
    return text.size() <= kShow ? text
                                : text.substr(0, kShow) + "\n[... " +
                                      std::to_string(text.size() - kShow) + " more bytes]\n";
  };
  const std::string shown = "\n--- stderr ---\n" + cut(r.err) + "--- stdout ---\n" + cut(r.out);
  if (std::getenv("STEPWISE_TEST_SHOW_OUTPUT") != nullptr) std::cout << tc.name << shown;

  const auto expand = [&](std::string s) {
    s = replace_all(s, "{dir}", dir.path());
    s = replace_all(s, "{db}", db.name());
    s = replace_all(s, "{port}", std::to_string(server_port(db.url())));
    return replace_all(s, "{role}", ctx.role);
  };

  // The documented exit code, and no crash.
  EXPECT_EQ(r.signal, 0) << "killed by signal " << r.signal << shown;
  EXPECT_EQ(r.exit_code, tc.exit_code) << shown;
  EXPECT_EQ(r.err.find("Sanitizer"), std::string::npos) << shown;
  EXPECT_EQ(r.err.find("runtime error:"), std::string::npos) << shown;

  // Every stderr line is an error, a hint or a log line: no multi-line dumps, no stray text.
  const auto lines = lines_of(r.err);
  std::vector<std::string> errors;
  std::vector<std::string> warnings;
  std::size_t first_non_log = lines.size();
  for (std::size_t i = 0; i < lines.size(); ++i) {
    const auto& l = lines[i];
    const bool is_log = std::regex_match(l, log_line());
    if (!is_log && first_non_log == lines.size()) first_non_log = i;
    if (l.starts_with(kError)) {
      errors.push_back(l);
    } else if (is_log) {
      if (l.find(" warning ") != std::string::npos) warnings.push_back(l);
    } else {
      EXPECT_TRUE(l.starts_with(kHint))
          << "stderr line " << i + 1 << " is neither an error, a hint nor a log line: \"" << l
          << "\"" << shown;
    }
    EXPECT_LE(l.size(), kLongestLine) << "stderr line " << i + 1 << " is " << l.size() << " bytes";
  }

  if (tc.expect == Expect::kError) {
    EXPECT_EQ(errors.size(), static_cast<std::size_t>(tc.problems))
        << "expected one \"stepwise: error:\" line per problem" << shown;
    ASSERT_FALSE(lines.empty()) << "nothing on stderr" << shown;
    if (tc.logs_first) {
      ASSERT_LT(first_non_log, lines.size()) << shown;
      EXPECT_TRUE(lines[first_non_log].starts_with(kError))
          << "first line after the progress log is not an error" << shown;
    } else {
      EXPECT_TRUE(lines[0].starts_with(kError)) << "stderr's first line is not an error" << shown;
    }
    if (!errors.empty()) {
      for (const auto& c : tc.culprits)
        EXPECT_NE(errors[0].find(expand(c)), std::string::npos)
            << "the first error line does not name \"" << expand(c) << "\"" << shown;
    }
    for (const auto& c : tc.anywhere) {
      bool found = false;
      for (const auto& e : errors) found = found || e.find(expand(c)) != std::string::npos;
      EXPECT_TRUE(found) << "no error line names \"" << expand(c) << "\"" << shown;
    }
  } else {
    EXPECT_TRUE(errors.empty()) << "unexpected error line" << shown;
    for (const auto& c : tc.culprits) {
      bool found = false;
      if (tc.expect == Expect::kWarning) {
        for (const auto& w : warnings) found = found || w.find(expand(c)) != std::string::npos;
      } else {
        found = r.out.find(expand(c)) != std::string::npos;
      }
      EXPECT_TRUE(found) << (tc.expect == Expect::kWarning ? "no warning line" : "stdout does not")
                         << " name \"" << expand(c) << "\"" << shown;
    }
  }

  // No password, ever: the admin's, the case's own.
  std::vector<std::string> secrets = tc.secrets;
  secrets.push_back(password_of(db.url()));
  if (!ctx.role_password.empty()) secrets.push_back(ctx.role_password);
  for (const auto& s : secrets) {
    EXPECT_EQ(r.err.find(s), std::string::npos) << "stderr shows the password " << s << shown;
    EXPECT_EQ(r.out.find(s), std::string::npos) << "stdout shows the password " << s << shown;
  }

  // The database is exactly as it was.
  const auto after = snapshot(db);
  EXPECT_EQ(before, after) << "the database changed:\n" << diff(before, after) << shown;
}

INSTANTIATE_TEST_SUITE_P(BadInput, BadInputTest, ::testing::ValuesIn(cases()),
                         [](const ::testing::TestParamInfo<Case>& param) {
                           return param.param.name;
                         });

// The snapshot sees every kind of change a stray run could make; otherwise "nothing changed"
// would prove nothing.
TEST(BadInputSnapshot, SeesEveryKindOfChange) {
  REQUIRE_TEST_DATABASE();
  TestDb db;
  db.query(
      "CREATE TABLE t (id bigserial PRIMARY KEY, v text); CREATE TYPE e AS ENUM ('a');"
      " CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1';"
      " CREATE VIEW w AS SELECT id FROM t;");
  for (const std::string change : {
           "CREATE TABLE u (id int)",
           "CREATE SCHEMA s",
           "ALTER TABLE t ADD COLUMN x int",
           "ALTER TABLE t ALTER COLUMN v SET DEFAULT 'd'",
           "CREATE INDEX t_v_idx ON t (v)",
           "ALTER TABLE t ADD CONSTRAINT v_not_empty CHECK (v <> '')",
           "INSERT INTO t (v) VALUES ('row')",
           "SELECT nextval('t_id_seq')",
           "ALTER TYPE e ADD VALUE 'b'",
           "CREATE OR REPLACE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 2'",
           "CREATE OR REPLACE VIEW w AS SELECT id, v FROM t",
           "GRANT SELECT ON t TO PUBLIC",
           "COMMENT ON TABLE t IS 'changed'",
           "CREATE TRIGGER tr BEFORE INSERT ON t FOR EACH ROW EXECUTE FUNCTION "
           "suppress_redundant_updates_trigger()",
       }) {
    const auto before = snapshot(db);
    db.query(change);
    EXPECT_NE(before, snapshot(db)) << "the snapshot misses: " << change;
  }
}

// The suite is as large as the issue asks.
TEST(BadInputSuite, HasAtLeastFiftyFiveCases) {
  EXPECT_GE(cases().size(), 55u);
}

}  // namespace
}  // namespace stepwise::test
