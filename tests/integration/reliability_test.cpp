// Whatever happens mid-run (SIGTERM, a killed backend, a lock queue, an interrupted concurrent
// index build), the next plain `up` finishes the job and nothing is applied twice.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <cstdlib>
#include <future>
#include <pqxx/pqxx>
#include <thread>

#include "test_db.hpp"

namespace stepwise::test {
namespace {

using namespace std::chrono_literals;

// Waits until some backend runs a query containing `needle`; returns its pid (0 on timeout).
int wait_for_query(const TestDb& db, const std::string& needle,
                   std::chrono::milliseconds timeout = 20s) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    const auto rows = db.query(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND"
        " pid <> pg_backend_pid() AND state = 'active' AND query LIKE '%" +
        needle + "%'");
    if (!rows.empty()) return std::stoi(rows[0][0]);
    std::this_thread::sleep_for(20ms);
  }
  return 0;
}

// Under the CockroachDB rules (forced by STEPWISE_ENGINE) every statement commits on its own:
// a statement before the interrupted one has taken effect; on PostgreSQL the step rolls back.
int tables_left_by_an_interrupted_step() {
  const char* engine = std::getenv("STEPWISE_ENGINE");
  return engine != nullptr && std::string(engine) == "cockroachdb" ? 1 : 0;
}

// A migration that sleeps until the marker table exists, so a re-run of the same file is fast.
const char* kSleepUntilMarker =
    "SELECT pg_sleep(CASE WHEN to_regclass('public.marker') IS NULL THEN 30 ELSE 0 END);\n";

TEST(Signals, SigtermCancelsARunningStatementRecordsItAndExitsWithin2s) {
  REQUIRE_TEST_DATABASE();
  TestDb db;
  MigrationDir dir;
  dir.write("1_one.up.sql", "CREATE TABLE one (id int);");
  dir.write("2_slow.up.sql", std::string("CREATE TABLE two (id int);\n") + kSleepUntilMarker);
  Process p(stepwise_cmd({"--database-url", db.url(), "--source", dir.path(), "up"}),
            {{"STEPWISE_DATABASE_URL", ""}, {"DATABASE_URL", ""}});
  ASSERT_NE(wait_for_query(db, "pg_sleep(CASE"), 0) << p.stderr_so_far();
  const auto sent = std::chrono::steady_clock::now();
  p.signal(SIGTERM);
  const auto r = p.wait(10s);
  const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - sent);
  EXPECT_EQ(r.exit_code, 7) << r.err;
  EXPECT_LT(took.count(), 2000) << "SIGTERM to exit";
  std::cout << "[ measure  ] SIGTERM to exit: " << took.count() << " ms\n";
  EXPECT_NE(r.err.find("received SIGTERM"), std::string::npos) << r.err;
  EXPECT_EQ(db.scalar("SELECT outcome FROM stepwise_log WHERE version = '2'"), "interrupted");
  EXPECT_EQ(db.count("SELECT count(*) FROM pg_tables WHERE tablename = 'two'"),
            tables_left_by_an_interrupted_step())
      << "rolled back (PostgreSQL), or committed statement by statement (CockroachDB rules)";
  EXPECT_EQ(db.count("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND database = "
                     "(SELECT oid FROM pg_database WHERE datname = current_database())"),
            0)
      << "lock released";
  db.query("CREATE TABLE marker ()");
  const auto again = db.stepwise({"--source", dir.path(), "up"});
  EXPECT_EQ(again.exit_code, 0) << again.err;
  EXPECT_EQ(db.count("SELECT count(*) FROM stepwise_log WHERE outcome = 'succeeded'"), 2);
}

