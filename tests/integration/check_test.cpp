// stepwise check against a real server: the repository's own migrations pass; sets built to
// fail a round trip or the expected schema fail, naming file (and line); the self-started
// scratch server; the output formats. The test server is the --scratch-url.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "process.hpp"
#include "tcp_forwarder.hpp"
#include "test_db.hpp"

namespace stepwise::test {
namespace {

namespace fs = std::filesystem;

// The environment of with-postgres.sh points DATABASE_URL at the test server, which is also
// the scratch server here; check refuses a scratch URL equal to the application's.
const std::map<std::string, std::string> kEnv = {{"DATABASE_URL", ""},
                                                 {"STEPWISE_DATABASE_URL", ""}};

ProcessResult check(const std::string& source, std::vector<std::string> extra = {},
                    std::map<std::string, std::string> env = kEnv) {
  std::vector<std::string> args = {"--source", source, "check"};
  if (std::find(extra.begin(), extra.end(), "--no-scratch") == extra.end()) {
    args.push_back("--scratch-url");
    args.push_back(admin_url());
  } else {
    extra.erase(std::find(extra.begin(), extra.end(), "--no-scratch"));
  }
  args.insert(args.end(), extra.begin(), extra.end());
  return run(stepwise_cmd(args), env, std::chrono::seconds(180));
}

void copy_example(const MigrationDir& dir) {
  fs::copy(STEPWISE_MIGRATIONS_DIR, dir.path(), fs::copy_options::recursive);
}

void base_set(const MigrationDir& dir) {
  dir.write("1_create_t.up.sql", "CREATE TABLE t (id bigint PRIMARY KEY);\n");
  dir.write("1_create_t.down.sql", "DROP TABLE t;\n");
}

TEST(CheckCommand, RepositoryMigrationsPass) {
  REQUIRE_TEST_DATABASE();
  const auto r = check(STEPWISE_MIGRATIONS_DIR);
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(r.out, "") << "no finding expected (the measured locks there are suppressed)";
  EXPECT_NE(r.err.find("database checks: scratch server - ok"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("could not drop"), std::string::npos) << r.err;
  // The probes of migrations/checks/ ran over each release's range (releases.json).
  EXPECT_NE(r.err.find("probe checks/1.0.0.sql of release 1.0.0 ran at 1 schema version(s)"),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("probe checks/1.1.0.sql of release 1.1.0 ran at 3 schema version(s)"),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("probe checks/2.0.0.sql of release 2.0.0 ran at 2 schema version(s)"),
            std::string::npos)
      << r.err;
}

// The embedded set (no --source) with its embedded allow list and probes: as --source migrations.
TEST(CheckCommand, EmbeddedSetPassesLikeTheFolder) {
  REQUIRE_TEST_DATABASE();
  const auto r =
      run(stepwise_cmd({"check", "--scratch-url", admin_url()}), kEnv, std::chrono::seconds(180));
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(r.out, "") << "the embedded check-allow.txt covers the known findings";
  EXPECT_NE(r.err.find("database checks: scratch server - ok"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("probe checks/2.0.0.sql of release 2.0.0 ran at 2 schema version(s)"),
            std::string::npos)
      << r.err;
}

// In CI the scratch server is often a service container starting beside the job: check waits
// for it within --connect-timeout, as `up` waits for its database.
TEST(CheckCommand, WaitsForAScratchServerThatIsNotUpYet) {
  REQUIRE_TEST_DATABASE();
  MigrationDir dir;
  base_set(dir);
  TcpForwarder forwarder(server_port(admin_url()));
  const auto url = with_port(admin_url(), forwarder.port());
  Process p(stepwise_cmd({"--source", dir.path(), "--connect-timeout", "30s", "check",
                          "--scratch-url", url}),
            kEnv);
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  forwarder.start();
  const auto r = p.wait(std::chrono::seconds(120));
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.err.find("waiting for the database at 127.0.0.1:" + std::to_string(forwarder.port())),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("database checks: scratch server - ok"), std::string::npos) << r.err;
  // The password of --scratch-url is in no line.
  const auto at = admin_url().find(':', admin_url().find("//") + 2);
  const auto pw = admin_url().substr(at + 1, admin_url().find('@') - at - 1);
  ASSERT_FALSE(pw.empty()) << admin_url();
  EXPECT_EQ(r.err.find(pw), std::string::npos) << r.err;
}

TEST(CheckCommand, GivesUpOnAnAbsentScratchServerWithinTheConnectTimeout) {
  MigrationDir dir;
  base_set(dir);
  const auto r = run(stepwise_cmd({"--source", dir.path(), "--connect-timeout", "1s", "check",
                                   "--scratch-url", "postgres://nobody@127.0.0.1:1/x"}),
                     kEnv, std::chrono::seconds(30));
  EXPECT_EQ(r.exit_code, 4) << r.err;
  EXPECT_NE(r.err.find("cannot connect to 127.0.0.1:1/x within 1.0s"), std::string::npos) << r.err;
  EXPECT_LT(r.took.count(), 5000);
}

TEST(CheckCommand, RefusesTheApplicationDatabase) {
  REQUIRE_TEST_DATABASE();
  MigrationDir dir;
  base_set(dir);
  const auto r =
      run(stepwise_cmd({"--database-url", admin_url(), "--source", dir.path(), "check"}), kEnv);
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("never runs there"), std::string::npos) << r.err;
  auto env = kEnv;
  env["DATABASE_URL"] = admin_url();
  const auto same = check(dir.path(), {}, env);
  EXPECT_EQ(same.exit_code, 2) << same.err;
}

TEST(CheckRoundTrip, DownThatLeavesAColumnFailsNamingTheDownFile) {
  REQUIRE_TEST_DATABASE();
  MigrationDir dir;
  base_set(dir);
  dir.write("2_add_note.up.sql", "ALTER TABLE t ADD COLUMN note text;\n");
  dir.write("2_add_note.down.sql", "-- forgot to drop the column\nSELECT 1;\n");
  const auto r = check(dir.path());
  EXPECT_EQ(r.exit_code, 17) << r.out << r.err;
  EXPECT_NE(r.out.find(dir.path() + "/2_add_note.down.sql:1:1: error round-trip: up then down "
                                    "does not restore the schema before the up: column "
                                    "public.t.note unexpected"),
            std::string::npos)
      << r.out;
}

TEST(CheckRoundTrip, UpAgainAfterDownMustGiveTheSameSchema) {
  REQUIRE_TEST_DATABASE();
  MigrationDir dir;
  base_set(dir);
  // The down restores the schema but leaves a row behind, and the up reads rows to decide.
  dir.write("2_branchy.up.sql",
            "DO $$ BEGIN\n"
            "  IF (SELECT count(*) FROM t) = 0 THEN ALTER TABLE t ADD COLUMN first_time int;\n"
            "  ELSE ALTER TABLE t ADD COLUMN second_time int; END IF;\n"
            "  INSERT INTO t (id) VALUES ((SELECT coalesce(max(id), 0) + 1 FROM t));\n"
            "END $$;\n");
  dir.write("2_branchy.down.sql",
            "ALTER TABLE t DROP COLUMN IF EXISTS first_time;\n"
            "ALTER TABLE t DROP COLUMN IF EXISTS second_time;\n");
  const auto r = check(dir.path());
  EXPECT_EQ(r.exit_code, 17) << r.out << r.err;
  EXPECT_NE(r.out.find("2_branchy.up.sql:1:1: error round-trip: up after its down gives another "
                       "schema than the first up"),
            std::string::npos)
      << r.out;
}

TEST(CheckRoundTrip, NoTransactionStepMustBeSafeToRunAgain) {
  REQUIRE_TEST_DATABASE();
  MigrationDir dir;
  base_set(dir);
  dir.write("2_index.up.sql",
            "-- stepwise:no-transaction\nCREATE INDEX CONCURRENTLY t_id ON t (id);\n");
  dir.write("2_index.down.sql",
            "-- stepwise:no-transaction\nDROP INDEX CONCURRENTLY IF EXISTS t_id;\n");
  const auto r = check(dir.path());
  EXPECT_EQ(r.exit_code, 17) << r.out << r.err;
  EXPECT_NE(r.out.find("2_index.up.sql:2:1: error not-idempotent:"), std::string::npos) << r.out;
  dir.write(
      "2_index.up.sql",
      "-- stepwise:no-transaction\nCREATE INDEX CONCURRENTLY IF NOT EXISTS t_id ON t (id);\n");
  const auto fixed = check(dir.path());
  EXPECT_EQ(fixed.exit_code, 0) << fixed.out << fixed.err;
}

TEST(CheckRoundTrip, MeasuresLocksAndRewritesOnPreExistingTables) {
  REQUIRE_TEST_DATABASE();
  MigrationDir dir;
  base_set(dir);
  dir.write("releases.json", R"({"releases": [{"name": "1.0", "schema": 1, "min_schema": 1}]})");
  dir.write("2_change.up.sql",
            "ALTER TABLE t ADD COLUMN note text;\n"
            "-- stepwise:allow type-change-rewrite because the lint alone would hide the measure\n"
            "ALTER TABLE t ALTER COLUMN id TYPE int;\n");
  dir.write("2_change.down.sql",
            "-- stepwise:allow type-change-rewrite because it goes back\n"
            "ALTER TABLE t ALTER COLUMN id TYPE bigint;\nALTER TABLE t DROP COLUMN note;\n");
  const auto r = check(dir.path());
  EXPECT_EQ(r.exit_code, 17) << r.out << r.err;
  EXPECT_NE(r.out.find("2_change.up.sql:1:1: warning measured-lock: measured on the scratch "
                       "database: this statement takes ACCESS EXCLUSIVE on pre-existing table "
                       "public.t"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("2_change.up.sql:3:1: error measured-rewrite: measured on the scratch "
                       "database: this statement rewrote pre-existing table public.t"),
            std::string::npos)
      << r.out;
  // A table the same (unreleased) batch created is not pre-existing: nothing measured.
  dir.remove("releases.json");
  const auto fresh = check(dir.path());
  EXPECT_EQ(fresh.out.find("measured-"), std::string::npos) << fresh.out;
}

TEST(CheckRoundTrip, FailingDownNamesFileAndLine) {
  REQUIRE_TEST_DATABASE();
  MigrationDir dir;
  base_set(dir);
  dir.write("2_add_note.up.sql", "ALTER TABLE t ADD COLUMN note text;\n");
  dir.write("2_add_note.down.sql",
            "SELECT 1;\nALTER TABLE t DROP COLUMN note;\nSELECT nothere FROM t;\n");
  const auto r = check(dir.path());
  EXPECT_EQ(r.exit_code, 17) << r.out << r.err;
  EXPECT_NE(r.out.find("2_add_note.down.sql:3:1: error round-trip: down fails after its up: "),
            std::string::npos)
      << r.out;
}

TEST(CheckRoundTrip, MissingDownIsAWarningUnlessRequired) {
  REQUIRE_TEST_DATABASE();
  MigrationDir dir;
  base_set(dir);
  dir.write("2_add_note.up.sql", "ALTER TABLE t ADD COLUMN note text;\n");
  const auto r = check(dir.path());
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("2_add_note.up.sql:1:1: warning irreversible:"), std::string::npos) << r.out;
  EXPECT_EQ(check(dir.path(), {"--strict"}).exit_code, 17);
  const auto required = check(dir.path(), {"--require-down"});
  EXPECT_EQ(required.exit_code, 17);
  EXPECT_NE(required.out.find("error irreversible:"), std::string::npos) << required.out;
}

TEST(CheckUpgrade, FreshInstallDifferingFromTheExpectedSchemaFailsNamingReleaseAndObject) {
  REQUIRE_TEST_DATABASE();
  MigrationDir dir;
  copy_example(dir);
  // A change to a shipped migration that nobody regenerated the expected schemas for.
  dir.write("20240301090000_add_task_completed_at.up.sql",
            "ALTER TABLE tasks ADD COLUMN completed_at timestamptz;\n"
            "ALTER TABLE tasks ADD COLUMN sneaky int;\n");
  dir.write("20240301090000_add_task_completed_at.down.sql",
            "ALTER TABLE tasks DROP COLUMN sneaky;\nALTER TABLE tasks DROP COLUMN completed_at;\n");
  const auto r = check(dir.path());
  EXPECT_EQ(r.exit_code, 17) << r.out << r.err;
  EXPECT_NE(r.out.find("expected/20240315100000.json:1:1: error upgrade-differs: release 2.0.0: a "
                       "fresh install differs from the embedded expected schema: column "
                       "public.tasks.sneaky unexpected"),
            std::string::npos)
      << r.out;
}

TEST(CheckUpgrade, UpgradedDifferingFromFreshFailsNamingTheRelease) {
  REQUIRE_TEST_DATABASE();
  MigrationDir dir;
  base_set(dir);
  dir.write("releases.json", R"({"releases": [
    {"name": "1.0", "schema": 1, "min_schema": 1},
    {"name": "2.0", "schema": 2, "min_schema": 2}]})");
  // A step that runs differently on a database that existed before it: check's own upgrade path
  // and its fresh installs apply the same files, so the test tells them apart by the scratch
  // database's name (check names its upgrade databases stepwise_check_upgrade_*).
  dir.write("2_fixup.up.sql",
            "DO $$ BEGIN\n"
            "  IF current_database() LIKE 'stepwise_check_upgrade%' THEN\n"
            "    ALTER TABLE t ADD COLUMN legacy_flag boolean;\n"
            "  END IF;\n"
            "END $$;\n");
  dir.write("2_fixup.down.sql", "ALTER TABLE t DROP COLUMN IF EXISTS legacy_flag;\n");
  const auto r = check(dir.path());
  EXPECT_EQ(r.exit_code, 17) << r.out << r.err;
  EXPECT_NE(r.out.find(dir.path() +
                       "/releases.json:3:1: error upgrade-differs: release 2.0 upgraded from 1.0 "
                       "differs from a fresh install of 2.0: column public.t.legacy_flag"),
            std::string::npos)
      << r.out;
  EXPECT_EQ(r.out.find("round-trip"), std::string::npos) << r.out;
}

