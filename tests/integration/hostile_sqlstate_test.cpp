// Every server error keeps its SQLSTATE (libpqxx 6.4 dropped it for serialization failures,
// deadlocks, permission and unique violations), so the log records it and the documented
// 40001 / 40P01 / 55P03 retries really happen.
#include <gtest/gtest.h>

#include <future>
#include <memory>
#include <thread>

#include "../../src/pqxx/pqxx_connection.hpp"
#include "test_db.hpp"

namespace stepwise::test {
namespace {

using namespace std::chrono_literals;

const std::vector<std::string> kCodes = {"40001", "40P01", "42501", "55P03", "23505"};

std::string raise_sql(const std::string& code, const std::string& message = "boom") {
  return "DO $$ BEGIN RAISE EXCEPTION '" + message + "' USING ERRCODE = '" + code + "'; END $$;\n";
}

// How many times nextval() was called on the sequence.
long long calls(const TestDb& db, const std::string& seq = "tries") {
  return db.count("SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM " + seq);
}

std::map<std::string, std::string> no_env_urls() {
  return {{"STEPWISE_DATABASE_URL", ""}, {"DATABASE_URL", ""}};
}

TEST(HostileSqlstate, EveryServerErrorKeepsItsSqlstateOnStderrAndInTheLog) {
  REQUIRE_TEST_DATABASE();
  // Run side by side: the 40001 / 40P01 runs go through all their (jittered) retries first.
  std::vector<std::unique_ptr<TestDb>> dbs;
  std::vector<std::unique_ptr<MigrationDir>> dirs;
  std::vector<Process> runs;
  for (const auto& code : kCodes) {
    dbs.push_back(std::make_unique<TestDb>());
    dirs.push_back(std::make_unique<MigrationDir>());
    dirs.back()->write("1_ok.up.sql", "CREATE TABLE ok (id int);");
    dirs.back()->write("2_boom.up.sql", "CREATE TABLE never (id int);\n" + raise_sql(code));
    runs.emplace_back(stepwise_cmd({"--database-url", dbs.back()->url(), "--source",
                                    dirs.back()->path(), "--ddl-lock-retries", "0", "up"}),
                      no_env_urls());
  }
  for (std::size_t i = 0; i < kCodes.size(); ++i) {
    const auto& code = kCodes[i];
    const auto& db = *dbs[i];
    const auto r = runs[i].wait(60s);
    SCOPED_TRACE(code);
    EXPECT_EQ(r.exit_code, 1) << r.err;
    EXPECT_NE(r.err.find("2_boom.up.sql: boom (SQLSTATE " + code + ")"), std::string::npos)
        << r.err;
    EXPECT_EQ(r.err.find("(SQLSTATE )"), std::string::npos) << r.err;
    EXPECT_EQ(db.scalar("SELECT outcome || ' ' || coalesce(sqlstate, 'NULL') FROM stepwise_log"
                        " WHERE version = '2'"),
              "failed " + code);
    EXPECT_EQ(db.count("SELECT count(*) FROM stepwise_log WHERE version = '1' AND outcome = "
                       "'succeeded'"),
              1);
    EXPECT_EQ(db.count("SELECT count(*) FROM pg_tables WHERE tablename = 'never'"), 0);
    const bool serialization = code == "40001" || code == "40P01";
    EXPECT_EQ(r.err.find("2_boom.up.sql: boom; retry 1/") != std::string::npos, serialization)
        << r.err;
  }
}

// A transactional step that fails with `code` on its first `failures` tries.
void expect_retried_then_applied(const std::string& code, int failures,
                                 std::vector<std::string> flags = {}) {
  SCOPED_TRACE(code);
  TestDb db;
  db.query("CREATE SEQUENCE tries");
  MigrationDir dir;
  dir.write("1_conflict.up.sql",
            "CREATE TABLE applied (id int);\nINSERT INTO applied VALUES (1);\n"
            "DO $$ BEGIN IF nextval('tries') <= " +
                std::to_string(failures) + " THEN RAISE EXCEPTION 'conflict' USING ERRCODE = '" +
                code + "'; END IF; END $$;\n");
  std::vector<std::string> args = {"--source", dir.path()};
  args.insert(args.end(), flags.begin(), flags.end());
  args.emplace_back("up");
  const auto r = db.stepwise(args);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  for (int i = 1; i <= failures; ++i)
    EXPECT_NE(r.err.find("1_conflict.up.sql: conflict; retry " + std::to_string(i) + "/"),
              std::string::npos)
        << r.err;
  EXPECT_EQ(r.err.find("retry " + std::to_string(failures + 1) + "/"), std::string::npos) << r.err;
  EXPECT_EQ(calls(db), failures + 1);
  EXPECT_EQ(db.count("SELECT count(*) FROM applied"), 1) << "applied once";
  EXPECT_EQ(db.scalar("SELECT string_agg(outcome, ',') FROM stepwise_log"), "succeeded")
      << "retries leave no failed attempts";
}

TEST(HostileSqlstate, SerializationFailureIsRetriedUntilTheStepApplies) {
  REQUIRE_TEST_DATABASE();
  expect_retried_then_applied("40001", 2);
}

TEST(HostileSqlstate, DeadlockIsRetriedUntilTheStepApplies) {
  REQUIRE_TEST_DATABASE();
  expect_retried_then_applied("40P01", 2);
}

TEST(HostileSqlstate, LockTimeoutIsRetriedWithinDdlLockRetries) {
  REQUIRE_TEST_DATABASE();
  expect_retried_then_applied("55P03", 1, {"--ddl-lock-timeout", "1s", "--ddl-lock-retries", "1"});
}

TEST(HostileSqlstate, NoTransactionStepRetriesASerializationFailure) {
  REQUIRE_TEST_DATABASE();
  TestDb db;
  db.query("CREATE SEQUENCE tries");
  MigrationDir dir;
  dir.write("1_conflict.up.sql",
            "-- stepwise:no-transaction\nCREATE TABLE applied (id int);\n"
            "DO $$ BEGIN IF nextval('tries') <= 2 THEN RAISE EXCEPTION 'conflict' USING "
            "ERRCODE = '40001'; END IF; END $$;\nINSERT INTO applied VALUES (1);\n");
  const auto r = db.stepwise({"--source", dir.path(), "up"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("conflict; retry 2/"), std::string::npos) << r.err;
  EXPECT_EQ(calls(db), 3);
  EXPECT_EQ(db.count("SELECT count(*) FROM applied"), 1);
}

TEST(HostileSqlstate, PermissionDeniedIsNotRetried) {
  REQUIRE_TEST_DATABASE();
  TestDb db;
  db.query("CREATE SEQUENCE tries");
  MigrationDir dir;
  dir.write("1_denied.up.sql",
            "DO $$ BEGIN PERFORM nextval('tries'); RAISE EXCEPTION 'denied' USING ERRCODE = "
            "'42501'; END $$;\n");
  const auto r = db.stepwise({"--source", dir.path(), "up"});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("denied (SQLSTATE 42501)"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("retry"), std::string::npos) << r.err;
  EXPECT_EQ(calls(db), 1);
  EXPECT_EQ(db.scalar("SELECT sqlstate FROM stepwise_log WHERE outcome = 'failed'"), "42501");
}

TEST(HostileSqlstate, RealErrorsCarryTheirSqlstate) {
  REQUIRE_TEST_DATABASE();
  TestDb db;
  db.query("CREATE TABLE u (id int PRIMARY KEY); INSERT INTO u VALUES (1);");
  MigrationDir dir;
  dir.write("1_dup.up.sql", "INSERT INTO u VALUES (2);\nINSERT INTO u VALUES (1);\n");
  const auto r = db.stepwise({"--source", dir.path(), "up"});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("1_dup.up.sql: duplicate key value violates unique constraint \"u_pkey\""
                       " (SQLSTATE 23505)"),
            std::string::npos)
      << r.err;
  const auto row = db.query("SELECT sqlstate, error FROM stepwise_log WHERE outcome = 'failed'");
  ASSERT_EQ(row.size(), 1u);
  EXPECT_EQ(row[0][0], "23505");
  EXPECT_NE(row[0][1].find("Key (id)=(1) already exists."), std::string::npos) << row[0][1];
  EXPECT_EQ(db.count("SELECT count(*) FROM u"), 1) << "rolled back";
}

// The library's own view: DbError carries SQLSTATE, one-line message and the full server text.
std::unique_ptr<Connection> connect(const TestDb& db) {
  return open_connection(parse_conninfo(db.url(), 10));
}

TEST(HostileSqlstate, ConnectionErrorsCarrySqlstateMessageAndServerText) {
  REQUIRE_TEST_DATABASE();
  TestDb db;
  auto conn = connect(db);
  for (const auto& code : kCodes) {
    SCOPED_TRACE(code);
    try {
      conn->execute(raise_sql(code, "hostile " + code));
      ADD_FAILURE() << "no error";
    } catch (const DbError& e) {
      EXPECT_EQ(e.sqlstate(), code);
      EXPECT_EQ(std::string(e.what()), "hostile " + code);
    }
    try {
      (void)conn->query("SELECT $1::int / 0", {"1"});
      ADD_FAILURE() << "no error";
    } catch (const DbError& e) {
      EXPECT_EQ(e.sqlstate(), "22012");
      EXPECT_EQ(std::string(e.what()), "division by zero");
    }
  }
  try {
    conn->execute("SELECT 1;\nSELEC 2;");
    ADD_FAILURE() << "no error";
  } catch (const DbError& e) {
    EXPECT_EQ(e.sqlstate(), "42601");
    EXPECT_EQ(std::string(e.what()), "syntax error at or near \"SELEC\"");
    EXPECT_TRUE(e.detail().starts_with("syntax error at or near")) << e.detail();
    EXPECT_NE(e.detail().find("\nLINE 2: SELEC 2;"), std::string::npos) << e.detail();
  }
  // A failed statement leaves the session usable; rows are those of the last row set.
  EXPECT_EQ(conn->execute("SELECT 'a'; SELECT 'b', NULL; SET application_name = 'x'"),
            (Rows{{Field{"b"}, std::nullopt}}));
  EXPECT_EQ(conn->query("SELECT $1::text, $2::text", {Field{"p"}, std::nullopt}),
            (Rows{{Field{"p"}, std::nullopt}}));
  EXPECT_EQ(conn->quote_identifier("a\"b"), "\"a\"\"b\"");
  EXPECT_EQ(conn->execute("SELECT " + conn->quote_literal("it's a \\ back")),
            (Rows{{Field{"it's a \\ back"}}}));
}

TEST(HostileSqlstate, NoticesGoToTheHandler) {
  REQUIRE_TEST_DATABASE();
  TestDb db;
  auto conn = connect(db);
  conn->execute("DO $$ BEGIN RAISE NOTICE 'dropped'; END $$");  // no handler yet: dropped
  std::vector<std::string> seen;
  conn->on_notice([&](std::string_view n) { seen.emplace_back(n); });
  conn->execute(
      "DO $$ BEGIN RAISE NOTICE 'hello'; END $$; CREATE TABLE IF NOT EXISTS n ();"
      " CREATE TABLE IF NOT EXISTS n ()");
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0], "NOTICE:  hello");
  EXPECT_EQ(seen[1], "NOTICE:  relation \"n\" already exists, skipping");
}