TEST(Signals, SigtermInANoTransactionStepResumesAfterTheDoneStatements) {
  REQUIRE_TEST_DATABASE();
  TestDb db;
  MigrationDir dir;
  dir.write("1_steps.up.sql", std::string("-- stepwise:no-transaction\n"
                                          "CREATE TABLE a (id int);\n") +
                                  kSleepUntilMarker + "CREATE TABLE b (id int);\n");
  Process p(stepwise_cmd({"--database-url", db.url(), "--source", dir.path(), "up"}),
            {{"STEPWISE_DATABASE_URL", ""}, {"DATABASE_URL", ""}});
  ASSERT_NE(wait_for_query(db, "pg_sleep(CASE"), 0) << p.stderr_so_far();
  p.signal(SIGINT);
  const auto r = p.wait(10s);
  EXPECT_EQ(r.exit_code, 7) << r.err;
  const auto row = db.query("SELECT outcome, statements_done FROM stepwise_log");
  ASSERT_EQ(row.size(), 1u);
  EXPECT_EQ(row[0][0], "interrupted");
  EXPECT_EQ(row[0][1], "1");
  db.query("CREATE TABLE marker ()");
  // CREATE TABLE a is not idempotent: resuming must not run it again.
  const auto again = db.stepwise({"--source", dir.path(), "up"});
  EXPECT_EQ(again.exit_code, 0) << again.err;
  EXPECT_NE(again.err.find("resuming after 1 statement(s) already done"), std::string::npos)
      << again.err;
  EXPECT_EQ(db.count("SELECT count(*) FROM pg_tables WHERE tablename IN ('a', 'b')"), 2);
}