// Release 1.0's code inserts into t.note; 2.0 drops the column while 1.0 still runs (2.0's
// min_schema admits 1.0's schema). No expected schemas, so only the probe can see it.
void probe_set(const MigrationDir& dir, int min_schema_of_2) {
  fs::create_directories(dir.path() + "/checks");
  const std::string brief = "-- stepwise:allow measured-lock because only the catalog changes\n";
  dir.write("1_create_t.up.sql", "CREATE TABLE t (id bigint PRIMARY KEY, note text);\n");
  dir.write("1_create_t.down.sql", "DROP TABLE t;\n");
  dir.write("2_add_tag.up.sql", brief + "ALTER TABLE t ADD COLUMN tag text;\n");
  dir.write("2_add_tag.down.sql", "ALTER TABLE t DROP COLUMN tag;\n");
  dir.write("3_drop_note.up.sql", brief + "ALTER TABLE t DROP COLUMN note;\n");
  dir.write("3_drop_note.down.sql", "ALTER TABLE t ADD COLUMN note text;\n");
  dir.write("releases.json", R"({"releases": [{"name": "1.0", "schema": 1, "min_schema": 1},
    {"name": "2.0", "schema": 3, "min_schema": )" +
                                 std::to_string(min_schema_of_2) + "}]}");
  dir.write("checks/1.0.sql",
            "-- what 1.0's code runs\n"
            "SELECT id FROM t;\n"
            "INSERT INTO t (id, note)\n  VALUES (1, 'hello');\n"
            "SELECT note FROM t WHERE id = 1;\n");
  // 2.0's code runs from min_schema on, where tag may not exist yet: it uses id only.
  dir.write("checks/2.0.sql", "INSERT INTO t (id) VALUES (1);\nSELECT id FROM t;\n");
}

