// Long steps are never silent: what a step waits for or how far its index build is, reported
// every --progress-interval from PostgreSQL's own views.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <pqxx/pqxx>
#include <sstream>
#include <thread>

#include "test_db.hpp"

namespace stepwise::test {
namespace {

using namespace std::chrono_literals;

const std::map<std::string, std::string> kNoEnvUrl = {{"STEPWISE_DATABASE_URL", ""},
                                                      {"DATABASE_URL", ""}};

bool wait_for_stderr(const Process& p, const std::string& needle,
                     std::chrono::milliseconds timeout = 20s) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (p.stderr_so_far().find(needle) != std::string::npos) return true;
    std::this_thread::sleep_for(20ms);
  }
  return false;
}

std::size_t occurrences(const std::string& text, const std::string& needle) {
  std::size_t n = 0;
  for (auto pos = text.find(needle); pos != std::string::npos; pos = text.find(needle, pos + 1))
    ++n;
  return n;
}

// A session of the test's own holds an ACCESS EXCLUSIVE lock, idle in transaction, until the
// step has been reported waiting for it.
ProcessResult run_blocked(const TestDb& db, const MigrationDir& dir,
                          std::vector<std::string> extra) {
  pqxx::connection blocker(db.url() + "?application_name=blocker-app");
  pqxx::work tx(blocker);
  tx.exec("LOCK TABLE accounts IN ACCESS EXCLUSIVE MODE");
  std::vector<std::string> args = {
      "--database-url",      db.url(), "--source",           dir.path(),
      "--progress-interval", "300ms",  "--ddl-lock-timeout", "0"};
  args.insert(args.end(), extra.begin(), extra.end());
  args.emplace_back("up");
  Process p(stepwise_cmd(args), kNoEnvUrl);
  const bool reported = wait_for_stderr(p, "blocked by pid");
  tx.commit();
  auto r = p.wait(30s);
  EXPECT_TRUE(reported) << r.err;
  return r;
}