TEST(HostileSqlstate, CancelFromAnotherThreadAndATerminatedSessionIsLostForGood) {
  REQUIRE_TEST_DATABASE();
  TestDb db;
  auto conn = connect(db);
  const int pid = conn->backend_pid();
  EXPECT_EQ(conn->execute("SELECT pg_backend_pid()::text"), (Rows{{Field{std::to_string(pid)}}}));
  auto canceller = std::async(std::launch::async, [&] {
    for (int i = 0; i < 1000; ++i) {
      if (db.count("SELECT count(*) FROM pg_stat_activity WHERE pid = " + std::to_string(pid) +
                   " AND query LIKE 'SELECT pg_sleep(30)%'") > 0)
        break;
      std::this_thread::sleep_for(10ms);
    }
    conn->cancel();
  });
  const auto start = std::chrono::steady_clock::now();
  try {
    conn->execute("SELECT pg_sleep(30)");
    ADD_FAILURE() << "not cancelled";
  } catch (const DbError& e) {
    EXPECT_EQ(e.sqlstate(), "57014");
  }
  canceller.get();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 20s);
  EXPECT_EQ(conn->execute("SELECT 1"), (Rows{{Field{"1"}}})) << "usable after a cancel";

  db.query("SELECT pg_terminate_backend(" + std::to_string(pid) + ")");
  EXPECT_THROW(conn->execute("SELECT 1"), ConnectionLost);
  EXPECT_THROW(conn->query("SELECT 1", {}), ConnectionLost) << "never reconnects";
  EXPECT_EQ(conn->backend_pid(), pid);
}

}  // namespace
}  // namespace stepwise::test
