// migrate-to (up and down) and multi-release upgrade against a real server.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "test_db.hpp"

namespace stepwise::test {
namespace {

namespace fs = std::filesystem;

const std::vector<std::string> kVersions = {
    "20240105090000", "20240105090500", "20240112100000", "20240201080000", "20240201081500",
    "20240215120000", "20240301090000", "20240301091000", "20240301093000", "20240315100000"};

std::string describe(const TestDb& db, const std::vector<std::string>& extra = {}) {
  auto args = extra;
  args.insert(args.end(), {"--output", "json", "describe"});
  const auto r = db.stepwise(args);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return r.out;
}

// A copy of the example migrations in a temp folder, to break on purpose.
void copy_example(const MigrationDir& dir) {
  for (const auto& e : fs::directory_iterator(STEPWISE_MIGRATIONS_DIR))
    if (e.is_regular_file())
      fs::copy_file(e.path(), dir.path() + "/" + e.path().filename().string());
}

TEST(MigrateTo, DownThenUpReturnsExactlyTheSchemaOfEachVersion) {
  REQUIRE_TEST_DATABASE();
  TestDb db;
  ASSERT_EQ(db.stepwise({"up"}).exit_code, 0);
  // Walk down one version at a time; at each, the schema equals a fresh database brought up to it.
  for (int i = static_cast<int>(kVersions.size()) - 2; i >= -1; --i) {
    const auto target = i >= 0 ? kVersions[static_cast<std::size_t>(i)] : "0";
    const auto r = db.stepwise({"migrate-to", target});
    ASSERT_EQ(r.exit_code, 0) << target << ": " << r.err;
    TestDb fresh;
    ASSERT_EQ(fresh.stepwise({"migrate-to", target}).exit_code, 0);
    EXPECT_EQ(describe(db), describe(fresh)) << "after going down to " << target;
  }
  EXPECT_EQ(db.count("SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tablename <> "
                     "'stepwise_log'"),
            0);
  // And up again to the head: the same as a fresh install.
  ASSERT_EQ(db.stepwise({"up"}).exit_code, 0);
  TestDb fresh;
  ASSERT_EQ(fresh.stepwise({"up"}).exit_code, 0);
  EXPECT_EQ(describe(db), describe(fresh));
  EXPECT_EQ(
      db.count(
          "SELECT count(*) FROM stepwise_log WHERE direction = 'down' AND outcome = 'succeeded'"),
      10);
}

TEST(MigrateTo, RefusesAMissingDownFileWithoutTouchingTheDatabase) {
  REQUIRE_TEST_DATABASE();
  TestDb db;
  MigrationDir dir;
  copy_example(dir);
  dir.remove("20240301090000_add_task_completed_at.down.sql");
  ASSERT_EQ(db.stepwise({"--source", dir.path(), "up"}).exit_code, 0);
  const auto before = db.snapshot();
  const auto log_before = db.count("SELECT count(*) FROM stepwise_log");
  const auto r = db.stepwise({"--source", dir.path(), "migrate-to", "20240112100000"});
  EXPECT_EQ(r.exit_code, 6);
  EXPECT_NE(r.err.find("no down file for 20240301090000_add_task_completed_at.down.sql"),
            std::string::npos)
      << r.err;
  EXPECT_EQ(db.snapshot(), before);
  EXPECT_EQ(db.count("SELECT count(*) FROM stepwise_log"), log_before);
}

TEST(MigrateTo, UnknownOrMalformedTargetsAreRefused) {
  REQUIRE_TEST_DATABASE();
  TestDb db;
  auto r = db.stepwise({"migrate-to", "20240101000000"});
  EXPECT_EQ(r.exit_code, 6);
  EXPECT_NE(r.err.find("target version 20240101000000 is not a known migration"), std::string::npos)
      << r.err;
  r = db.stepwise({"migrate-to", "v1"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("migrate-to: invalid version \"v1\""), std::string::npos) << r.err;
  EXPECT_EQ(db.count("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"), 0);
}

TEST(MigrateTo, DryRunPrintsThePlanAndTheSqlAndChangesNothing) {
  REQUIRE_TEST_DATABASE();
  TestDb db;
  ASSERT_EQ(db.stepwise({"up"}).exit_code, 0);
  const auto before = db.snapshot();
  const auto r = db.stepwise({"--dry-run", "migrate-to", "20240301091000"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("would revert 20240315100000_add_task_status_blocked.down.sql"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("would revert 20240301093000_create_project_overview.down.sql\nDROP VIEW "
                       "project_overview;"),
            std::string::npos)
      << r.out;
  EXPECT_EQ(db.snapshot(), before);
}

TEST(Upgrade, FromEachOlderReleaseEqualsAFreshInstall) {
  REQUIRE_TEST_DATABASE();
  TestDb fresh;
  ASSERT_EQ(fresh.stepwise({"up"}).exit_code, 0);
  const auto want = describe(fresh);
  for (const auto& [release, version] : std::vector<std::pair<std::string, std::string>>{
           {"1.0.0", "20240112100000"}, {"1.1.0", "20240215120000"}}) {
    TestDb db;
    ASSERT_EQ(db.stepwise({"migrate-to", version}).exit_code, 0);
    const auto r = db.stepwise({"upgrade", "--to", "2.0.0", "--offline"});
    ASSERT_EQ(r.exit_code, 0) << release << ": " << r.err;
    EXPECT_NE(r.out.find("upgraded to release 2.0.0"), std::string::npos) << r.out;
    EXPECT_EQ(describe(db), want) << "upgraded from " << release;
  }
}

TEST(Upgrade, HaltsAtARolloutStopAndContinuesOnTheNextRun) {
  REQUIRE_TEST_DATABASE();
  TestDb db;
  ASSERT_EQ(db.stepwise({"migrate-to", "20240112100000"}).exit_code, 0);
  auto r = db.stepwise({"upgrade", "--to", "2.0.0"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("STOP: roll out release 1.1.0 everywhere before continuing"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("stopped at release 1.1.0"), std::string::npos) << r.out;
  EXPECT_EQ(db.scalar("SELECT max(version) FROM stepwise_log WHERE outcome = 'succeeded'"),
            "20240215120000");
  // Progress lines name the step, the release, elapsed time and the estimate.
  EXPECT_NE(r.err.find("[1/7] release 1.1.0: applying 20240201080000_add_task_assignee.up.sql"),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("remaining"), std::string::npos) << r.err;
  // After the roll-out, the next run starts from 1.1.0 and finishes.
  r = db.stepwise({"--output", "json", "upgrade", "--to", "2.0.0"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto doc = nlohmann::json::parse(r.out);
  EXPECT_EQ(doc["reached"], "2.0.0");
  EXPECT_EQ(doc["plan"]["from"], "1.1.0");
  EXPECT_EQ(doc["applied"].size(), 4u);
}

TEST(Upgrade, DryRunShowsStagesAndStopsAsJson) {
  REQUIRE_TEST_DATABASE();
  TestDb db;
  ASSERT_EQ(db.stepwise({"migrate-to", "20240112100000"}).exit_code, 0);
  const auto r = db.stepwise({"--dry-run", "--output", "json", "upgrade", "--to", "2.0.0"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto plan = nlohmann::json::parse(r.out)["plan"];
  ASSERT_EQ(plan["stages"].size(), 2u);
  EXPECT_EQ(plan["stages"][0]["release"], "1.1.0");
  EXPECT_FALSE(plan["stages"][0].contains("stop_before"));
  EXPECT_EQ(plan["stages"][1]["stop_before"]["roll_out"], "1.1.0");
  EXPECT_EQ(plan["steps"], 7);
  EXPECT_EQ(db.scalar("SELECT max(version) FROM stepwise_log"), "20240112100000");
}

TEST(Upgrade, DriftAtTheStartingReleaseRefusesUnlessSkipped) {
  REQUIRE_TEST_DATABASE();
  TestDb db;
  ASSERT_EQ(db.stepwise({"migrate-to", "20240215120000"}).exit_code, 0);
  db.query("ALTER TABLE tasks ADD COLUMN hotfix_note text");
  auto r = db.stepwise({"upgrade", "--to", "2.0.0"});
  EXPECT_EQ(r.exit_code, 14) << r.err;
  EXPECT_NE(r.out.find("column public.tasks.hotfix_note unexpected"), std::string::npos) << r.out;
  EXPECT_NE(r.err.find("the database does not match release 1.1.0"), std::string::npos) << r.err;
  EXPECT_EQ(db.scalar("SELECT max(version) FROM stepwise_log"), "20240215120000");
  r = db.stepwise({"upgrade", "--to", "2.0.0", "--skip-drift-check"});
  EXPECT_EQ(r.exit_code, 14) << "the drift is still there afterwards: " << r.err;
  EXPECT_EQ(db.scalar("SELECT max(version) FROM stepwise_log"), "20240315100000");
}

TEST(Upgrade, NoMatchingReleaseListsTheCandidates) {
  REQUIRE_TEST_DATABASE();
  TestDb db;
  ASSERT_EQ(db.stepwise({"migrate-to", "20240201080000"}).exit_code, 0);
  const auto r = db.stepwise({"upgrade", "--to", "2.0.0"});
  EXPECT_EQ(r.exit_code, 6);
  EXPECT_NE(r.err.find("which is no release's schema"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("1.0.0 (schema 20240112100000), 1.1.0 (schema 20240215120000)"),
            std::string::npos)
      << r.err;
}

TEST(Upgrade, BackupIsWrittenBeforeTheFirstChangeAndRecorded) {
  REQUIRE_TEST_DATABASE();
  TestDb db;
  ASSERT_EQ(db.stepwise({"migrate-to", "20240112100000"}).exit_code, 0);
  db.query("INSERT INTO accounts (email) VALUES ('a@example.com')");
  MigrationDir out;
  const auto file = out.path() + "/before.dump";
  const auto r = db.stepwise({"upgrade", "--to", "2.0.0", "--offline", "--backup", file});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto list = run({"/usr/bin/env", "pg_restore", "--list", file});
  ASSERT_EQ(list.exit_code, 0) << list.err;
  EXPECT_NE(list.out.find("TABLE DATA public accounts"), std::string::npos) << list.out;
  EXPECT_EQ(list.out.find("add_task_assignee"), std::string::npos);
  EXPECT_EQ(db.scalar("SELECT version || ' ' || direction FROM stepwise_log WHERE kind = 'backup'"),
            "20240112100000 none");
  // The dump holds the schema before the upgrade: no assignee column yet.
  const auto sql = run({"/usr/bin/env", "pg_restore", "--schema-only", "-f", "-", file});
  EXPECT_EQ(sql.out.find("assignee_id"), std::string::npos);
}

// The backup row is a log row: written under the lock `up` takes, never past its holder.
TEST(Upgrade, TheBackupRowWaitsForTheLock) {
  REQUIRE_TEST_DATABASE();
  TestDb db;
  ASSERT_EQ(db.stepwise({"--lock-strategy", "lease", "migrate-to", "20240112100000"}).exit_code, 0);
  db.query(
      "INSERT INTO stepwise_log_lock VALUES ('public.stepwise_log', 'someone else', now(),"
      " now() + interval '1 hour')");
  MigrationDir out;
  const auto r = db.stepwise({"--lock-strategy", "lease", "--lock-timeout", "1s", "upgrade", "--to",
                              "2.0.0", "--offline", "--backup", out.path() + "/before.dump"});
  EXPECT_EQ(r.exit_code, 5) << r.err;
  EXPECT_NE(r.err.find("upgrade --backup: could not take the migration lock"), std::string::npos)
      << r.err;
  EXPECT_EQ(db.count("SELECT count(*) FROM stepwise_log WHERE kind = 'backup'"), 0);
  EXPECT_EQ(db.scalar("SELECT max(version) FROM stepwise_log"), "20240112100000");
}

TEST(Upgrade, AMissingPgDumpIsAClearErrorAndNothingIsApplied) {
  REQUIRE_TEST_DATABASE();
  TestDb db;
  ASSERT_EQ(db.stepwise({"migrate-to", "20240112100000"}).exit_code, 0);
  MigrationDir out;
  const auto r = db.stepwise({"upgrade", "--to", "2.0.0", "--offline", "--backup",
                              out.path() + "/x.dump", "--pg-dump", "/nonexistent/pg_dump"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("--pg-dump /nonexistent/pg_dump: cannot run it"), std::string::npos)
      << r.err;
  EXPECT_EQ(db.scalar("SELECT max(version) FROM stepwise_log"), "20240112100000");
  EXPECT_FALSE(fs::exists(out.path() + "/x.dump"));
}

}  // namespace
}  // namespace stepwise::test
