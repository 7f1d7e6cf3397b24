// Racing runners through a real PgBouncer (started by scripts/with-postgres.sh with a pool of 4
// server connections, so that 16 clients share server sessions). The steps only insert data:
// a step applied twice would double a row silently, which is exactly what must never happen.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <set>

#include "test_db.hpp"

namespace stepwise::test {
namespace {

std::string pooler_url(const char* var, const TestDb& db) {
  const char* url = std::getenv(var);
  return url == nullptr ? std::string() : with_database(url, db.name());
}

#define REQUIRE_POOLER(var)                                                               \
  do {                                                                                    \
    REQUIRE_TEST_DATABASE();                                                              \
    if (std::getenv(var) == nullptr) {                                                    \
      if (const char* r = std::getenv("STEPWISE_REQUIRE_DB"); r && std::string(r) == "1") \
        FAIL() << var << " is not set (pgbouncer missing? run scripts/install-deps.sh)";  \
      GTEST_SKIP() << var << " is not set (no pgbouncer)";                                \
    }                                                                                     \
  } while (0)

constexpr int kMigrations = 40;

// Version 1 makes the table; every other version inserts its number (every 8th in a
// no-transaction step, two statements: v and -v).
void write_data_set(const MigrationDir& dir) {
  dir.write("000001_counter.up.sql", "CREATE TABLE counter (v int NOT NULL);\n");
  for (int i = 2; i <= kMigrations; ++i) {
    char name[64];
    std::snprintf(name, sizeof name, "%06d_row_%d.up.sql", i, i);
    const auto n = std::to_string(i);
    if (i % 8 == 0)
      dir.write(name, "-- stepwise:no-transaction\nINSERT INTO counter VALUES (" + n +
                          ");\nINSERT INTO counter VALUES (-" + n + ");\n");
    else
      dir.write(name, "INSERT INTO counter VALUES (" + n + ");\n");
  }
}

struct RaceOutcome {
  std::map<int, int> exit_codes;  // code -> how many racers
  std::string first_stderr;
  std::map<int, std::string> stderr_by_code;  // the first racer's stderr for each code
};

RaceOutcome race(const std::string& url, const MigrationDir& dir, int racers,
                 const std::vector<std::string>& extra) {
  std::vector<Process> running;
  running.reserve(static_cast<std::size_t>(racers));
  for (int i = 0; i < racers; ++i) {
    std::vector<std::string> args = {"--database-url", url, "--source", dir.path()};
    args.insert(args.end(), extra.begin(), extra.end());
    args.emplace_back("up");
    running.emplace_back(
        stepwise_cmd(args),
        std::map<std::string, std::string>{{"STEPWISE_DATABASE_URL", ""}, {"DATABASE_URL", ""}});
  }
  RaceOutcome out;
  for (auto& p : running) {
    const auto r = p.wait(std::chrono::seconds(120));
    EXPECT_NE(r.exit_code, -1) << "a racer hung or was killed (signal " << r.signal << ")\n"
                               << r.err;
    ++out.exit_codes[r.exit_code];
    if (out.first_stderr.empty()) out.first_stderr = r.err;
    out.stderr_by_code.emplace(r.exit_code, r.err);
  }
  return out;
}

// Nothing doubled: each inserted value once, each version succeeded at most once.
void expect_nothing_doubled(const TestDb& db) {
  if (db.scalar("SELECT to_regclass('counter') IS NULL") == "t") return;  // nothing applied yet
  EXPECT_EQ(
      db.count("SELECT count(*) FROM (SELECT v FROM counter GROUP BY v HAVING count(*) > 1) d"), 0)
      << db.scalar(
             "SELECT string_agg(v::text || ' x' || c, ', ') FROM (SELECT v, count(*) c FROM "
             "counter GROUP BY v HAVING count(*) > 1) d");
  EXPECT_EQ(db.count("SELECT count(*) FROM (SELECT version FROM stepwise_log WHERE outcome = "
                     "'succeeded' AND direction = 'up' GROUP BY version HAVING count(*) > 1) d"),
            0);
}

void expect_complete(const TestDb& db) {
  const int no_tx = kMigrations / 8;
  EXPECT_EQ(db.count("SELECT count(*) FROM counter"), kMigrations - 1 + no_tx);
  EXPECT_EQ(db.count("SELECT count(DISTINCT version) FROM stepwise_log WHERE outcome = "
                     "'succeeded'"),
            kMigrations);
}

std::string codes(const RaceOutcome& o) {
  std::string s;
  for (const auto& [code, n] : o.exit_codes)
    s += (s.empty() ? "" : ", ") + std::to_string(n) + "x exit " + std::to_string(code);
  return s;
}

TEST(HostilePooler, TransactionPoolingSixteenRacersUseTheLeaseAndApplyOnce) {
  REQUIRE_POOLER("STEPWISE_TEST_PGBOUNCER_TX_URL");
  TestDb db;
  MigrationDir dir;
  write_data_set(dir);
  const auto outcome = race(pooler_url("STEPWISE_TEST_PGBOUNCER_TX_URL", db), dir, 16, {});
  std::printf("[ measure ] transaction pooling, auto lock, 16 racers: %s\n",
              codes(outcome).c_str());
  EXPECT_EQ(outcome.exit_codes.size(), 1u) << codes(outcome) << "\n" << outcome.first_stderr;
  EXPECT_EQ(outcome.exit_codes.count(0), 1u) << codes(outcome);
  expect_nothing_doubled(db);
  expect_complete(db);
  EXPECT_EQ(db.count("SELECT count(*) FROM stepwise_log_lock"), 0) << "lease left behind";
  EXPECT_EQ(
      db.count(
          "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND database = (SELECT oid "
          "FROM pg_database WHERE datname = current_database())"),
      0)
      << "a session advisory lock was stranded on a pooled server session";
}

TEST(HostilePooler, SessionPoolingSixteenRacersApplyOnce) {
  REQUIRE_POOLER("STEPWISE_TEST_PGBOUNCER_SESSION_URL");
  TestDb db;
  MigrationDir dir;
  write_data_set(dir);
  const auto outcome = race(pooler_url("STEPWISE_TEST_PGBOUNCER_SESSION_URL", db), dir, 16, {});
  std::printf("[ measure ] session pooling, auto lock, 16 racers: %s\n", codes(outcome).c_str());
  EXPECT_EQ(outcome.exit_codes.size(), 1u) << codes(outcome) << "\n" << outcome.first_stderr;
  EXPECT_EQ(outcome.exit_codes.count(0), 1u) << codes(outcome);
  expect_nothing_doubled(db);
  expect_complete(db);
}

TEST(HostilePooler, SessionPoolingWithTheAdvisoryLockApplyOnce) {
  REQUIRE_POOLER("STEPWISE_TEST_PGBOUNCER_SESSION_URL");
  TestDb db;
  MigrationDir dir;
  write_data_set(dir);
  const auto outcome = race(pooler_url("STEPWISE_TEST_PGBOUNCER_SESSION_URL", db), dir, 16,
                            {"--lock-strategy", "advisory"});
  std::printf("[ measure ] session pooling, advisory lock, 16 racers: %s\n",
              codes(outcome).c_str());
  EXPECT_EQ(outcome.exit_codes.size(), 1u) << codes(outcome) << "\n" << outcome.first_stderr;
  EXPECT_EQ(outcome.exit_codes.count(0), 1u) << codes(outcome);
  expect_nothing_doubled(db);
  expect_complete(db);
}

// The advisory lock forced through transaction pooling: it cannot work, but it must never
// double a step or hang. Racers end with 0 (their steps ran on the lock's session), 9 (a step
// landed on another session and was rolled back unapplied) or 5 (a lock stranded on a pooled
// session outlived --lock-timeout). A direct `up` afterwards finishes the set.
TEST(HostilePooler, TransactionPoolingWithTheAdvisoryLockForcedNeverDoubles) {
  REQUIRE_POOLER("STEPWISE_TEST_PGBOUNCER_TX_URL");
  TestDb db;
  MigrationDir dir;
  write_data_set(dir);
  const auto outcome = race(pooler_url("STEPWISE_TEST_PGBOUNCER_TX_URL", db), dir, 16,
                            {"--lock-strategy", "advisory", "--lock-timeout", "4s"});
  std::printf("[ measure ] transaction pooling, advisory lock forced, 16 racers: %s\n",
              codes(outcome).c_str());
  for (const auto& [code, n] : outcome.exit_codes)
    EXPECT_TRUE(code == 0 || code == 9 || code == 5) << n << " racer(s) exited " << code << "\n"
                                                     << outcome.stderr_by_code.at(code);
  expect_nothing_doubled(db);
  // Stranded session locks live on PgBouncer's server connections: end those, then finish.
  (void)db.query(
      "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() "
      "AND pid <> pg_backend_pid()");
  const auto r = db.stepwise({"--source", dir.path(), "up"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  expect_nothing_doubled(db);
  expect_complete(db);
}

// One runner through transaction pooling with the advisory lock forced, while other clients
// keep the pool's server sessions busy: a step that lands on a session without the lock stops
// with exit 9 naming the file, and nothing of it is applied or recorded.
TEST(HostilePooler, AStepOnASessionWithoutTheLockIsRolledBackWithExitNine) {
  REQUIRE_POOLER("STEPWISE_TEST_PGBOUNCER_TX_URL");
  TestDb db;
  MigrationDir dir;
  write_data_set(dir);
  const auto url = pooler_url("STEPWISE_TEST_PGBOUNCER_TX_URL", db);
  // PgBouncer hands out its server connections in turn (server_round_robin): once the pool has
  // several, consecutive transactions of one client land on different server sessions. Repeat
  // until a run is caught; every run must end 0, 9 or 5, never doubled.
  bool saw_lock_lost = false;
  for (int round = 0; round < 5 && !saw_lock_lost; ++round) {
    {  // Four clients at once make PgBouncer open all four server connections.
      std::vector<Process> warm;
      for (int i = 0; i < 4; ++i)
        warm.emplace_back(
            std::vector<std::string>{"/usr/bin/psql", url, "-Atqc", "SELECT pg_sleep(0.2)"});
      for (auto& w : warm) (void)w.wait(std::chrono::seconds(30));
    }
    const auto r = run(stepwise_cmd({"--database-url", url, "--source", dir.path(),
                                     "--lock-strategy", "advisory", "--lock-timeout", "3s", "up"}));
    ASSERT_TRUE(r.exit_code == 0 || r.exit_code == 9 || r.exit_code == 5) << r.err;
    if (r.exit_code == 9) {
      saw_lock_lost = true;
      EXPECT_NE(r.err.find(".up.sql: not applied"), std::string::npos) << r.err;
      EXPECT_NE(r.err.find("pooler"), std::string::npos) << r.err;
    }
    expect_nothing_doubled(db);
    (void)db.query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = "
        "current_database() AND pid <> pg_backend_pid()");
    if (db.count("SELECT count(DISTINCT version) FROM stepwise_log WHERE outcome = "
                 "'succeeded'") == kMigrations)
      (void)db.query("TRUNCATE counter; DELETE FROM stepwise_log WHERE name <> 'counter'");
  }
  EXPECT_TRUE(saw_lock_lost) << "no run was caught on a server session without the lock";
}

}  // namespace
}  // namespace stepwise::test