TEST(CheckProbe, ColumnDroppedInsideTheRangeFailsNamingReleaseVersionFileAndLine) {
  REQUIRE_TEST_DATABASE();
  MigrationDir dir;
  probe_set(dir, 1);
  dir.write("checks/nope.sql", "SELECT 1;\n");
  const auto r = check(dir.path());
  EXPECT_EQ(r.exit_code, 17) << r.out << r.err;
  EXPECT_NE(r.out.find(dir.path() +
                       "/checks/1.0.sql:3:1: error compat-probe: release 1.0's code fails at "
                       "schema version 3, inside its compatibility range 1 to 3: "),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("(SQLSTATE 42703)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\"note\""), std::string::npos) << r.out;
  // A probe file that names no release.
  EXPECT_NE(
      r.out.find(dir.path() + "/checks/nope.sql:1:1: error compat-probe: no release \"nope\" in "
                              "releases.json"),
      std::string::npos)
      << r.out;
  // Nothing else: the probe stops at its first failing statement; 2.0's probe passes.
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 2) << r.out;
  EXPECT_NE(r.err.find("probe checks/1.0.sql of release 1.0 ran at 3 schema version(s) (1 to 3)"),
            std::string::npos)
      << r.err;
  // A probe is rolled back: the round trip and the fresh installs saw no rows from it (2.0's
  // probe inserts id 1 too, at every version, and passes).
  EXPECT_EQ(r.out.find("23505"), std::string::npos) << r.out;
}

