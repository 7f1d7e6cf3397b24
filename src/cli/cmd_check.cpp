// stepwise check: the migration author's gate. The lint (src/core/lint.cpp), then on a scratch
// server (--scratch-url, or a throw-away PostgreSQL started here): up/down/up round trips,
// upgraded-equals-fresh for every release, and the releases' probes over their compatibility
// ranges. Never the application's database.
#include <fcntl.h>
#include <fmt/format.h>
#include <pwd.h>
#include <spawn.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <random>
#include <set>
#include <tuple>

#include "commands.hpp"
#include "stepwise/describe.hpp"
#include "stepwise/drift.hpp"
#include "stepwise/lint.hpp"
#include "stepwise/sql_split.hpp"
#include "stepwise/text.hpp"
#include "stepwise/version.hpp"

extern char** environ;

namespace stepwise::cli {

namespace {

namespace fs = std::filesystem;

// ---- processes ----------------------------------------------------------------------------

// Runs argv with stdout and stderr appended to `log`; returns the exit status (-1: not run).
int run_process(const std::vector<std::string>& argv, const std::string& log) {
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  pid_t pid = 0;
  const int rc = posix_spawn(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) return -1;
  int status = 0;
  while (waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// The directory holding `program` on PATH, else empty.
std::string find_on_path(const std::string& program) {
  const char* path = std::getenv("PATH");
  if (path == nullptr) return {};
  std::string_view rest = path;
  while (!rest.empty()) {
    const auto colon = rest.find(':');
    const auto dir = std::string(rest.substr(0, colon));
    rest = colon == std::string_view::npos ? std::string_view() : rest.substr(colon + 1);
    if (dir.empty()) continue;
    const auto candidate = dir + "/" + program;
    if (::access(candidate.c_str(), X_OK) == 0) return dir;
  }
  return {};
}

std::string tail_of(const std::string& file) {
  std::ifstream in(file);
  std::string line, last;
  while (std::getline(in, line))
    if (!trim(line).empty()) last = line;
  return one_line(last, 300);
}

// A PostgreSQL cluster in a temp dir, reachable only through its Unix socket there; stopped and
// removed by the destructor. Run as the `postgres` user when check runs as root.
class TempCluster {
 public:
  explicit TempCluster(const std::string& bindir) {
    std::vector<std::string> prefix;
    uid_t uid = 0;
    gid_t gid = 0;
    if (::geteuid() == 0) {
      const auto* pw = ::getpwnam("postgres");
      std::string runuser;
      for (const char* p : {"/usr/sbin/runuser", "/sbin/runuser", "/usr/bin/runuser"})
        if (::access(p, X_OK) == 0) runuser = p;
      if (pw == nullptr || runuser.empty())
        throw Error(ExitCode::kUsage,
                    "check: running as root, and PostgreSQL refuses to run as root; there is no "
                    "postgres user (and runuser) to start the scratch server as",
                    "give a scratch server with --scratch-url URL, or run check as another user");
      uid = pw->pw_uid;
      gid = pw->pw_gid;
      prefix = {runuser, "-u", "postgres", "--"};
    }
    char tmpl[] = "/tmp/stepwise-check.XXXXXX";
    if (::mkdtemp(tmpl) == nullptr)
      throw Error(ExitCode::kFailed, "check: cannot create a temp dir for the scratch server");
    dir_ = tmpl;
    if (!prefix.empty() && ::chown(dir_.c_str(), uid, gid) != 0) {
      fs::remove_all(dir_);
      throw Error(ExitCode::kFailed, "check: cannot hand the scratch dir to the postgres user");
    }
    const auto log = dir_ + "/tools.log";
    pg_ctl_ = prefix;
    pg_ctl_.push_back(bindir + "/pg_ctl");
    auto initdb = prefix;
    for (const auto& a :
         {bindir + "/initdb", "-D" + dir_ + "/db", std::string("-U"), std::string("stepwise"),
          std::string("-A"), std::string("trust"), std::string("-E"), std::string("UTF8"),
          std::string("--no-sync"), std::string("--locale=C")})
      initdb.push_back(a);
    if (run_process(initdb, log) != 0) {
      const auto why = tail_of(log);
      fs::remove_all(dir_);
      throw Error(ExitCode::kFailed, fmt::format("check: initdb failed: {}", why),
                  "give a scratch server with --scratch-url URL");
    }
    {
      std::ofstream conf(dir_ + "/db/postgresql.conf", std::ios::app);
      conf << "listen_addresses = ''\nunix_socket_directories = '" << dir_
           << "'\nport = 5432\nfsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
              "max_connections = 40\n";
    }
    auto start = pg_ctl_;
    for (const auto& a :
         {std::string("-D"), dir_ + "/db", std::string("-l"), dir_ + "/db/server.log",
          std::string("-w"), std::string("-t"), std::string("60"), std::string("start")})
      start.push_back(a);
    if (run_process(start, log) != 0) {
      const auto why = tail_of(dir_ + "/db/server.log");
      stop();
      throw Error(ExitCode::kFailed,
                  fmt::format("check: the scratch PostgreSQL did not start: {}", why),
                  "give a scratch server with --scratch-url URL");
    }
    started_ = true;
    spdlog::info("check: started a scratch PostgreSQL in {}", dir_);
  }
  ~TempCluster() { stop(); }
  TempCluster(const TempCluster&) = delete;
  TempCluster& operator=(const TempCluster&) = delete;

  [[nodiscard]] std::string conninfo() const {
    return fmt::format("host={} port=5432 user=stepwise dbname=postgres", dir_);
  }

 private:
  void stop() {
    if (started_) {
      auto cmd = pg_ctl_;
      for (const auto& a : {std::string("-D"), dir_ + "/db", std::string("-m"),
                            std::string("immediate"), std::string("-w"), std::string("stop")})
        cmd.push_back(a);
      (void)run_process(cmd, "/dev/null");
      started_ = false;
    }
    std::error_code ec;
    if (!dir_.empty()) fs::remove_all(dir_, ec);
    dir_.clear();
  }
  std::string dir_;
  std::vector<std::string> pg_ctl_;
  bool started_ = false;
};

// ---- scratch databases --------------------------------------------------------------------

// A database check creates on the scratch server (from template0) and drops whatever happens.
class ScratchDb {
 public:
  ScratchDb(Connection& admin, const ConnInfo& info, const std::string& purpose) : admin_(admin) {
    std::random_device rd;
    name_ = fmt::format("stepwise_check_{}_{}_{:08x}", purpose, getpid(), rd());
    admin_.execute("CREATE DATABASE " + admin_.quote_identifier(name_) + " TEMPLATE template0");
    try {
      conn_ = open_connection(with_database(info, name_));
    } catch (...) {
      drop();
      throw;
    }
    conn_->on_notice([](std::string_view) {});
  }
  ~ScratchDb() { drop(); }
  ScratchDb(const ScratchDb&) = delete;
  ScratchDb& operator=(const ScratchDb&) = delete;
  [[nodiscard]] Connection& conn() { return *conn_; }

 private:
  void drop() {
    conn_.reset();
    try {
      admin_.execute("DROP DATABASE IF EXISTS " + admin_.quote_identifier(name_) + " WITH (FORCE)");
    } catch (const Error&) {
      spdlog::warn("check: could not drop the scratch database {}", name_);
    }
  }
  Connection& admin_;
  std::string name_;
  std::unique_ptr<Connection> conn_;
};

// Applies the set on one scratch database with the real runner (its transactions, its
// statement-by-statement no-transaction steps), as `up` and `migrate-to` would.
class Applier {
 public:
  Applier(Connection& conn, const TableName& log_table, const std::atomic<bool>* stop)
      : store_(conn, log_table, runner_identity()),
        lock_(conn, log_table),
        runner_(conn, store_, lock_, reporter_),
        stop_(stop) {}
  void to(const MigrationSet& set, const Version& v) {
    RunOptions o;
    o.target = Target::at(v);
    o.stop = stop_;
    o.refuse_foreign_history = false;
    (void)runner_.run(set, o);
  }

 private:
  HistoryStore store_;
  AdvisoryLock lock_;
  Reporter reporter_;
  Runner runner_;
  const std::atomic<bool>* stop_;
};

std::string describe_item(const DriftItem& d) {
  std::string out = fmt::format("{} {} {}", d.kind, d.object, d.change);
  if (!d.field.empty())
    out += fmt::format(" ({}: {} -> {})", d.field, d.expected.empty() ? "none" : d.expected,
                       d.actual.empty() ? "none" : d.actual);
  return one_line(out, 400);
}

std::string first_difference(const std::vector<DriftItem>& items) {
  auto text = describe_item(items.front());
  if (items.size() > 1) text += fmt::format(" (and {} more)", items.size() - 1);
  return text;
}

// A failed step as a finding on its file: "file:line: message (SQLSTATE ...)".
CheckFinding step_failure(const Error& e, std::string_view rule, const std::string& context) {
  CheckFinding f;
  f.rule = std::string(rule);
  std::string what = e.what();
  const auto colon = what.find(':');
  if (colon != std::string::npos && what.substr(0, colon).ends_with(".sql")) {
    f.file = what.substr(0, colon);
    auto rest = std::string_view(what).substr(colon + 1);
    std::size_t digits = 0;
    while (digits < rest.size() && std::isdigit(static_cast<unsigned char>(rest[digits]))) ++digits;
    if (digits > 0 && digits < rest.size() && rest[digits] == ':') {
      f.line = std::stoi(std::string(rest.substr(0, digits)));
      rest.remove_prefix(digits + 1);
    }
    what = std::string(trim(rest));
  }
  f.message = one_line(context + what, 600);
  return f;
}

struct DatabaseChecks {
  Context& ctx;
  const Source& source;
  Connection& admin;
  const ConnInfo& info;
  std::vector<CheckFinding>& out;
  std::string releases_file_text;

  void report(std::string file, int line, std::string_view rule, std::string message,
              Severity severity = Severity::kError) {
    out.push_back({std::move(file), line, 1, severity, std::string(rule), std::move(message)});
  }

  SchemaDescription describe(Connection& conn) {
    DescribeOptions d;
    d.exclude = ctx.own_tables();
    return postgres_rules().describe(conn, d);  // scratch servers are PostgreSQL
  }

  // The tables a release shipped: "pre-existing" for every later step, as in the lint.
  std::vector<std::string> user_tables(Connection& conn) {
    const auto array = [](const std::vector<std::string>& items) {
      std::string a = "{";
      for (const auto& item : items) {
        if (a.size() > 1) a += ",";
        a += '"';
        for (char c : item) {
          if (c == '"' || c == '\\') a += '\\';
          a += c;
        }
        a += '"';
      }
      return a + "}";
    };
    std::vector<std::string> schemas, tables, oids;
    for (const auto& t : ctx.own_tables()) {
      schemas.push_back(t.schema);
      tables.push_back(t.table);
    }
    for (const auto& row : conn.query(
             "SELECT c.oid::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
             "WHERE c.relkind IN ('r', 'p', 'm') AND n.nspname NOT IN ('pg_catalog', "
             "'information_schema', 'pg_toast') AND n.nspname NOT LIKE 'pg_temp%' AND NOT EXISTS "
             "(SELECT 1 FROM unnest($1::text[], $2::text[]) AS o(s, t) WHERE o.s = n.nspname AND "
             "o.t = c.relname)",
             {array(schemas), array(tables)}))
      if (row[0]) oids.push_back(*row[0]);
    return oids;
  }

  // Measured, not guessed: a transactional up run statement by statement in a transaction that
  // is rolled back, reading after each statement the locks this session holds on pre-existing
  // tables (pg_locks) and their relfilenode (changed: the statement rewrote the table).
  void measure(Connection& conn, const Migration& m, const std::vector<std::string>& old) {
    spdlog::debug("check: measuring {} against {} pre-existing table(s)", m.up.file, old.size());
    if (old.empty() || m.up.tx != TxMode::kTransaction) return;
    const auto statements = split_sql(m.up.sql);
    for (const auto& st : statements)
      if (st.copy_data) return;
    const auto list = fmt::format("{}", fmt::join(old, ","));
    const auto probe = fmt::format(
        "SELECT c.oid::text, (SELECT quote_ident(nspname) FROM pg_namespace WHERE oid = "
        "c.relnamespace) || '.' || quote_ident(c.relname), c.relfilenode::text, "
        "coalesce(bool_or(l.mode = 'AccessExclusiveLock'), false)::text FROM pg_class c "
        "LEFT JOIN pg_locks l ON l.locktype = 'relation' AND l.relation = c.oid AND l.pid = "
        "pg_backend_pid() WHERE c.oid IN ({}) GROUP BY c.oid, c.relfilenode, c.relnamespace, "
        "c.relname",
        list);
    std::map<std::string, std::string> filenode;
    std::set<std::string> exclusive, rewritten;
    try {
      conn.execute("BEGIN");
      for (const auto& row : conn.execute(probe))
        if (row[0] && row[2]) filenode[*row[0]] = *row[2];
      for (const auto& st : statements) {
        conn.execute(st.text);
        for (const auto& row : conn.execute(probe)) {
          if (!row[0] || !row[1] || !row[2] || !row[3]) continue;
          const auto& oid = *row[0];
          if (*row[2] != filenode[oid] && !rewritten.contains(oid)) {
            rewritten.insert(oid);
            report(
                std::string(m.up.file), st.token_line, "measured-rewrite",
                fmt::format(
                    "measured on the scratch database: this statement rewrote pre-existing table "
                    "{} (its relfilenode changed), holding ACCESS EXCLUSIVE for as long as the "
                    "copy takes",
                    *row[1]));
          } else if (*row[3] == "true" && !exclusive.contains(oid) && !rewritten.contains(oid)) {
            report(std::string(m.up.file), st.token_line, "measured-lock",
                   fmt::format(
                       "measured on the scratch database: this statement takes ACCESS EXCLUSIVE on "
                       "pre-existing table {} (reads and writes wait; stepwise waits at most "
                       "--ddl-lock-timeout for it, then retries)",
                       *row[1]),
                   Severity::kWarning);
          }
          if (*row[3] == "true") exclusive.insert(oid);
        }
      }
    } catch (const DbError& e) {
      // The runner reports the failure itself, with file and line.
      spdlog::debug("check: measuring {} stopped: {}", m.up.file, first_line(e.what()));
    }
    try {
      conn.execute("ROLLBACK");
    } catch (const DbError&) {
    }
  }

  // before -> up -> down == before; -> up again == the first up. One database for the set.
  void round_trips() {
    ScratchDb db(admin, info, "roundtrip");
    Applier apply(db.conn(), ctx.log_table(), &ctx.stop);
    Version previous;
    auto before = describe(db.conn());
    std::vector<std::string> shipped;  // tables of the last release passed
    for (const auto& m : source.migrations.all()) {
      // After a round trip the tables are new objects again: read them once the last file of a
      // release went through up, down and up.
      if (!previous.is_zero() && source.releases.with_schema(previous) != nullptr)
        shipped = user_tables(db.conn());
      measure(db.conn(), m, shipped);
      try {
        apply.to(source.migrations, m.version);
      } catch (const StepFailed& e) {
        out.push_back(step_failure(e, "round-trip", "up fails on the set before it: "));
        return;  // nothing after it can be checked on this database
      }
      const auto first_up = describe(db.conn());
      if (m.up.tx == TxMode::kNoTransaction) rerun(db.conn(), m.up, first_up);
      if (!m.down) {
        before = first_up;
        previous = m.version;
        continue;
      }
      try {
        apply.to(source.migrations, previous);
      } catch (const StepFailed& e) {
        out.push_back(step_failure(e, "round-trip", "down fails after its up: "));
        return;
      }
      const auto after_down = describe(db.conn());
      if (auto d = diff_schemas(before, after_down); !d.empty()) {
        report(std::string(m.down->file), 1, "round-trip",
               "up then down does not restore the schema before the up: " + first_difference(d));
      }
      try {
        apply.to(source.migrations, m.version);
      } catch (const StepFailed& e) {
        out.push_back(step_failure(e, "round-trip", "up fails again after its down: "));
        return;
      }
      const auto second_up = describe(db.conn());
      if (auto d = diff_schemas(first_up, second_up); !d.empty()) {
        report(std::string(m.up.file), 1, "round-trip",
               "up after its down gives another schema than the first up: " + first_difference(d));
      }
      before = second_up;
      previous = m.version;
    }
  }

  // A no-transaction step is resumed statement by statement after an interruption, so each
  // statement may run twice: running the whole file again after it succeeded must work and
  // change nothing.
  void rerun(Connection& conn, const Script& script, const SchemaDescription& after) {
    for (const auto& st : split_sql(script.sql)) {
      if (st.copy_data) return;  // data blocks: not re-sent here
      try {
        (void)conn.execute(st.text);
      } catch (const DbError& e) {
        report(std::string(script.file), st.token_line, "not-idempotent",
               one_line(fmt::format(
                            "a no-transaction step may run a statement again when it is resumed, "
                            "but this one fails the second time: {} (SQLSTATE {}); write it IF NOT "
                            "EXISTS / IF EXISTS",
                            first_line(e.what()), e.sqlstate()),
                        600));
        return;
      }
    }
    if (auto d = diff_schemas(after, describe(conn)); !d.empty()) {
      report(std::string(script.file), 1, "not-idempotent",
             "running this no-transaction step again after it succeeded changes the schema: " +
                 first_difference(d));
    }
  }

  int release_line(const std::string& name) const {
    const auto at = releases_file_text.find("\"" + name + "\"");
    if (at == std::string::npos) return 1;
    return 1 +
           static_cast<int>(std::count(releases_file_text.begin(),
                                       releases_file_text.begin() + static_cast<long>(at), '\n'));
  }

  CheckFinding release_finding(const Release& r, std::string message) const {
    CheckFinding f;
    f.file = std::string(kReleasesFile);
    f.line = release_line(r.name);
    f.rule = "upgrade-differs";
    f.message = std::move(message);
    return f;
  }

  // Each release installed fresh equals its expected schema, and equals the same release
  // reached release by release from every earlier one.
  void upgraded_equals_fresh() {
    const auto& releases = source.releases.all();
    if (releases.empty()) return;
    std::vector<std::optional<SchemaDescription>> fresh(releases.size());
    for (std::size_t k = 0; k < releases.size(); ++k) {
      const auto& r = releases[k];
      ScratchDb db(admin, info, "fresh");
      Applier apply(db.conn(), ctx.log_table(), &ctx.stop);
      try {
        apply.to(source.migrations, r.schema);
      } catch (const StepFailed& e) {
        out.push_back(step_failure(e, "upgrade-differs",
                                   fmt::format("fresh install of release {} fails: ", r.name)));
        continue;
      }
      fresh[k] = describe(db.conn());
      if (const auto it = source.expected.find(r.schema); it != source.expected.end()) {
        const auto origin = fmt::format("expected/{}.json", r.schema);
        const auto expected = parse_schema_json(it->second, origin);
        if (auto d = diff_schemas(expected, *fresh[k]); !d.empty()) {
          report(origin, 1, "upgrade-differs",
                 fmt::format(
                     "release {}: a fresh install differs from the embedded expected schema: {} "
                     "(regenerate it with stepwise generate-expected, or fix the migration)",
                     r.name, first_difference(d)));
        }
      }
    }
    for (std::size_t j = 0; j + 1 < releases.size(); ++j) {
      if (!fresh[j]) continue;
      ScratchDb db(admin, info, "upgrade");
      Applier apply(db.conn(), ctx.log_table(), &ctx.stop);
      try {
        apply.to(source.migrations, releases[j].schema);
      } catch (const StepFailed&) {
        continue;  // reported with the fresh install
      }
      for (std::size_t k = j + 1; k < releases.size(); ++k) {
        const auto& r = releases[k];
        try {
          apply.to(source.migrations, r.schema);
        } catch (const StepFailed& e) {
          out.push_back(step_failure(
              e, "upgrade-differs",
              fmt::format("upgrade from release {} to {} fails: ", releases[j].name, r.name)));
          break;
        }
        if (!fresh[k]) continue;
        if (auto d = diff_schemas(*fresh[k], describe(db.conn())); !d.empty())
          out.push_back(release_finding(
              r, fmt::format("release {} upgraded from {} differs from a fresh install of {}: {}",
                             r.name, releases[j].name, r.name, first_difference(d))));
      }
    }
  }

  // Compatibility ranges proven: checks/<release>.sql holds the statements that release's code
  // runs. On one database brought up version by version with the real runner, each probe runs
  // at every schema version of its release's range (compatible_range, as validate --release),
  // in a transaction that is rolled back. A statement that fails is one finding: the first
  // version it fails at, and how many more.
  void probes() {
    struct Probe {
      const Release* release = nullptr;
      std::string file;  // checks/<release>.sql
      std::vector<Statement> statements;
      Version lo, hi;
      std::map<int, std::vector<Version>> failed_at;  // statement line -> versions
      std::map<int, std::string> first_error;
      int versions_run = 0;
    };
    std::vector<Probe> list;
    Version last;
    for (const auto& [name, text] : source.checks) {
      const auto file = fmt::format("{}/{}", kChecksDir, name);
      const auto release_name = name.substr(0, name.size() - 4);  // without ".sql"
      const auto* r = source.releases.find(release_name);
      if (r == nullptr) {
        report(file, 1, "compat-probe",
               fmt::format("no release {} in releases.json: a probe file is named "
                           "checks/<release>.sql after the release whose code runs it",
                           printable(release_name, 60)));
        continue;
      }
      auto parsed = parse_script(text);
      if (parsed.problem) {
        report(file, parsed.problem->line, "compat-probe", parsed.problem->message);
        continue;
      }
      bool usable = true;
      for (const auto& st : parsed.statements)
        if (st.copy_data || transaction_control(st.text) != TxControl::kNone) {
          report(file, st.token_line, "compat-probe",
                 "a probe runs in a transaction that check rolls back: no COPY FROM STDIN, "
                 "transaction control or savepoints in it");
          usable = false;
          break;
        }
      if (!usable || parsed.statements.empty()) continue;
      Probe p;
      p.release = r;
      p.file = file;
      p.statements = std::move(parsed.statements);
      std::tie(p.lo, p.hi) = compatible_range(source.releases, *r);
      last = std::max(last, p.hi);
      list.push_back(std::move(p));
    }
    if (list.empty()) return;
    ScratchDb db(admin, info, "probe");
    Applier apply(db.conn(), ctx.log_table(), &ctx.stop);
    auto& conn = db.conn();
    for (const auto& m : source.migrations.all()) {
      if (m.version > last) break;
      try {
        apply.to(source.migrations, m.version);
      } catch (const StepFailed&) {
        break;  // reported by the round trip and the fresh installs
      }
      for (auto& p : list) {
        if (m.version < p.lo || m.version > p.hi) continue;
        ++p.versions_run;
        conn.execute("BEGIN");
        try {
          conn.execute("SET LOCAL statement_timeout = '60s'");
          for (const auto& st : p.statements) {
            try {
              (void)conn.execute(st.text);
            } catch (const DbError& e) {
              // A lost connection or a server shutting down is not the probe's failure.
              if (e.sqlstate().empty() || e.sqlstate().starts_with("08") ||
                  e.sqlstate().starts_with("57P"))
                throw;
              auto& at = p.failed_at[st.token_line];
              if (at.empty())
                p.first_error[st.token_line] =
                    fmt::format("{} (SQLSTATE {})", first_line(e.what()), e.sqlstate());
              at.push_back(m.version);
              break;  // the transaction is aborted: the rest of the probe cannot run here
            }
          }
        } catch (...) {
          try {
            conn.execute("ROLLBACK");
          } catch (const DbError&) {
          }
          throw;
        }
        conn.execute("ROLLBACK");
      }
    }
    for (const auto& p : list) {
      spdlog::info("check: probe {} of release {} ran at {} schema version(s) ({} to {})", p.file,
                   p.release->name, p.versions_run, p.lo, p.hi);
      for (const auto& [line, versions] : p.failed_at) {
        std::string more;
        if (versions.size() > 1)
          more = fmt::format(" (and at {} more version(s) of the range, up to {})",
                             versions.size() - 1, versions.back());
        report(p.file, line, "compat-probe",
               one_line(fmt::format("release {}'s code fails at schema version {}, inside its "
                                    "compatibility range {} to {}{}: {}",
                                    p.release->name, versions.front(), p.lo, p.hi, more,
                                    p.first_error.at(line)),
                        600));
      }
    }
  }
};

// ---- output -------------------------------------------------------------------------------

std::string level_of(Severity s) {
  return s == Severity::kError ? "error" : "warning";
}

nlohmann::json sarif(const std::vector<CheckFinding>& findings, const std::string& base) {
  using nlohmann::json;
  json rules = json::array();
  for (const auto& r : lint_rules())
    rules.push_back({{"id", r.name},
                     {"shortDescription", {{"text", r.summary}}},
                     {"defaultConfiguration", {{"level", level_of(r.severity)}}}});
  for (const auto& [id, text] :
       {std::pair<const char*, const char*>{"round-trip",
                                            "up, down and up again must restore each schema"},
        {"not-idempotent", "a no-transaction step must be safe to run again"},
        {"compat-probe",
         "a release's probe (checks/<release>.sql) runs at every schema version of its "
         "compatibility range"},
        {"upgrade-differs",
         "a release reached by upgrading equals a fresh install and its expected schema"}})
    rules.push_back({{"id", id},
                     {"shortDescription", {{"text", text}}},
                     {"defaultConfiguration", {{"level", "error"}}}});
  json results = json::array();
  for (const auto& f : findings)
    results.push_back(
        {{"ruleId", f.rule},
         {"level", level_of(f.severity)},
         {"message", {{"text", f.message}}},
         {"locations",
          json::array({{{"physicalLocation",
                         {{"artifactLocation", {{"uri", base + f.file}}},
                          {"region", {{"startLine", f.line}, {"startColumn", f.col}}}}}}})}});
  return {{"$schema", "https://json.schemastore.org/sarif-2.1.0.json"},
          {"version", "2.1.0"},
          {"runs", json::array({{{"tool",
                                  {{"driver",
                                    {{"name", "stepwise"},
                                     {"version", std::string(kToolVersion)},
                                     {"informationUri", "https://github.com/stepwise"},
                                     {"rules", rules}}}}},
                                 {"results", results}}})}};
}

}  // namespace

constexpr std::string_view kAllowList = kCheckAllowFile;

int run_check(Context& ctx, const CheckOptions& options) {
  const auto format = options.output.empty() ? ctx.options().output : options.output;
  if (format != "text" && format != "json" && format != "sarif")
    throw UsageError(fmt::format("--output: invalid value {} (expected text, json or sarif)",
                                 printable(format, 40)));
  if (!ctx.options().database_url.empty())
    throw UsageError(
        "check: --database-url names the application's database, and check never runs there",
        "give a scratch server with --scratch-url URL (a role allowed to create databases), or "
        "none: check then starts a throw-away PostgreSQL when initdb is on PATH");
  for (const char* var : {"STEPWISE_DATABASE_URL", "DATABASE_URL"})
    if (const char* v = std::getenv(var);
        v != nullptr && *v != '\0' && !options.scratch_url.empty() && options.scratch_url == v)
      throw UsageError(fmt::format("check: --scratch-url is the application's database ({}); "
                                   "check never runs there",
                                   var),
                       "give a scratch server: check creates and drops its own databases on it");

  const auto& source = ctx.source();
  auto findings = lint_migrations(source.migrations, source.releases, source.expected);
  if (options.require_down)
    for (auto& f : findings)
      if (f.rule == "irreversible") f.severity = Severity::kError;

  std::string database_checks = "skipped";
  if (!options.lint_only) {
    std::optional<TempCluster> cluster;
    std::string url = options.scratch_url;
    if (url.empty()) {
      std::string bindir = find_on_path("initdb");
      if (bindir.empty() || ::access((bindir + "/pg_ctl").c_str(), X_OK) != 0) {
        spdlog::warn(
            "check: no --scratch-url and no initdb on PATH: round trips and upgraded-equals-fresh "
            "were not run (lint only)");
      } else {
        cluster.emplace(bindir);
        url = cluster->conninfo();
        database_checks = "temporary server";
      }
    } else {
      database_checks = "scratch server";
    }
    if (!url.empty()) {
      const auto info = ctx.conninfo_for(url);
      // A CI job may start its scratch server beside this step: wait for it as `up` would.
      auto admin = ctx.connect_to(info);
      admin->on_notice([](std::string_view) {});
      ctx.active.store(admin.get());
      std::string releases_text;
      try {
        const auto files = ctx.options().source_dir.empty()
                               ? load_embedded()
                               : load_directory(ctx.options().source_dir);
        releases_text = files.releases_json.value_or("");
      } catch (const Error&) {
      }
      DatabaseChecks checks{ctx, source, *admin, info, findings, releases_text};
      checks.round_trips();
      checks.upgraded_equals_fresh();
      checks.probes();
      findings = apply_suppressions(source.migrations, std::move(findings));
      ctx.active.store(nullptr);
    }
  }

  // The folder's allow list (embedded with the set): suppressions for shipped files, whose
  // text must not change.
  if (source.check_allow)
    findings =
        apply_allow_list(std::move(findings), parse_allow_list(*source.check_allow, kAllowList),
                         kAllowList, database_checks != "skipped");

  std::size_t errors = 0, warnings = 0;
  for (const auto& f : findings) (f.severity == Severity::kError ? errors : warnings)++;
  const bool failed = errors > 0 || (options.strict && warnings > 0);
  const int code = failed ? static_cast<int>(ExitCode::kCheckFailed) : 0;
  const std::string base =
      ctx.options().source_dir.empty() ? "migrations/" : ctx.options().source_dir + "/";

  if (format == "json") {
    nlohmann::json list = nlohmann::json::array();
    for (const auto& f : findings)
      list.push_back({{"file", f.file},
                      {"line", f.line},
                      {"col", f.col},
                      {"severity", std::string(to_string(f.severity))},
                      {"rule", f.rule},
                      {"message", f.message}});
    ctx.print_json({{"ok", !failed},
                    {"exit_code", code},
                    {"errors", errors},
                    {"warnings", warnings},
                    {"database_checks", database_checks},
                    {"findings", list}});
  } else if (format == "sarif") {
    ctx.print_json(sarif(findings, base));
  } else {
    for (auto f : findings) {
      f.file = ctx.options().source_dir.empty() ? f.file : base + f.file;
      fmt::print("{}\n", format_finding(f));
    }
    std::fflush(stdout);
  }
  spdlog::info("check: {} error(s), {} warning(s) in {} migration(s); database checks: {}{}",
               errors, warnings, source.migrations.size(), database_checks, failed ? "" : " - ok");
  return code;
}

}  // namespace stepwise::cli