TEST(Progress, ALockWaitNamesTheBlockingSessionButNotItsQuery) {
  REQUIRE_TEST_DATABASE();
  TestDb db;
  (void)db.query("CREATE TABLE accounts (id int, secret_balance int)");
  MigrationDir dir;
  dir.write("1_add.up.sql", "ALTER TABLE accounts ADD COLUMN note text;\n");
  const auto r = run_blocked(db, dir, {});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("1_add.up.sql: "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("waiting for Lock/relation"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("(blocker-app, idle in transaction, transaction open"), std::string::npos)
      << r.err;
  EXPECT_EQ(r.err.find("LOCK TABLE accounts"), std::string::npos)
      << "the blocker's query text is shown only when asked for\n"
      << r.err;
  EXPECT_EQ(db.count("SELECT count(*) FROM information_schema.columns WHERE column_name = 'note'"),
            1);
}

TEST(Progress, ShowBlockingQueryIncludesTheBlockersQueryText) {
  REQUIRE_TEST_DATABASE();
  TestDb db;
  (void)db.query("CREATE TABLE accounts (id int)");
  MigrationDir dir;
  dir.write("1_add.up.sql", "ALTER TABLE accounts ADD COLUMN note text;\n");
  const auto r = run_blocked(db, dir, {"--show-blocking-query"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find(": LOCK TABLE accounts IN ACCESS EXCLUSIVE MODE"), std::string::npos)
      << r.err;
}

TEST(Progress, AnIndexBuildReportsItsPhaseAndBlocksAsJsonFields) {
  REQUIRE_TEST_DATABASE();
  TestDb db;
  // Each row costs a millisecond to index: the build runs for a few seconds on 3000 rows.
  (void)db.query(
      "CREATE TABLE t AS SELECT g AS v FROM generate_series(1, 3000) g;"
      "CREATE FUNCTION slow(int) RETURNS int IMMUTABLE LANGUAGE plpgsql AS"
      " $$BEGIN PERFORM pg_sleep(0.001); RETURN $1; END$$");
  MigrationDir dir;
  dir.write("1_index.up.sql", "CREATE INDEX t_slow ON t (slow(v));\n");
  const auto r = db.stepwise(
      {"--source", dir.path(), "--progress-interval", "300ms", "--log-format", "json", "up"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  int reports = 0;
  bool saw_blocks = false;
  std::istringstream lines(r.err);
  for (std::string line; std::getline(lines, line);) {
    const auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded() || j.value("event", "") != "step_progress") continue;
    ++reports;
    EXPECT_EQ(j.value("file", ""), "1_index.up.sql");
    EXPECT_GE(j.value("elapsed_ms", 0), 300);
    EXPECT_TRUE(j.value("detailed", false));
    if (j.value("activity", "").find("CREATE INDEX: building index") != std::string::npos &&
        j.contains("done") && j.contains("total") && j.value("unit", "") == "blocks") {
      saw_blocks = true;
      EXPECT_LE(j["done"].get<long long>(), j["total"].get<long long>());
    }
  }
  EXPECT_GE(reports, 2) << r.err;
  EXPECT_TRUE(saw_blocks) << r.err;
}

// CREATE INDEX CONCURRENTLY in a no-transaction step, slow enough (a millisecond a row) for
// several reports: the blocks done grow from one report to the next within a phase.
TEST(Progress, AConcurrentIndexBuildShowsGrowingBlocksDone) {
  REQUIRE_TEST_DATABASE();
  TestDb db;
  (void)db.query(
      "CREATE TABLE t AS SELECT g AS v, repeat('x', 200) AS pad FROM generate_series(1, 2500) g;"
      "CREATE FUNCTION slow(int) RETURNS int IMMUTABLE LANGUAGE plpgsql AS"
      " $$BEGIN PERFORM pg_sleep(0.001); RETURN $1; END$$");
  MigrationDir dir;
  dir.write("1_index.up.sql",
            "-- stepwise:no-transaction\nCREATE INDEX CONCURRENTLY t_slow ON t (slow(v));\n");
  const auto r = db.stepwise(
      {"--source", dir.path(), "--progress-interval", "250ms", "--log-format", "json", "up"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::map<std::string, std::vector<long long>> done_by_phase;
  std::istringstream lines(r.err);
  for (std::string line; std::getline(lines, line);) {
    const auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded() || j.value("event", "") != "step_progress" || !j.contains("done"))
      continue;
    done_by_phase[j.value("activity", "")].push_back(j["done"].get<long long>());
  }
  bool grew = false;
  for (const auto& [phase, done] : done_by_phase) {
    EXPECT_NE(phase.find("CREATE INDEX CONCURRENTLY"), std::string::npos) << phase;
    for (std::size_t i = 1; i < done.size(); ++i) grew = grew || done[i] > done[i - 1];
  }
  EXPECT_TRUE(grew) << r.err;
  EXPECT_EQ(db.count("SELECT count(*) FROM pg_index WHERE NOT indisvalid"), 0);
}

// Counts the server log's "connection authorized" lines for one database (log_connections is
// switched on for the test): the no-op path must open exactly one connection.
class ConnectionLog {
 public:
  explicit ConnectionLog(const TestDb& db) : db_(db) {
    const char* data = std::getenv("STEPWISE_TEST_PGDATA");
    if (data != nullptr) path_ = std::string(data) + "/../server.log";
    (void)db_.query("ALTER SYSTEM SET log_connections = on");
    (void)db_.query("SELECT pg_reload_conf()");
    std::this_thread::sleep_for(300ms);
  }
  ~ConnectionLog() {
    try {
      (void)db_.query("ALTER SYSTEM RESET log_connections");
      (void)db_.query("SELECT pg_reload_conf()");
    } catch (...) {
    }
  }
  [[nodiscard]] bool usable() const { return !path_.empty(); }
  [[nodiscard]] int count() const {
    std::this_thread::sleep_for(300ms);  // the server writes its log asynchronously
    std::ifstream in(path_);
    int n = 0;
    const auto needle = "database=" + db_.name() + " ";
    for (std::string line; std::getline(in, line);)
      if (line.find("connection authorized") != std::string::npos &&
          (line + " ").find(needle) != std::string::npos)
        ++n;
    return n;
  }

 private:
  const TestDb& db_;
  std::string path_;
};

TEST(Progress, TheNoOpPathOpensOneConnectionAndALongStepASecond) {
  REQUIRE_TEST_DATABASE();
  TestDb db;
  ConnectionLog log(db);
  ASSERT_TRUE(log.usable()) << "STEPWISE_TEST_PGDATA is not set (run under with-postgres.sh)";
  MigrationDir dir;
  dir.write("1_sleep.up.sql", "SELECT pg_sleep(0.8);\n");
  // A step longer than the interval: the monitor opens its one connection.
  auto before = log.count();
  auto r = db.stepwise({"--source", dir.path(), "--progress-interval", "200ms", "up"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(log.count() - before, 2) << "the run's connection and the monitor's\n" << r.err;
  // Nothing pending: one connection, whatever the interval.
  before = log.count();
  r = db.stepwise({"--source", dir.path(), "--progress-interval", "100ms", "up"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(log.count() - before, 1) << r.err;
}

TEST(Progress, AFastStepPrintsNoProgress) {
  REQUIRE_TEST_DATABASE();
  TestDb db;
  MigrationDir dir;
  dir.write("1_t.up.sql", "CREATE TABLE t (id int);\n");
  const auto r = db.stepwise({"--source", dir.path(), "--progress-interval", "2s", "up"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err.find("elapsed"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("progress"), std::string::npos) << r.err;
}

TEST(Progress, ABadIntervalIsAUsageError) {
  REQUIRE_TEST_DATABASE();
  TestDb db;
  MigrationDir dir;
  dir.write("1_t.up.sql", "CREATE TABLE t (id int);\n");
  const auto r = db.stepwise({"--source", dir.path(), "--progress-interval", "10ms", "up"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("--progress-interval"), std::string::npos) << r.err;
  EXPECT_EQ(db.count("SELECT count(*) FROM pg_tables WHERE tablename = 't'"), 0);
}

// Through a pooler the step's server session is unknown: elapsed time only, one warning.
TEST(Progress, ThroughAPoolerReportsElapsedTimeWithOneWarning) {
  REQUIRE_TEST_DATABASE();
  const char* pooler = std::getenv("STEPWISE_TEST_PGBOUNCER_TX_URL");
  if (pooler == nullptr) {
    if (const char* req = std::getenv("STEPWISE_REQUIRE_DB"); req && std::string(req) == "1")
      FAIL() << "STEPWISE_TEST_PGBOUNCER_TX_URL is not set";
    GTEST_SKIP() << "no pgbouncer";
  }
  TestDb db;
  MigrationDir dir;
  dir.write("1_sleep.up.sql", "SELECT pg_sleep(1.5);\n");
  const auto r = run(stepwise_cmd({"--database-url", with_database(pooler, db.name()), "--source",
                                   dir.path(), "--progress-interval", "300ms", "up"}),
                     kNoEnvUrl);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(occurrences(r.err, "progress reports show elapsed time only"), 1u) << r.err;
  EXPECT_GE(occurrences(r.err, "elapsed (no details"), 2u) << r.err;
}

}  // namespace
}  // namespace stepwise::test