TEST(CheckProbe, PassesOnceTheRangeHasMovedOn) {
  REQUIRE_TEST_DATABASE();
  MigrationDir dir;
  probe_set(dir, 3);  // 2.0 runs only on 3: 1.0's code is gone when note is dropped
  const auto r = check(dir.path());
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(r.out, "") << r.out;
  EXPECT_NE(r.err.find("probe checks/1.0.sql of release 1.0 ran at 1 schema version(s) (1 to 1)"),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("probe checks/2.0.sql of release 2.0 ran at 1 schema version(s) (3 to 3)"),
            std::string::npos)
      << r.err;
}

TEST(CheckCommand, StartsItsOwnServerWithoutScratchUrl) {
  REQUIRE_TEST_DATABASE();
  const char* pgbin = std::getenv("STEPWISE_TEST_PGBIN");
  if (pgbin == nullptr) GTEST_SKIP() << "STEPWISE_TEST_PGBIN is not set";
  MigrationDir dir;
  base_set(dir);
  dir.write("2_add_note.up.sql", "ALTER TABLE t ADD COLUMN note text;\n");
  dir.write("2_add_note.down.sql", "SELECT 1;\n");
  auto env = kEnv;
  env["PATH"] = std::string(pgbin) + ":" + (std::getenv("PATH") ? std::getenv("PATH") : "");
  const auto r = check(dir.path(), {"--no-scratch"}, env);
  EXPECT_EQ(r.exit_code, 17) << r.out << r.err;
  EXPECT_NE(r.err.find("started a scratch PostgreSQL in "), std::string::npos) << r.err;
  EXPECT_NE(r.out.find("2_add_note.down.sql:1:1: error round-trip:"), std::string::npos) << r.out;
  // The temp dir is gone afterwards.
  const auto at = r.err.find("/tmp/stepwise-check.");
  ASSERT_NE(at, std::string::npos);
  EXPECT_FALSE(fs::exists(r.err.substr(at, std::string("/tmp/stepwise-check.XXXXXX").size())));
}