TEST(Signals, AnInterruptedNotResumableStepWaitsForAPersonsDecision) {
  REQUIRE_TEST_DATABASE();
  TestDb db;
  MigrationDir dir;
  dir.write("1_steps.up.sql", std::string("-- stepwise:no-transaction\n-- stepwise:not-resumable\n"
                                          "CREATE TABLE a (id int);\n") +
                                  kSleepUntilMarker + "INSERT INTO a VALUES (1);\n");
  Process p(stepwise_cmd({"--database-url", db.url(), "--source", dir.path(), "up"}),
            {{"STEPWISE_DATABASE_URL", ""}, {"DATABASE_URL", ""}});
  ASSERT_NE(wait_for_query(db, "pg_sleep(CASE"), 0) << p.stderr_so_far();
  p.signal(SIGTERM);
  EXPECT_EQ(p.wait(10s).exit_code, 7);
  db.query("CREATE TABLE marker ()");
  // Not resumed automatically: up stops and says what to check.
  auto r = db.stepwise({"--source", dir.path(), "up"});
  EXPECT_EQ(r.exit_code, 13) << r.err;
  EXPECT_NE(r.err.find("1_steps.up.sql was interrupted after 1 of 3 statement(s)"),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("stepwise repair 1 --applied"), std::string::npos) << r.err;
  // The person undoes what took effect and records it; the next up runs the step in full.
  db.query("DROP TABLE a");
  r = db.stepwise({"--source", dir.path(), "repair", "1", "--rolled-back"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  r = db.stepwise({"--source", dir.path(), "up"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(db.count("SELECT count(*) FROM a"), 1);
  EXPECT_EQ(db.scalar("SELECT string_agg(outcome, ',' ORDER BY id) FROM stepwise_log"),
            "interrupted,abandoned,succeeded");
  // repair refuses what needs no repair.
  r = db.stepwise({"--source", dir.path(), "repair", "1", "--applied"});
  EXPECT_EQ(r.exit_code, 6) << r.err;
}

// repair writes the log under the lock `up` takes, and lets go of it on every way out: a repair
// whose log write fails leaves no lease row behind for the next run to wait out.
TEST(LockOwner, ARepairThatThrowsLeavesNoLeaseBehind) {
  REQUIRE_TEST_DATABASE();
  TestDb db;
  MigrationDir dir;
  dir.write("1_bad.up.sql", "CREATE TABLE a (id int);\nSELECT 1/0;\n");
  auto r = db.stepwise({"--lock-strategy", "lease", "--source", dir.path(), "up"});
  ASSERT_EQ(r.exit_code, 1) << r.err;
  EXPECT_EQ(db.count("SELECT count(*) FROM stepwise_log_lock"), 0);
  db.query(
      "CREATE FUNCTION refuse_rows() RETURNS trigger LANGUAGE plpgsql AS "
      "$$BEGIN RAISE EXCEPTION 'no more rows'; END$$");
  db.query(
      "CREATE TRIGGER refuse BEFORE INSERT ON stepwise_log FOR EACH ROW EXECUTE FUNCTION "
      "refuse_rows()");
  r = db.stepwise(
      {"--lock-strategy", "lease", "--source", dir.path(), "repair", "1", "--rolled-back"});
  EXPECT_NE(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("no more rows"), std::string::npos) << r.err;
  EXPECT_EQ(db.count("SELECT count(*) FROM stepwise_log_lock"), 0);
  // With the log writable again, repair takes the lock at once: nothing was left to expire.
  db.query("DROP TRIGGER refuse ON stepwise_log");
  r = db.stepwise({"--lock-strategy", "lease", "--lock-timeout", "2s", "--source", dir.path(),
                   "repair", "1", "--rolled-back"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(db.count("SELECT count(*) FROM stepwise_log_lock"), 0);
}

// repair waits for the lock like up does, and times out with up's exit code.
TEST(LockOwner, ARepairWaitsForTheLockHolder) {
  REQUIRE_TEST_DATABASE();
  TestDb db;
  MigrationDir dir;
  dir.write("1_bad.up.sql", "SELECT 1/0;\n");
  ASSERT_EQ(db.stepwise({"--lock-strategy", "lease", "--source", dir.path(), "up"}).exit_code, 1);
  db.query(
      "INSERT INTO stepwise_log_lock VALUES ('public.stepwise_log', 'someone else', now(),"
      " now() + interval '1 hour')");
  const auto r = db.stepwise({"--lock-strategy", "lease", "--lock-timeout", "1s", "--source",
                              dir.path(), "repair", "1", "--rolled-back"});
  EXPECT_EQ(r.exit_code, 5) << r.err;
  EXPECT_NE(r.err.find("repair: could not take the migration lock"), std::string::npos) << r.err;
  EXPECT_EQ(db.count("SELECT count(*) FROM stepwise_log WHERE outcome = 'abandoned'"), 0);
}

TEST(ConnectionLost, ServerSideTerminationExitsWith8AndARerunCompletes) {
  REQUIRE_TEST_DATABASE();
  TestDb db;
  MigrationDir dir;
  dir.write("1_one.up.sql", "CREATE TABLE one (id int);");
  dir.write("2_slow.up.sql", std::string("CREATE TABLE two (id int);\n") + kSleepUntilMarker);
  Process p(stepwise_cmd({"--database-url", db.url(), "--source", dir.path(), "up"}),
            {{"STEPWISE_DATABASE_URL", ""}, {"DATABASE_URL", ""}});
  const int pid = wait_for_query(db, "pg_sleep(CASE");
  ASSERT_NE(pid, 0) << p.stderr_so_far();
  db.query("SELECT pg_terminate_backend(" + std::to_string(pid) + ")");
  const auto r = p.wait(10s);
  EXPECT_EQ(r.exit_code, 8) << r.err;
  EXPECT_NE(r.err.find("lost the connection to the server"), std::string::npos) << r.err;
  EXPECT_EQ(db.count("SELECT count(*) FROM pg_tables WHERE tablename = 'two'"),
            tables_left_by_an_interrupted_step());
  db.query("CREATE TABLE marker ()");
  const auto again = db.stepwise({"--source", dir.path(), "up"});
  EXPECT_EQ(again.exit_code, 0) << again.err;
  EXPECT_EQ(db.count("SELECT count(*) FROM stepwise_log WHERE outcome = 'succeeded'"), 2);
}

TEST(LockTimeouts, AStepQueuedBehindALongQueryBacksOffAndRetries) {
  REQUIRE_TEST_DATABASE();
  TestDb db;
  db.query("CREATE TABLE busy (id int)");
  MigrationDir dir;
  dir.write("1_alter.up.sql", "ALTER TABLE busy ADD COLUMN note text;");
  // A long-running reader holds ACCESS SHARE on busy for ~2.5 s.
  std::promise<void> holding;
  std::thread reader([&] {
    pqxx::connection c(db.url());
    pqxx::work w(c);
    w.exec("SELECT count(*) FROM busy");
    holding.set_value();
    // Hold until the migration has queued behind us and hit its 300 ms lock_timeout at least
    // once (its request shows in pg_locks as not granted), however slowly it started.
    pqxx::connection watcher(db.url());
    const auto give_up = std::chrono::steady_clock::now() + 30s;
    bool queued = false;
    while (!queued && std::chrono::steady_clock::now() < give_up) {
      pqxx::nontransaction q(watcher);
      queued = q.exec1(
                    "SELECT count(*) FROM pg_locks WHERE relation = 'busy'::regclass"
                    " AND NOT granted")[0]
                   .as<int>() > 0;
      if (!queued) std::this_thread::sleep_for(10ms);
    }
    std::this_thread::sleep_for(600ms);
    w.commit();
  });
  holding.get_future().wait();  // under load, connecting alone can take longer than a fixed sleep
  const auto r = db.stepwise(
      {"--source", dir.path(), "--ddl-lock-timeout", "300ms", "--ddl-lock-retries", "5", "up"});
  reader.join();
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("1_alter.up.sql: canceling statement due to lock timeout; retry 1/5"),
            std::string::npos)
      << r.err;
  EXPECT_EQ(db.count("SELECT count(*) FROM information_schema.columns WHERE table_name = 'busy' AND"
                     " column_name = 'note'"),
            1);
  EXPECT_EQ(db.count("SELECT count(*) FROM stepwise_log"), 1) << "retries leave no failed attempts";
}

TEST(LockTimeouts, RetriesAreBoundedThenTheStepFails) {
  REQUIRE_TEST_DATABASE();
  TestDb db;
  db.query("CREATE TABLE busy (id int)");
  MigrationDir dir;
  dir.write("1_alter.up.sql", "ALTER TABLE busy ADD COLUMN note text;");
  pqxx::connection c(db.url());
  pqxx::work w(c);
  w.exec("LOCK TABLE busy IN ACCESS SHARE MODE");
  const auto r = db.stepwise(
      {"--source", dir.path(), "--ddl-lock-timeout", "200ms", "--ddl-lock-retries", "1", "up"});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("(SQLSTATE 55P03)"), std::string::npos) << r.err;
  EXPECT_EQ(db.scalar("SELECT outcome || ' ' || sqlstate FROM stepwise_log"), "failed 55P03");
}

// What a runner killed mid-step leaves in the log: a 'running' attempt for `file`'s contents.
void record_running_attempt(TestDb& db, int version, const std::string& name,
                            const std::string& file) {
  const auto checksum =
      db.scalar("SELECT encode(sha256(convert_to($x$" + file + "$x$, 'UTF8')), 'hex')");
  db.query(fmt::format(
      "INSERT INTO stepwise_log (version, name, direction, outcome, checksum, checksum_algorithm,"
      " host, pid, tool_version) VALUES ({}, '{}', 'up', 'running', '{}', 'sha256', 'gone', 1, "
      "'x')",
      version, name, checksum));
}

TEST(Resume, InterruptedConcurrentIndexBuildIsDroppedAndBuiltAgain) {
  REQUIRE_TEST_DATABASE();
  TestDb db;
  MigrationDir dir;
  dir.write("1_t.up.sql",
            "CREATE TABLE t (v int); INSERT INTO t SELECT g FROM generate_series(1, 5000) g;");
  ASSERT_EQ(db.stepwise({"--source", dir.path(), "up"}).exit_code, 0);
  // Leave what an interrupted build leaves: an INVALID index and a 'running' attempt.
  db.query("INSERT INTO t VALUES (1)");
  EXPECT_ANY_THROW(db.query("CREATE UNIQUE INDEX CONCURRENTLY t_v_key ON t (v)"));
  db.query("DELETE FROM t WHERE ctid = (SELECT max(ctid) FROM t WHERE v = 1)");
  ASSERT_EQ(
      db.scalar("SELECT indisvalid::text FROM pg_index WHERE indexrelid = 't_v_key'::regclass"),
      "false");
  const std::string file =
      "-- stepwise:no-transaction\nCREATE UNIQUE INDEX CONCURRENTLY t_v_key ON t (v);\n";
  dir.write("2_idx.up.sql", file);
  record_running_attempt(db, 2, "idx", file);
  const auto r = db.stepwise({"--source", dir.path(), "up"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("dropping the invalid index t_v_key"), std::string::npos) << r.err;
  EXPECT_EQ(
      db.scalar("SELECT indisvalid::text FROM pg_index WHERE indexrelid = 't_v_key'::regclass"),
      "true");
  EXPECT_EQ(
      db.scalar(
          "SELECT string_agg(outcome, ',' ORDER BY id) FROM stepwise_log WHERE version = '2'"),
      "abandoned,succeeded");
}

TEST(Resume, ValidIndexFromAnInterruptedRunIsNotBuiltTwice) {
  REQUIRE_TEST_DATABASE();
  TestDb db;
  MigrationDir dir;
  dir.write("1_t.up.sql", "CREATE TABLE t (v int);");
  ASSERT_EQ(db.stepwise({"--source", dir.path(), "up"}).exit_code, 0);
  // The build finished, but the runner died before recording it.
  db.query("CREATE INDEX t_v_idx ON t (v)");
  const std::string file =
      "-- stepwise:no-transaction\nCREATE INDEX CONCURRENTLY t_v_idx ON t (v);\n";
  dir.write("2_idx.up.sql", file);
  record_running_attempt(db, 2, "idx", file);
  const auto r = db.stepwise({"--source", dir.path(), "up"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("already exists and is valid"), std::string::npos) << r.err;
}

// A step is sent as one text with the log writes around it: how the script ends must not
// change what runs or what is recorded.
TEST(Transactions, HowAScriptEndsDoesNotMatter) {
  REQUIRE_TEST_DATABASE();
  TestDb db;
  MigrationDir dir;
  dir.write("1_no_semicolon.up.sql", "CREATE TABLE a (id int)");
  dir.write("2_trailing_comment.up.sql", "CREATE TABLE b (id int) -- no semicolon, no newline");
  dir.write("3_block_comment.up.sql", "CREATE TABLE c (id int); /* done */");
  dir.write("4_dollar_body.up.sql",
            "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$");
  const auto r = db.stepwise({"--source", dir.path(), "up"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(db.count("SELECT count(*) FROM pg_tables WHERE tablename IN ('a', 'b', 'c')"), 3);
  EXPECT_EQ(db.count("SELECT count(*) FROM stepwise_log WHERE outcome = 'succeeded' AND"
                     " finished_at IS NOT NULL AND statements_done = 1"),
            4);

  // An unclosed comment would swallow everything after it: the file is refused at load, before
  // anything is sent, naming the line where the comment starts; nothing is logged.
  dir.write("5_unclosed.up.sql", "CREATE TABLE d (id int);\n/* never closed\n");
  const auto bad = db.stepwise({"--source", dir.path(), "up"});
  EXPECT_EQ(bad.exit_code, 3) << bad.err;
  EXPECT_NE(bad.err.find("5_unclosed.up.sql:2: unterminated /* comment"), std::string::npos)
      << bad.err;
  EXPECT_EQ(db.count("SELECT count(*) FROM pg_tables WHERE tablename = 'd'"), 0);
  EXPECT_EQ(db.count("SELECT count(*) FROM stepwise_log WHERE version = '5'"), 0);
}

TEST(Transactions, AFileWrappedInBeginCommitRunsAtomicallyWithItsLogRow) {
  REQUIRE_TEST_DATABASE();
  TestDb db;
  MigrationDir dir;
  dir.write("1_wrapped.up.sql",
            "BEGIN;\nCREATE TABLE w (id int);\nINSERT INTO w VALUES (1);\nSELEC oops;\nCOMMIT;\n");
  const auto r = db.stepwise({"--source", dir.path(), "up"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("1_wrapped.up.sql:4: syntax error"), std::string::npos) << r.err;
  EXPECT_EQ(db.count("SELECT count(*) FROM pg_tables WHERE tablename = 'w'"), 0);
  dir.write("1_mid.up.sql", "CREATE TABLE m (id int);\nCOMMIT;\nCREATE TABLE n (id int);\n");
  dir.remove("1_wrapped.up.sql");
  const auto refused = db.stepwise({"--source", dir.path(), "up"});
  EXPECT_EQ(refused.exit_code, 3);
  EXPECT_NE(refused.err.find("1_mid.up.sql:2: COMMIT inside a transactional migration"),
            std::string::npos)
      << refused.err;
}

}  // namespace
}  // namespace stepwise::test
