// `stepwise up` and `status` against a real PostgreSQL server.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <pqxx/pqxx>

#include <filesystem>
#include <thread>
#include "stepwise/table_name.hpp"

#include "tcp_forwarder.hpp"
#include "test_db.hpp"

namespace stepwise::test {
namespace {

constexpr int kExampleCount = 10;
constexpr const char* kExampleLatest = "20240315100000";

long long log_rows(const TestDb& db, const std::string& table = "public.stepwise_log") {
  return db.count("SELECT count(*) FROM " + table);
}

TEST(Up, FreshDatabaseAppliesTheEmbeddedSetOnce) {
  REQUIRE_TEST_DATABASE();
  TestDb db;
  const auto r = db.stepwise({"up"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("applied 10 migration(s)"), std::string::npos) << r.out;
  EXPECT_EQ(db.count("SELECT count(*) FROM stepwise_log WHERE outcome = 'succeeded'"),
            kExampleCount);
  EXPECT_EQ(db.count("SELECT count(DISTINCT version) FROM stepwise_log"), kExampleCount);
  EXPECT_EQ(db.scalar("SELECT max(version) FROM stepwise_log"), kExampleLatest);
  // Every row is complete: checksum, algorithm, times, duration, host, pid, tool version.
  EXPECT_EQ(db.count("SELECT count(*) FROM stepwise_log WHERE length(checksum) = 64 AND"
                     " checksum_algorithm = 'sha256' AND finished_at >= started_at AND"
                     " duration_ms >= 0 AND host <> '' AND pid > 0 AND tool_version <> ''"),
            kExampleCount);
  // The schema is there, including the index built outside a transaction and the backfill's view.
  EXPECT_EQ(db.scalar("SELECT indisvalid::text FROM pg_index WHERE indexrelid = "
                      "'tasks_assignee_id_idx'::regclass"),
            "true");
  EXPECT_EQ(db.count("SELECT count(*) FROM project_overview"), 0);
  EXPECT_EQ(db.scalar("SELECT string_agg(enumlabel, ',' ORDER BY enumsortorder) FROM pg_enum"
                      " WHERE enumtypid = 'task_status'::regtype"),
            "todo,doing,blocked,done");
}

// The start-up path: `up` plans from the migrations alone and never reads releases.json or
// expected/ while there is nothing to do; once there is work, the whole folder is validated
// (releases.json included) before anything is applied. A broken migration file fails even the
// no-op, as it always did.
TEST(Up, SourceIsValidatedInFullBeforeWorkAndBrokenFilesFailEvenTheNoOp) {
  REQUIRE_TEST_DATABASE();
  TestDb db;
  MigrationDir dir;
  dir.write("1_a.up.sql", "CREATE TABLE a (id int);\n");
  ASSERT_EQ(db.stepwise({"--source", dir.path(), "up"}).exit_code, 0);
  dir.write("releases.json", "{ not json");
  const auto noop = db.stepwise({"--source", dir.path(), "up"});
  EXPECT_EQ(noop.exit_code, 0) << noop.err;
  EXPECT_NE(noop.out.find("nothing to do"), std::string::npos) << noop.out;

  dir.write("2_b.up.sql", "CREATE TABLE b (id int);\n");
  const auto work = db.stepwise({"--source", dir.path(), "up"});
  EXPECT_EQ(work.exit_code, 3) << work.err;
  EXPECT_NE(work.err.find("releases.json"), std::string::npos) << work.err;
  EXPECT_EQ(db.count("SELECT count(*) FROM pg_tables WHERE tablename = 'b'"), 0);
  EXPECT_EQ(log_rows(db), 1);

  // An applied file broken afterwards (an unterminated string): the no-op refuses the folder.
  std::filesystem::remove(std::filesystem::path(dir.path()) / "releases.json");
  std::filesystem::remove(std::filesystem::path(dir.path()) / "2_b.up.sql");
  dir.write("1_a.up.sql", "CREATE TABLE a (id int);\nSELECT 'open;\n");
  const auto broken = db.stepwise({"--source", dir.path(), "up"});
  EXPECT_EQ(broken.exit_code, 3) << broken.err;
  EXPECT_NE(broken.err.find("1_a.up.sql:2"), std::string::npos) << broken.err;
}

// The planning view lists down files by name and never reads them: `up` does not run them.
// A broken down file is found by the full load before any work, and by migrate-to.
TEST(Up, SourceNoOpDoesNotReadDownFilesButWorkValidatesThem) {
  REQUIRE_TEST_DATABASE();
  TestDb db;
  MigrationDir dir;
  dir.write("1_a.up.sql", "CREATE TABLE a (id int);\n");
  dir.write("1_a.down.sql", "DROP TABLE a;\n");
  ASSERT_EQ(db.stepwise({"--source", dir.path(), "up"}).exit_code, 0);
  dir.write("1_a.down.sql", "DROP TABLE a;\nSELECT 'open;\n");
  const auto noop = db.stepwise({"--source", dir.path(), "up"});
  EXPECT_EQ(noop.exit_code, 0) << noop.err;
  EXPECT_NE(noop.out.find("nothing to do"), std::string::npos) << noop.out;

  dir.write("2_b.up.sql", "CREATE TABLE b (id int);\n");
  const auto work = db.stepwise({"--source", dir.path(), "up"});
  EXPECT_EQ(work.exit_code, 3) << work.err;
  EXPECT_NE(work.err.find("1_a.down.sql:2"), std::string::npos) << work.err;
  EXPECT_EQ(db.count("SELECT count(*) FROM pg_tables WHERE tablename = 'b'"), 0);
  const auto down = db.stepwise({"--source", dir.path(), "migrate-to", "0"});
  EXPECT_EQ(down.exit_code, 3) << down.err;
  EXPECT_EQ(db.count("SELECT count(*) FROM pg_tables WHERE tablename = 'a'"), 1);
  // A down file without its up file is still refused by name, unread.
  std::filesystem::remove(std::filesystem::path(dir.path()) / "2_b.up.sql");
  dir.write("1_a.down.sql", "DROP TABLE a;\n");
  dir.write("3_c.down.sql", "SELECT 1;\n");
  const auto orphan = db.stepwise({"--source", dir.path(), "up"});
  EXPECT_EQ(orphan.exit_code, 3) << orphan.err;
  EXPECT_NE(orphan.err.find("3_c.down.sql: down file without its up file"), std::string::npos)
      << orphan.err;
}

TEST(Up, SecondRunAppliesNothingAndTakesNoLock) {
  REQUIRE_TEST_DATABASE();
  TestDb db;
  ASSERT_EQ(db.stepwise({"up"}).exit_code, 0);
  const auto before = log_rows(db);
  // Hold the migration lock from another session: a run that tried to take it would time out.
  pqxx::connection holder(db.url());
  pqxx::nontransaction w(holder);
  const auto key = lock_key(TableName{"public", "stepwise_log"});
  ASSERT_EQ(w.exec("SELECT pg_try_advisory_lock(" + std::to_string(key) + ")")[0][0].as<bool>(),
            true);
  // A run that queued for the lock would time out (exit 5) or, re-reading the log while it
  // waits (every 250 ms), end as "done by another runner" and log that it waited; the bound is
  // loose because CI runs this under AddressSanitizer on a loaded machine (1.1 s seen).
  const auto r = db.stepwise({"--lock-timeout", "10s", "--log-level", "debug", "up"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("nothing to do"), std::string::npos) << r.out;
  EXPECT_EQ(r.err.find("lock"), std::string::npos) << r.err;
  EXPECT_LT(r.took.count(), 5000);
  EXPECT_EQ(log_rows(db), before);
}

TEST(Up, WaitsForTheLockAndTimesOutWithItsOwnExitCode) {
  REQUIRE_TEST_DATABASE();
  TestDb db;
  pqxx::connection holder(db.url());
  pqxx::nontransaction w(holder);
  const auto key = lock_key(TableName{"public", "stepwise_log"});
  w.exec("SELECT pg_advisory_lock(" + std::to_string(key) + ")");
  const auto r = db.stepwise({"--lock-timeout", "1500ms", "up"});
  EXPECT_EQ(r.exit_code, 5) << r.err;
  EXPECT_NE(r.err.find("could not take the migration lock within 1.5s"), std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("backend pid " + std::to_string(holder.backendpid())), std::string::npos)
      << r.err;
  EXPECT_GE(r.took.count(), 1400);
  // Nothing was applied and the waiter left no lock behind.
  EXPECT_EQ(db.count("SELECT count(*) FROM pg_tables WHERE tablename = 'accounts'"), 0);
  EXPECT_EQ(
      db.count("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND database = (SELECT "
               "oid FROM pg_database WHERE datname = current_database()) AND pid <> " +
               std::to_string(holder.backendpid())),
      0);
}

TEST(Up, FailingMigrationRollsBackIsLoggedAndStops) {
  REQUIRE_TEST_DATABASE();
  TestDb db;
  MigrationDir dir;
  dir.write("1_one.up.sql", "CREATE TABLE one (id int);\n");
  dir.write("2_two.up.sql",
            "CREATE TABLE two (id int);\n\nINSERT INTO two VALUES (1);\nSELEC broken;\n");
  dir.write("3_three.up.sql", "CREATE TABLE three (id int);\n");
  const auto r = db.stepwise({"--source", dir.path(), "up"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("2_two.up.sql:4: syntax error at or near \"SELEC\" (SQLSTATE 42601)"),
            std::string::npos)
      << r.err;
  EXPECT_EQ(db.count("SELECT count(*) FROM pg_tables WHERE tablename IN ('one', 'two', 'three')"),
            1);
  const auto rows =
      db.query("SELECT version, outcome, sqlstate, error FROM stepwise_log ORDER BY id");
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0][1], "succeeded");
  EXPECT_EQ(rows[1][0], "2");
  EXPECT_EQ(rows[1][1], "failed");
  EXPECT_EQ(rows[1][2], "42601");
  EXPECT_NE(rows[1][3].find("SELEC"), std::string::npos);

  // status shows the failure; fixing the file and running up again finishes the job.
  const auto s = db.stepwise({"--source", dir.path(), "status"});
  EXPECT_EQ(s.exit_code, 0);
  EXPECT_NE(s.out.find("failed: syntax error"), std::string::npos) << s.out;
  dir.write("2_two.up.sql", "CREATE TABLE two (id int);\nINSERT INTO two VALUES (1);\n");
  const auto again = db.stepwise({"--source", dir.path(), "up"});
  EXPECT_EQ(again.exit_code, 0) << again.err;
  EXPECT_EQ(db.count("SELECT count(*) FROM two"), 1);
  EXPECT_EQ(db.count("SELECT count(*) FROM stepwise_log WHERE outcome = 'succeeded'"), 3);
}

TEST(Up, OutOfOrderIsRefusedUnlessAllowed) {
  REQUIRE_TEST_DATABASE();
  TestDb db;
  MigrationDir dir;
  dir.write("1_one.up.sql", "CREATE TABLE one (id int);");
  dir.write("3_three.up.sql", "CREATE TABLE three (id int);");
  ASSERT_EQ(db.stepwise({"--source", dir.path(), "up"}).exit_code, 0);
  dir.write("2_two.up.sql", "CREATE TABLE two (id int);");
  const auto r = db.stepwise({"--source", dir.path(), "up"});
  EXPECT_EQ(r.exit_code, 6);
  EXPECT_NE(r.err.find("2_two.up.sql is pending but older than applied version 3"),
            std::string::npos)
      << r.err;
  EXPECT_EQ(db.count("SELECT count(*) FROM pg_tables WHERE tablename = 'two'"), 0);
  const auto ok = db.stepwise({"--source", dir.path(), "up", "--allow-out-of-order"});
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_EQ(db.count("SELECT count(*) FROM pg_tables WHERE tablename = 'two'"), 1);
}

TEST(Up, DatabaseAheadOfTheBuildIsLeftAloneWithAWarning) {
  REQUIRE_TEST_DATABASE();
  TestDb db;
  MigrationDir newer;
  newer.write("1_one.up.sql", "CREATE TABLE one (id int);");
  newer.write("2_two.up.sql", "CREATE TABLE two (id int);");
  newer.write("3_three.up.sql", "CREATE TABLE three (id int);");
  ASSERT_EQ(db.stepwise({"--source", newer.path(), "up"}).exit_code, 0);
  MigrationDir older;  // the previous release, still running during a rolling upgrade
  older.write("1_one.up.sql", "CREATE TABLE one (id int);");
  older.write("2_two.up.sql", "CREATE TABLE two (id int);");
  const auto r = db.stepwise({"--source", older.path(), "up"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("ahead of this build"), std::string::npos) << r.err;
  EXPECT_EQ(log_rows(db), 3);
  // But an unknown applied version below pending work is refused.
  older.write("4_four.up.sql", "CREATE TABLE four (id int);");
  const auto refused = db.stepwise({"--source", older.path(), "up"});
  EXPECT_EQ(refused.exit_code, 6);
  EXPECT_EQ(db.count("SELECT count(*) FROM pg_tables WHERE tablename = 'four'"), 0);
}

TEST(Up, NoTransactionStepRunsStatementByStatementOutsideATransaction) {
  REQUIRE_TEST_DATABASE();
  TestDb db;
  MigrationDir dir;
  dir.write("1_t.up.sql",
            "CREATE TABLE t (id int, v text); INSERT INTO t SELECT g, g::text FROM "
            "generate_series(1, 1000) g;");
  dir.write("2_idx.up.sql",
            "-- stepwise:no-transaction\n"
            "CREATE INDEX CONCURRENTLY t_v_idx ON t (v);\n"
            "CREATE INDEX CONCURRENTLY t_id_idx ON t (id);\n");
  const auto r = db.stepwise({"--source", dir.path(), "up"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(db.count("SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
                     " WHERE c.relname IN ('t_v_idx', 't_id_idx') AND i.indisvalid"),
            2);
  EXPECT_EQ(db.scalar("SELECT statements_done FROM stepwise_log WHERE version = '2'"), "2");
}

TEST(Up, PlaceholderFileIsLoggedAsAStep) {
  REQUIRE_TEST_DATABASE();
  TestDb db;
  MigrationDir dir;
  dir.write("1_placeholder.up.sql", "-- reserved\n/* nothing here */\n");
  const auto r = db.stepwise({"--source", dir.path(), "up"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(db.scalar("SELECT outcome FROM stepwise_log WHERE version = '1'"), "succeeded");
}

TEST(Up, CustomLogTableInItsOwnSchema) {
  REQUIRE_TEST_DATABASE();
  TestDb db;
  const auto r = db.stepwise({"--log-table", "Ops.Migration_Log", "up"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(log_rows(db, "ops.migration_log"), kExampleCount);
  EXPECT_EQ(db.count("SELECT count(*) FROM pg_tables WHERE tablename = 'stepwise_log'"), 0);
}

TEST(Up, JsonOutputDescribesTheRun) {
  REQUIRE_TEST_DATABASE();
  TestDb db;
  const auto r = db.stepwise({"--output", "json", "up"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto doc = nlohmann::json::parse(r.out);
  EXPECT_EQ(doc["command"], "up");
  EXPECT_EQ(doc["ok"], true);
  EXPECT_EQ(doc["version_before"], 0);
  EXPECT_EQ(doc["version_after"], 20240315100000LL);
  ASSERT_EQ(doc["applied"].size(), 10u);
  EXPECT_EQ(doc["applied"][0]["name"], "create_accounts");
  const auto again = nlohmann::json::parse(db.stepwise({"--output", "json", "up"}).out);
  EXPECT_EQ(again["applied"].size(), 0u);
}

TEST(Up, DryRunChangesNothing) {
  REQUIRE_TEST_DATABASE();
  TestDb db;
  const auto r = db.stepwise({"--dry-run", "up"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("would apply 20240105090000_create_accounts.up.sql"), std::string::npos)
      << r.out;
  EXPECT_EQ(db.count("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"), 0);
}

TEST(Status, ListsAppliedAndPendingAndReadsOnly) {
  REQUIRE_TEST_DATABASE();
  TestDb db;
  MigrationDir dir;
  dir.write("1_one.up.sql", "CREATE TABLE one (id int);");
  ASSERT_EQ(db.stepwise({"--source", dir.path(), "up"}).exit_code, 0);
  dir.write("2_two.up.sql", "CREATE TABLE two (id int);");
  const auto r = db.stepwise({"--source", dir.path(), "status"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("1                    one"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("applied 20"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("2                    two                                      pending"),
            std::string::npos)
      << r.out;
  const auto j = db.stepwise({"--source", dir.path(), "--output", "json", "status"});
  const auto doc = nlohmann::json::parse(j.out);
  EXPECT_EQ(doc["database_version"], 1);
  EXPECT_EQ(doc["migrations"][1]["state"], "pending");
  EXPECT_EQ(db.count("SELECT count(*) FROM pg_tables WHERE tablename = 'two'"), 0);
}

TEST(Status, MissingLogTableIsAClearErrorAndCreatesNothing) {
  REQUIRE_TEST_DATABASE();
  TestDb db;
  const auto r = db.stepwise({"--log-table", "audit.nothing_here", "status"});
  EXPECT_EQ(r.exit_code, 10);
  EXPECT_NE(r.err.find("log table audit.nothing_here does not exist"), std::string::npos) << r.err;
  EXPECT_EQ(db.count("SELECT count(*) FROM pg_namespace WHERE nspname = 'audit'"), 0);
}

TEST(Connect, UnreachableServerFailsWithinTheConnectTimeout) {
  const auto r = run(stepwise_cmd({"--database-url", "postgres://nobody@127.0.0.1:1/x",
                                   "--connect-timeout", "1s", "status"}),
                     {{"STEPWISE_DATABASE_URL", ""}, {"DATABASE_URL", ""}});
  EXPECT_EQ(r.exit_code, 4) << r.err;
  EXPECT_NE(r.err.find("cannot connect to 127.0.0.1:1/x within 1.0s"), std::string::npos) << r.err;
  EXPECT_LT(r.took.count(), 5000);
}

TEST(Connect, WaitsForAServerThatIsNotUpYet) {
  REQUIRE_TEST_DATABASE();
  TestDb db;
  // The "server" appears on a new port only after 1.5 s: a forwarder to the real one.
  TcpForwarder forwarder(server_port(db.url()));
  const auto url = with_port(db.url(), forwarder.port());
  Process p(stepwise_cmd({"--database-url", url, "--connect-timeout", "30s", "up"}),
            {{"STEPWISE_DATABASE_URL", ""}, {"DATABASE_URL", ""}});
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  forwarder.start();
  const auto r = p.wait(std::chrono::seconds(60));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("waiting for the database at 127.0.0.1:" + std::to_string(forwarder.port())),
            std::string::npos)
      << r.err;
  EXPECT_GE(r.took.count(), 1400);
  EXPECT_EQ(db.count("SELECT count(*) FROM stepwise_log"), kExampleCount);
}

// With --source the folder loads while the connection is made: a broken folder is reported at
// once with the server away, not after --connect-timeout, and the connect error does not hide it.
TEST(Connect, ABrokenSourceFolderIsReportedAtOnceWhileTheServerIsAway) {
  MigrationDir dir;
  dir.write("1_a.up.sql", "CREATE TABLE a (id int);\n");
  dir.write("1_b.up.sql", "CREATE TABLE b (id int);\n");
  const std::vector<std::vector<std::string>> commands = {
      {"up"}, {"--dry-run", "up"}, {"migrate-to", "1"}, {"--dry-run", "migrate-to", "1"}};
  for (const auto& command : commands) {
    std::vector<std::string> args = {"--database-url",    "postgres://nobody@127.0.0.1:1/x",
                                     "--connect-timeout", "30s",
                                     "--source",          dir.path()};
    args.insert(args.end(), command.begin(), command.end());
    const auto r = run(stepwise_cmd(args), {{"STEPWISE_DATABASE_URL", ""}, {"DATABASE_URL", ""}});
    std::string shown;
    for (const auto& word : command) shown += word + " ";
    EXPECT_EQ(r.exit_code, 3) << shown << ": " << r.err;
    EXPECT_NE(r.err.find("duplicate version 1"), std::string::npos) << shown << ": " << r.err;
    EXPECT_EQ(r.err.find("cannot connect"), std::string::npos) << shown << ": " << r.err;
    EXPECT_LT(r.took.count(), 10'000) << shown;
  }
}

// A good folder leaves the connect failure as it was: its message, its exit code.
TEST(Connect, AGoodSourceFolderAndAnUnreachableServerGiveTheConnectError) {
  MigrationDir dir;
  dir.write("1_a.up.sql", "CREATE TABLE a (id int);\n");
  for (const auto& command : std::vector<std::vector<std::string>>{{"up"}, {"migrate-to", "1"}}) {
    std::vector<std::string> args = {"--database-url",    "postgres://nobody@127.0.0.1:1/x",
                                     "--connect-timeout", "1s",
                                     "--source",          dir.path()};
    args.insert(args.end(), command.begin(), command.end());
    const auto r = run(stepwise_cmd(args), {{"STEPWISE_DATABASE_URL", ""}, {"DATABASE_URL", ""}});
    EXPECT_EQ(r.exit_code, 4) << command[0] << ": " << r.err;
    EXPECT_NE(r.err.find("cannot connect to 127.0.0.1:1/x within 1.0s"), std::string::npos)
        << command[0] << ": " << r.err;
    EXPECT_GE(r.took.count(), 500) << command[0];  // it retried for the server, as before
    EXPECT_LT(r.took.count(), 5000) << command[0];
  }
}

}  // namespace
}  // namespace stepwise::test
