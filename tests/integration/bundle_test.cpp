// stepwise bundle: a copy of the binary with a folder's set appended behaves as if built with it.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "test_db.hpp"

namespace stepwise::test {
namespace {

namespace fs = std::filesystem;

std::string bundle_of(const MigrationDir& set, const MigrationDir& out) {
  const auto file = out.path() + "/app-migrator";
  const auto r = run(stepwise_cmd({"--source", set.path(), "bundle", "-o", file}));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("bundled set, 2 migration(s), newest 2,"), std::string::npos) << r.out;
  return file;
}

void write_app_set(const MigrationDir& set) {
  set.write("1_widgets.up.sql", "CREATE TABLE widgets (id int PRIMARY KEY);");
  set.write("2_gadgets.up.sql", "CREATE TABLE gadgets (id int PRIMARY KEY);");
  set.write("releases.json", R"({"releases": [{"name": "1.0", "schema": 2, "min_schema": 1}]})");
}

TEST(Bundle, TheBundledBinaryAppliesItsOwnSet) {
  REQUIRE_TEST_DATABASE();
  TestDb db;
  MigrationDir set, out;
  write_app_set(set);
  const auto migrator = bundle_of(set, out);
  const auto v = run({migrator, "--version"});
  EXPECT_EQ(v.exit_code, 0);
  EXPECT_NE(v.out.find("migrations: bundled set, 2 migration(s), newest 2, digest "),
            std::string::npos)
      << v.out;
  const auto r = run({migrator, "--database-url", db.url(), "up"},
                     {{"STEPWISE_DATABASE_URL", ""}, {"DATABASE_URL", ""}});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(db.count("SELECT count(*) FROM pg_tables WHERE tablename IN ('widgets', 'gadgets')"),
            2);
  EXPECT_EQ(db.count("SELECT count(*) FROM pg_tables WHERE tablename = 'accounts'"), 0)
      << "not the compiled-in set";
  const auto s = run({migrator, "--database-url", db.url(), "status"},
                     {{"STEPWISE_DATABASE_URL", ""}, {"DATABASE_URL", ""}});
  EXPECT_NE(s.out.find("migration set: bundled set, 2 migration(s)"), std::string::npos) << s.out;
  // --source still overrides the bundled set.
  MigrationDir other;
  other.write("3_other.up.sql", "CREATE TABLE other (id int);");
  const auto o = run({migrator, "--database-url", db.url(), "--source", other.path(), "up",
                      "--allow-out-of-order"},
                     {{"STEPWISE_DATABASE_URL", ""}, {"DATABASE_URL", ""}});
  EXPECT_EQ(o.exit_code, 6) << "the database has versions 1 and 2 the folder lacks: " << o.err;
}

// check's probes and allow list travel with the bundled set, as they are embedded at build time.
TEST(Bundle, CarriesChecksProbesAndAllowList) {
  REQUIRE_TEST_DATABASE();
  MigrationDir set, out;
  write_app_set(set);
  fs::create_directories(set.path() + "/checks");
  set.write("checks/1.0.sql", "SELECT id FROM widgets;\nSELECT colour FROM gadgets;\n");
  set.write("check-allow.txt",
            "1_widgets.up.sql irreversible because the test set has no downs\n"
            "2_gadgets.up.sql irreversible because the test set has no downs\n");
  const auto migrator = bundle_of(set, out);
  const auto r = run({migrator, "check", "--scratch-url", admin_url()},
                     {{"STEPWISE_DATABASE_URL", ""}, {"DATABASE_URL", ""}});
  EXPECT_EQ(r.exit_code, 17) << r.out << r.err;
  EXPECT_EQ(r.out.find("irreversible"), std::string::npos) << "the bundled allow list: " << r.out;
  EXPECT_NE(r.out.find("checks/1.0.sql:2:1: error compat-probe: release 1.0's code fails at "
                       "schema version 1"),
            std::string::npos)
      << r.out;
}

TEST(Bundle, ACorruptedOrTruncatedPayloadIsRefusedNeverReplaced) {
  MigrationDir set, out;
  write_app_set(set);
  const auto migrator = bundle_of(set, out);
  const auto size = fs::file_size(migrator);
  // One byte flipped inside the payload.
  const auto corrupt = out.path() + "/corrupt";
  fs::copy_file(migrator, corrupt);
  {
    std::fstream f(corrupt, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(size - 80));
    f.put('#');
  }
  auto r = run({corrupt, "--connect-timeout", "1s", "status"});
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_NE(r.err.find("the bundled migration set is damaged: checksum mismatch"),
            std::string::npos)
      << r.err;
  // The trailer cut off.
  const auto truncated = out.path() + "/truncated";
  fs::copy_file(migrator, truncated);
  fs::resize_file(truncated, size - 10);
  r = run({truncated, "--connect-timeout", "1s", "status"});
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_NE(r.err.find("trailer is missing"), std::string::npos) << r.err;
  // A bad folder is refused with the loader's own error, and nothing is written.
  // (An empty file is a valid step; an unknown directive is not.)
  set.write("3_bad.up.sql", "-- stepwise:no-transation\n");
  const auto bad = run(stepwise_cmd({"--source", set.path(), "bundle", "-o", out.path() + "/bad"}));
  EXPECT_EQ(bad.exit_code, 3);
  EXPECT_NE(bad.err.find("3_bad.up.sql: unknown directive"), std::string::npos) << bad.err;
  EXPECT_FALSE(fs::exists(out.path() + "/bad"));
}

}  // namespace
}  // namespace stepwise::test