TEST(CheckCommand, JsonAndSarifOutput) {
  REQUIRE_TEST_DATABASE();
  MigrationDir dir;
  dir.write("1_create_t.up.sql", "CREATE TABLE t (id bigint PRIMARY KEY);\n");
  dir.write("1_create_t.down.sql", "DROP TABLE t;\n");
  dir.write("releases.json", R"({"releases": [{"name": "1.0", "schema": 1, "min_schema": 1}]})");
  dir.write("2_index.up.sql", "SELECT 1;\nCREATE INDEX t_id ON t (id);\n");
  dir.write("2_index.down.sql", "DROP INDEX t_id;\n");
  const auto j = check(dir.path(), {"--lint-only", "--output", "json"});
  EXPECT_EQ(j.exit_code, 17) << j.err;
  const auto doc = nlohmann::json::parse(j.out);
  EXPECT_EQ(doc["ok"], false);
  EXPECT_EQ(doc["database_checks"], "skipped");
  ASSERT_EQ(doc["findings"].size(), 1u) << j.out;
  EXPECT_EQ(doc["findings"][0]["file"], "2_index.up.sql");
  EXPECT_EQ(doc["findings"][0]["line"], 2);
  EXPECT_EQ(doc["findings"][0]["rule"], "index-not-concurrent");
  const auto s = check(dir.path(), {"--lint-only", "--output", "sarif"});
  EXPECT_EQ(s.exit_code, 17) << s.err;
  const auto sarif = nlohmann::json::parse(s.out);
  EXPECT_EQ(sarif["version"], "2.1.0");
  const auto& results = sarif["runs"][0]["results"];
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0]["ruleId"], "index-not-concurrent");
  EXPECT_EQ(results[0]["level"], "error");
  EXPECT_EQ(results[0]["locations"][0]["physicalLocation"]["region"]["startLine"], 2);
  EXPECT_EQ(results[0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
            dir.path() + "/2_index.up.sql");
  EXPECT_FALSE(sarif["runs"][0]["tool"]["driver"]["rules"].empty());
}

}  // namespace
}  // namespace stepwise::test
