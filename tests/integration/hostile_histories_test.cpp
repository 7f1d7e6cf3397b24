// Real migration histories as written (issue 13 item 2): empty and white-space-only files,
// versions with leading zeros (golang-migrate, Mattermost), 20-digit versions (Ory Kratos) and
// longer, and a log table written by the previous stepwise (format 1, version bigint) that is
// upgraded in place.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "test_db.hpp"

namespace stepwise::test {
namespace {

using nlohmann::json;

std::string log_versions(const TestDb& db, const std::string& where = "kind = 'migration'") {
  return db.scalar(
      "SELECT string_agg(version || ':' || direction || ':' || outcome, ',' ORDER BY "
      "id) FROM stepwise_log WHERE " +
      where);
}

std::string column_type(const TestDb& db) {
  return db.scalar(
      "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = "
      "'public.stepwise_log'::regclass AND attname = 'version'");
}

bool table_exists(const TestDb& db, const std::string& name) {
  return db.scalar("SELECT to_regclass('public." + name + "') IS NOT NULL") == "t";
}

json status_json(const TestDb& db, const MigrationDir& dir) {
  const auto r = db.stepwise({"--source", dir.path(), "--output", "json", "status"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return json::parse(r.out);
}

// Mattermost-like: golang-migrate names with leading zeros, empty down files.
TEST(HostileHistories, MattermostLikeLeadingZerosAndEmptyDownFiles) {
  REQUIRE_TEST_DATABASE();
  TestDb db;
  MigrationDir dir;
  dir.write("000001_create_teams.up.sql", "CREATE TABLE teams (id int PRIMARY KEY, name text);\n");
  dir.write("000001_create_teams.down.sql", "DROP TABLE teams;\n");
  dir.write("000002_teams_name_idx.up.sql",
            "CREATE INDEX IF NOT EXISTS teams_name_idx ON teams (name);\n");
  dir.write("000002_teams_name_idx.down.sql", "");  // as written upstream: empty
  dir.write("000003_nothing.up.sql", "\n   \n\t\n");
  dir.write("000003_nothing.down.sql", "");
  dir.write("000010_create_users.up.sql", "CREATE TABLE IF NOT EXISTS users (id int);\n");
  dir.write("000010_create_users.down.sql", "   \n");

  auto r = db.stepwise({"--source", dir.path(), "up"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("applied 4 migration(s)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("version 0 -> 10"), std::string::npos) << r.out;
  // Ordered numerically (2 < 3 < 10), stored as normalised digits.
  EXPECT_EQ(log_versions(db), "1:up:succeeded,2:up:succeeded,3:up:succeeded,10:up:succeeded");
  EXPECT_TRUE(table_exists(db, "users"));

  const auto s = status_json(db, dir);
  EXPECT_EQ(s["database_version"], 10);
  ASSERT_EQ(s["migrations"].size(), 4u);
  EXPECT_TRUE(s["migrations"][1]["version"].is_number_integer());
  EXPECT_EQ(s["migrations"][1]["version"], 2);
  EXPECT_EQ(s["migrations"][1]["state"], "applied");

  // Down through the empty down files to 000001 (leading zeros accepted on the command line).
  r = db.stepwise({"--source", dir.path(), "migrate-to", "000001"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("0 applied, 3 reverted (version 10 -> 1)"), std::string::npos) << r.out;
  EXPECT_EQ(log_versions(db, "direction = 'down'"),
            "10:down:succeeded,3:down:succeeded,2:down:succeeded");
  // An empty down changes nothing: the table and the index stay, as with psql.
  EXPECT_TRUE(table_exists(db, "users"));
  EXPECT_TRUE(table_exists(db, "teams_name_idx"));
  // And up again: the up files are written to run on top of that.
  r = db.stepwise({"--source", dir.path(), "up"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("applied 3 migration(s)"), std::string::npos) << r.out;
  EXPECT_EQ(db.stepwise({"--source", dir.path(), "validate"}).exit_code, 0);
  // Down to nothing: the real down of 000001 runs last.
  r = db.stepwise({"--source", dir.path(), "migrate-to", "0"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_FALSE(table_exists(db, "teams"));
  EXPECT_EQ(db.count("SELECT count(*) FROM stepwise_log WHERE outcome <> 'succeeded'"), 0);
}

// Ory Kratos-like: 20-digit versions (beyond a signed 64-bit integer), many empty files.
TEST(HostileHistories, OryLikeTwentyDigitVersionsBothDirections) {
  REQUIRE_TEST_DATABASE();
  TestDb db;
  MigrationDir dir;
  dir.write("20150100000001000000_networks.up.sql", "CREATE TABLE networks (id uuid);\n");
  dir.write("20150100000001000000_networks.down.sql", "DROP TABLE networks;\n");
  dir.write("20191100000001000000_identities.up.sql", "CREATE TABLE identities (id uuid);\n");
  dir.write("20191100000001000000_identities.down.sql", "DROP TABLE identities;\n");
  dir.write("20191100000001000001_identities.up.sql", "");
  dir.write("20191100000001000001_identities.down.sql", "");
  dir.write("20200519101057000000_identities.up.sql", "\n");
  dir.write("20200519101057000000_identities.down.sql", " ");
  dir.write("20200519101057000001_identities.up.sql", "ALTER TABLE identities ADD note text;\n");
  dir.write("20200519101057000001_identities.down.sql", "ALTER TABLE identities DROP note;\n");

  auto r = db.stepwise({"--source", dir.path(), "up"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("applied 5 migration(s)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("version 0 -> 20200519101057000001"), std::string::npos) << r.out;
  EXPECT_EQ(log_versions(db),
            "20150100000001000000:up:succeeded,20191100000001000000:up:succeeded,"
            "20191100000001000001:up:succeeded,20200519101057000000:up:succeeded,"
            "20200519101057000001:up:succeeded");

  // JSON: beyond a signed 64-bit integer, a version is a string of digits.
  auto s = status_json(db, dir);
  EXPECT_EQ(s["database_version"], "20200519101057000001");
  EXPECT_EQ(s["latest_version"], "20200519101057000001");
  ASSERT_EQ(s["migrations"].size(), 5u);
  EXPECT_EQ(s["migrations"][2]["version"], "20191100000001000001");
  // Text status lists them in numeric order too.
  r = db.stepwise({"--source", dir.path(), "status"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_LT(r.out.find("20191100000001000001"), r.out.find("20200519101057000000")) << r.out;
  EXPECT_NE(r.out.find("database version 20200519101057000001"), std::string::npos) << r.out;
  EXPECT_EQ(db.stepwise({"--source", dir.path(), "validate"}).exit_code, 0);

  // Down to the first, through the empty downs.
  r = db.stepwise(
      {"--source", dir.path(), "--output", "json", "migrate-to", "20150100000001000000"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto down = json::parse(r.out);
  EXPECT_EQ(down["version_before"], "20200519101057000001");
  EXPECT_EQ(down["version_after"], "20150100000001000000");
  ASSERT_EQ(down["applied"].size(), 4u);
  EXPECT_EQ(down["applied"][0]["version"], "20200519101057000001");
  EXPECT_EQ(down["applied"][3]["version"], "20191100000001000000");
  EXPECT_FALSE(table_exists(db, "identities"));
  EXPECT_TRUE(table_exists(db, "networks"));
  s = status_json(db, dir);
  EXPECT_EQ(s["database_version"], "20150100000001000000");

  // And up again.
  r = db.stepwise({"--source", dir.path(), "up"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("applied 4 migration(s)"), std::string::npos) << r.out;
  EXPECT_EQ(db.scalar("SELECT count(*) FROM information_schema.columns WHERE table_name = "
                      "'identities' AND column_name = 'note'"),
            "1");
  EXPECT_EQ(db.count("SELECT count(*) FROM stepwise_log"), 5 + 4 + 4);
  EXPECT_EQ(db.stepwise({"--source", dir.path(), "validate"}).exit_code, 0);
}

// 38 digits and more, mixed with short versions: numeric order, lossless storage.
TEST(HostileHistories, ThirtyEightDigitVersions) {
  REQUIRE_TEST_DATABASE();
  TestDb db;
  MigrationDir dir;
  const std::string v38a = "12345678901234567890123456789012345678";
  const std::string v38b(38, '9');
  const std::string v39 = "1" + std::string(38, '0');
  dir.write("7_small.up.sql", "CREATE TABLE small (id int);\n");
  dir.write(v39 + "_biggest.up.sql", "CREATE TABLE biggest (id int);\n");
  dir.write(v38b + "_nines.up.sql", "CREATE TABLE nines (id int);\n");
  dir.write("000" + v38a + "_a.up.sql", "CREATE TABLE a38 (id int);\n");
  dir.write("000" + v38a + "_a.down.sql", "DROP TABLE a38;\n");

  auto r = db.stepwise({"--source", dir.path(), "up"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(log_versions(db), "7:up:succeeded," + v38a + ":up:succeeded," + v38b +
                                  ":up:succeeded," + v39 + ":up:succeeded");
  EXPECT_EQ(db.stepwise({"--source", dir.path(), "validate"}).exit_code, 0);
  auto s = status_json(db, dir);
  EXPECT_EQ(s["database_version"], v39);
  EXPECT_EQ(s["migrations"][0]["version"], 7);

  // A target of 38 digits below applied ones: its newer ones have no down file.
  r = db.stepwise({"--source", dir.path(), "migrate-to", "7"});
  EXPECT_EQ(r.exit_code, 6) << r.err;
  EXPECT_NE(r.err.find(v38b + "_nines.down.sql"), std::string::npos) << r.err;
  // Unknown targets and malformed ones: one line naming the value.
  r = db.stepwise({"--source", dir.path(), "migrate-to", v38a + "1"});
  EXPECT_EQ(r.exit_code, 6) << r.err;
  EXPECT_NE(r.err.find(v38a + "1"), std::string::npos) << r.err;
  for (const std::string bad : {"-1", "1e3", "", " 7", "7x"}) {
    r = db.stepwise({"--source", dir.path(), "migrate-to", bad});
    EXPECT_EQ(r.exit_code, 2) << bad << ": " << r.err;
    EXPECT_NE(r.err.find("migrate-to: invalid version"), std::string::npos) << r.err;
  }
  r = db.stepwise({"--source", dir.path(), "repair", "x" + v38a, "--applied"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("x" + v38a), std::string::npos) << r.err;
}

// An empty no-transaction file, and empty files run statement by statement (CockroachDB rules).
TEST(HostileHistories, EmptyNoTransactionFile) {
  REQUIRE_TEST_DATABASE();
  for (const bool cockroach_rules : {false, true}) {
    SCOPED_TRACE(cockroach_rules ? "cockroach rules" : "postgres");
    TestDb db;
    MigrationDir dir;
    const std::map<std::string, std::string> env =
        cockroach_rules ? std::map<std::string, std::string>{{"STEPWISE_ENGINE", "cockroachdb"}}
                        : std::map<std::string, std::string>{};
    dir.write("1_t.up.sql", "CREATE TABLE t (id int);\n");
    dir.write("2_idx.up.sql", "-- stepwise:no-transaction\n");
    dir.write("2_idx.down.sql", "-- stepwise:no-transaction\n\n  \n");
    dir.write("3_blank.up.sql", "-- nothing here yet\n\n");
    dir.write("3_blank.down.sql", "");
    auto r = db.stepwise({"--source", dir.path(), "up"}, env);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(log_versions(db), "1:up:succeeded,2:up:succeeded,3:up:succeeded");
    EXPECT_EQ(db.scalar("SELECT statements_done || ':' || (finished_at IS NOT NULL)::text FROM "
                        "stepwise_log WHERE version = '2'"),
              "0:true");
    r = db.stepwise({"--source", dir.path(), "migrate-to", "1"}, env);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(log_versions(db, "direction = 'down'"), "3:down:succeeded,2:down:succeeded");
    r = db.stepwise({"--source", dir.path(), "up"}, env);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(db.stepwise({"--source", dir.path(), "validate"}, env).exit_code, 0);
    EXPECT_EQ(db.count("SELECT count(*) FROM stepwise_log WHERE outcome <> 'succeeded'"), 0);
  }
}

// A bundle carries such a history as it is: empty files, 20-digit versions, and releases.json
// naming them as strings of digits.
TEST(HostileHistories, BundledOryLikeSetRunsFromTheBundle) {
  REQUIRE_TEST_DATABASE();
  TestDb db;
  MigrationDir set, out;
  set.write("20150100000001000000_networks.up.sql", "CREATE TABLE networks (id uuid);\n");
  set.write("20150100000001000000_networks.down.sql", "");
  set.write("20191100000001000001_nothing.up.sql", "");
  set.write("releases.json", R"({"releases": [{"name": "1.0", "schema": "20191100000001000001",
                                               "min_schema": "020150100000001000000"}]})");
  const auto file = out.path() + "/migrator";
  auto r = run(stepwise_cmd({"--source", set.path(), "bundle", "-o", file}));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("bundled set, 2 migration(s), newest 20191100000001000001"),
            std::string::npos)
      << r.out;
  const std::map<std::string, std::string> env{{"STEPWISE_DATABASE_URL", ""}, {"DATABASE_URL", ""}};
  r = run({file, "--database-url", db.url(), "up"}, env);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(log_versions(db),
            "20150100000001000000:up:succeeded,20191100000001000001:up:succeeded");
  r = run({file, "--database-url", db.url(), "validate", "--release", "1.0"}, env);
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  r = run({file, "--database-url", db.url(), "--output", "json", "validate"}, env);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(json::parse(r.out)["database_version"], "20191100000001000001") << r.out;
}

// ------------------------------------------------------------- the previous log layout

// The log table exactly as the previous stepwise created it (format 1, version bigint).
constexpr const char* kFormat1Ddl = R"(CREATE TABLE IF NOT EXISTS public.stepwise_log (
  id bigserial PRIMARY KEY,
  version bigint NOT NULL,
  name text NOT NULL,
  kind text NOT NULL DEFAULT 'migration' CHECK (kind IN ('migration', 'backup')),
  direction text NOT NULL CHECK (direction IN ('up', 'down', 'none')),
  outcome text NOT NULL
    CHECK (outcome IN ('running', 'succeeded', 'failed', 'interrupted', 'abandoned')),
  checksum text NOT NULL,
  checksum_algorithm text NOT NULL,
  statements_done integer NOT NULL DEFAULT 0,
  started_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  finished_at timestamptz,
  duration_ms bigint,
  error text,
  sqlstate text,
  host text NOT NULL,
  pid integer NOT NULL,
  db_user text NOT NULL DEFAULT current_user,
  tool_version text NOT NULL
);
COMMENT ON TABLE public.stepwise_log IS 'stepwise attempt log, format 1';)";

constexpr const char* kFile1 = "CREATE TABLE a (id int);\n";
constexpr const char* kFile2 = "CREATE TABLE b (id int);\n";

// A database migrated by the previous stepwise: files 1 and 2 applied (with a failed first
// attempt of 2 and a backup row), schema in place.
void write_format1_history(const TestDb& db) {
  const auto insert = [&](int version, const char* name, const char* file, const char* outcome) {
    db.query(std::string("INSERT INTO public.stepwise_log (version, name, direction, outcome, "
                         "checksum, checksum_algorithm, host, pid, tool_version, finished_at, "
                         "duration_ms, statements_done) VALUES (") +
             std::to_string(version) + ", '" + name + "', 'up', '" + outcome +
             "', encode(sha256(convert_to($f$" + file +
             "$f$, 'UTF8')), 'hex'), 'sha256', 'old-host', 4242, '0.9.0', clock_timestamp(), 3, " +
             (std::string(outcome) == "succeeded" ? "1" : "0") + ")");
  };
  db.query(kFormat1Ddl);
  db.query(kFile1);
  insert(1, "a", kFile1, "succeeded");
  insert(2, "b", kFile2, "failed");
  db.query(kFile2);
  insert(2, "b", kFile2, "succeeded");
  db.query(
      "INSERT INTO public.stepwise_log (kind, version, name, direction, outcome, checksum, "
      "checksum_algorithm, started_at, finished_at, duration_ms, host, pid, tool_version) VALUES "
      "('backup', 2, '/backups/before.dump', 'none', 'succeeded', 'abc', 'sha256', "
      "clock_timestamp(), clock_timestamp(), 5, 'old-host', 4242, '0.9.0')");
}

std::string table_comment(const TestDb& db) {
  return db.scalar("SELECT obj_description('public.stepwise_log'::regclass, 'pg_class')");
}

std::string old_rows(const TestDb& db) {
  return db.scalar(
      "SELECT string_agg(id || ':' || kind || ':' || version || ':' || outcome || ':' || host, ',' "
      "ORDER BY id) FROM stepwise_log WHERE host = 'old-host'");
}

TEST(HostileHistories, LogWrittenByThePreviousLayoutIsUpgradedInPlace) {
  REQUIRE_TEST_DATABASE();
  TestDb db;
  write_format1_history(db);
  const std::string before = old_rows(db);
  ASSERT_EQ(before,
            "1:migration:1:succeeded:old-host,2:migration:2:failed:old-host,"
            "3:migration:2:succeeded:old-host,4:backup:2:succeeded:old-host");
  ASSERT_EQ(column_type(db), "bigint");
  MigrationDir dir;
  dir.write("1_a.up.sql", kFile1);
  dir.write("2_b.up.sql", kFile2);

  // The no-op path reads the old layout as it is (and changes nothing).
  auto r = db.stepwise({"--source", dir.path(), "up"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("nothing to do: database at version 2"), std::string::npos) << r.out;
  EXPECT_EQ(db.stepwise({"--source", dir.path(), "validate"}).exit_code, 0);
  r = db.stepwise({"--source", dir.path(), "status"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("database version 2, latest 2: 2 applied, 0 pending"), std::string::npos)
      << r.out;
  EXPECT_EQ(old_rows(db), before);

  // Pending work: under the lock, the log is upgraded (format 1 -> 3 in one transaction: the
  // version as text, then the origin and notes columns) and the step is logged.
  dir.write("3_c.up.sql", "CREATE TABLE c (id int);\n");
  r = db.stepwise({"--source", dir.path(), "up"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("applied 1 migration(s)"), std::string::npos) << r.out;
  EXPECT_EQ(column_type(db), "text");
  EXPECT_EQ(table_comment(db), "stepwise attempt log, format 3");
  EXPECT_EQ(old_rows(db), before);  // every row kept, ids and versions as they were
  EXPECT_EQ(db.count("SELECT count(*) FROM stepwise_log WHERE origin <> 'stepwise'"), 0);
  EXPECT_EQ(db.scalar("SELECT version FROM stepwise_log WHERE host <> 'old-host'"), "3");
  EXPECT_TRUE(table_exists(db, "c"));
  // The CHECK holds the column to normalised digits.
  EXPECT_THROW(db.query("UPDATE stepwise_log SET version = '01' WHERE id = 1"), std::exception);
  EXPECT_THROW(db.query("UPDATE stepwise_log SET version = 'x' WHERE id = 1"), std::exception);

  // A second run changes nothing; later work runs on the upgraded table.
  const auto constraints = db.scalar(
      "SELECT string_agg(conname, ',' ORDER BY conname) FROM pg_constraint WHERE conrelid = "
      "'public.stepwise_log'::regclass");
  r = db.stepwise({"--source", dir.path(), "up"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("nothing to do: database at version 3"), std::string::npos) << r.out;
  dir.write("20150100000001000000_long.up.sql", "");
  r = db.stepwise({"--source", dir.path(), "up"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(db.scalar("SELECT max(id)::text || ':' || (SELECT version FROM stepwise_log ORDER BY "
                      "id DESC LIMIT 1) FROM stepwise_log"),
            "6:20150100000001000000");
  EXPECT_EQ(db.scalar("SELECT string_agg(conname, ',' ORDER BY conname) FROM pg_constraint WHERE "
                      "conrelid = 'public.stepwise_log'::regclass"),
            constraints);
  EXPECT_EQ(column_type(db), "text");
  EXPECT_EQ(old_rows(db), before);
  EXPECT_EQ(db.stepwise({"--source", dir.path(), "validate"}).exit_code, 0);
  r = db.stepwise({"--source", dir.path(), "status"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("4 applied, 0 pending"), std::string::npos) << r.out;
}

// Many runners racing on an old-layout log: only the lock holder upgrades, once; nothing twice.
TEST(HostileHistories, RacingRunnersUpgradeTheOldLayoutOnce) {
  REQUIRE_TEST_DATABASE();
  TestDb db;
  write_format1_history(db);
  MigrationDir dir;
  dir.write("1_a.up.sql", kFile1);
  dir.write("2_b.up.sql", kFile2);
  for (int v = 3; v <= 6; ++v)
    dir.write(std::to_string(v) + "_t.up.sql",
              "CREATE TABLE t" + std::to_string(v) + " (id int);\n");
  constexpr int kRacers = 30;
  std::vector<Process> racers;
  racers.reserve(kRacers);
  for (int i = 0; i < kRacers; ++i)
    racers.emplace_back(std::vector<std::string>{STEPWISE_BINARY, "--database-url", db.url(),
                                                 "--source", dir.path(), "--lock-timeout", "60s",
                                                 "up"});
  int ok = 0;
  for (auto& p : racers) {
    const auto res = p.wait();
    EXPECT_EQ(res.exit_code, 0) << res.err;
    ok += res.exit_code == 0 ? 1 : 0;
  }
  EXPECT_EQ(ok, kRacers);
  EXPECT_EQ(column_type(db), "text");
  EXPECT_EQ(table_comment(db), "stepwise attempt log, format 3");
  EXPECT_EQ(db.count("SELECT count(*) FROM stepwise_log WHERE host <> 'old-host'"), 4);
  EXPECT_EQ(log_versions(db, "host <> 'old-host'"),
            "3:up:succeeded,4:up:succeeded,5:up:succeeded,6:up:succeeded");
  EXPECT_EQ(db.count("SELECT count(*) FROM pg_constraint WHERE conrelid = "
                     "'public.stepwise_log'::regclass AND conname = 'stepwise_log_version_digits'"),
            1);
  EXPECT_EQ(db.count("SELECT count(*) FROM pg_constraint WHERE conrelid = "
                     "'public.stepwise_log'::regclass AND conname = 'stepwise_log_origin_known'"),
            1);
}

}  // namespace
}  // namespace stepwise::test
