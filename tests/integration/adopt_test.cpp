// `stepwise adopt` against a real PostgreSQL server: for each tool, its history table built as
// the tool documents it (the tool's files applied by hand first); then adopt, status, up applies
// only the newer files, validate passes, the other table is untouched, a second adopt is a
// no-op. Refusals (dirty, failed, unmapped, gaps, disagreeing logs), drift verification,
// --baseline, and adopt racing an up.
#include <gtest/gtest.h>

#include <openssl/evp.h>
#include <unistd.h>
#include <filesystem>

#include <fmt/format.h>
#include <cstdlib>
#include <fstream>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "test_db.hpp"

namespace stepwise::test {
namespace {

// Four files; the other tool applied the first three.
const std::vector<std::pair<std::string, std::string>> kFiles = {
    {"20240101000001_create_users.up.sql", "CREATE TABLE users (id bigint PRIMARY KEY);\n"},
    {"20240101000002_add_email.up.sql", "ALTER TABLE users ADD COLUMN email text;\n"},
    {"20240101000003_create_orders.up.sql",
     "CREATE TABLE orders (id bigint PRIMARY KEY, user_id bigint REFERENCES users);\n"},
    {"20240101000004_add_index.up.sql", "CREATE INDEX orders_user ON orders (user_id);\n"},
};

void write_set(const MigrationDir& dir) {
  for (const auto& [name, sql] : kFiles) dir.write(name, sql);
}

// What the other tool did to the schema: files 1..n.
void apply_by_hand(const TestDb& db, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) db.query(kFiles[i].second);
}

nlohmann::json json_of(const ProcessResult& r) {
  try {
    return nlohmann::json::parse(r.out);
  } catch (const std::exception&) {
    return nlohmann::json();
  }
}

// version -> "state origin" from `status --output json`.
std::map<std::string, std::string> states(const TestDb& db, const MigrationDir& dir) {
  const auto r = db.stepwise({"--source", dir.path(), "--output", "json", "status"});
  std::map<std::string, std::string> out;
  const auto doc = json_of(r);
  if (!doc.contains("migrations")) return out;
  for (const auto& m : doc["migrations"]) {
    std::string v = m["version"].is_string() ? m["version"].get<std::string>()
                                             : std::to_string(m["version"].get<long long>());
    out[v] = m.value("state", "") + (m.contains("origin") ? " " + m.value("origin", "") : "");
  }
  return out;
}

struct Flow {
  std::string tool;
  std::string history_sql;  // builds the tool's table as the tool leaves it
  std::string table_dump;   // SELECT that shows the tool's rows (unchanged by adopt)
};

// The whole switch: adopt, status, up (only file 4), validate, second adopt, other table kept.
void adopt_then_up(const Flow& f) {
  REQUIRE_TEST_DATABASE();
  TestDb db;
  MigrationDir dir;
  write_set(dir);
  apply_by_hand(db, 3);
  db.query(f.history_sql);
  const auto before = db.query(f.table_dump);

  const auto dry = db.stepwise({"--source", dir.path(), "--dry-run", "adopt", "--from", f.tool});
  ASSERT_EQ(dry.exit_code, 0) << dry.out << dry.err;
  EXPECT_NE(dry.out.find("would adopt 20240101000003_create_orders.up.sql"), std::string::npos)
      << dry.out;
  EXPECT_EQ(db.scalar("SELECT to_regclass('public.stepwise_log') IS NULL"), "t");

  const auto a = db.stepwise({"--source", dir.path(), "adopt", "--from", f.tool});
  ASSERT_EQ(a.exit_code, 0) << a.out << a.err;
  EXPECT_NE(a.out.find("recorded 3 migration(s) from " + f.tool), std::string::npos) << a.out;
  EXPECT_NE(a.err.find("no expected schema recorded for version 20240101000003"), std::string::npos)
      << a.err;

  auto st = states(db, dir);
  EXPECT_EQ(st["20240101000001"], "applied adopted:" + f.tool);
  EXPECT_EQ(st["20240101000003"], "applied adopted:" + f.tool);
  EXPECT_EQ(st["20240101000004"], "pending");
  const auto text = db.stepwise({"--source", dir.path(), "status"});
  EXPECT_NE(text.out.find("(adopted from " + f.tool + ")"), std::string::npos) << text.out;
  EXPECT_EQ(db.count("SELECT count(*) FROM stepwise_log WHERE origin = 'adopted:" + f.tool +
                     "' AND outcome = 'succeeded' AND notes LIKE 'adopted from %'"),
            3);

  const auto up = db.stepwise({"--source", dir.path(), "--output", "json", "up"});
  ASSERT_EQ(up.exit_code, 0) << up.out << up.err;
  const auto applied = json_of(up)["applied"];
  ASSERT_EQ(applied.size(), 1u) << up.out;
  EXPECT_EQ(applied[0]["version"].get<long long>(), 20240101000004LL);
  EXPECT_EQ(db.count("SELECT count(*) FROM pg_indexes WHERE indexname = 'orders_user'"), 1);

  const auto v = db.stepwise({"--source", dir.path(), "validate"});
  EXPECT_EQ(v.exit_code, 0) << v.out << v.err;

  const auto again = db.stepwise({"--source", dir.path(), "adopt", "--from", f.tool});
  EXPECT_EQ(again.exit_code, 0) << again.out << again.err;
  EXPECT_NE(again.out.find("nothing to adopt"), std::string::npos) << again.out;
  EXPECT_EQ(db.count("SELECT count(*) FROM stepwise_log"), 4);
  EXPECT_EQ(db.query(f.table_dump), before) << "adopt wrote to the other tool's table";
}

// --- one flow per tool, its table as documented -------------------------------------------

TEST(AdoptTools, GolangMigrate) {
  adopt_then_up({"golang-migrate",
                 "CREATE TABLE schema_migrations (version bigint NOT NULL PRIMARY KEY,"
                 " dirty boolean NOT NULL);"
                 "INSERT INTO schema_migrations VALUES (20240101000003, false);",
                 "SELECT version, dirty FROM schema_migrations"});
}

TEST(AdoptTools, Dbmate) {
  adopt_then_up({"dbmate",
                 "CREATE TABLE schema_migrations (version varchar(128) PRIMARY KEY);"
                 "INSERT INTO schema_migrations VALUES ('20240101000001'), ('20240101000002'),"
                 " ('20240101000003');",
                 "SELECT version FROM schema_migrations ORDER BY 1"});
}

TEST(AdoptTools, Goose) {
  // goose's own row for version 0, and appended rows; the newest row per version decides.
  adopt_then_up({"goose",
                 "CREATE TABLE goose_db_version (id serial PRIMARY KEY, version_id bigint NOT NULL,"
                 " is_applied boolean NOT NULL, tstamp timestamp DEFAULT now());"
                 "INSERT INTO goose_db_version (version_id, is_applied, tstamp) VALUES"
                 " (0, true, '2024-01-01'), (20240101000001, true, '2024-01-02'),"
                 " (20240101000002, true, '2024-01-03'), (20240101000003, true, '2024-01-04');",
                 "SELECT * FROM goose_db_version ORDER BY id"});
}

TEST(AdoptTools, Flyway) {
  adopt_then_up(
      {"flyway",
       "CREATE TABLE flyway_schema_history (installed_rank integer PRIMARY KEY,"
       " version varchar(50), description varchar(200) NOT NULL, type varchar(20) NOT NULL,"
       " script varchar(1000) NOT NULL, checksum integer, installed_by varchar(100) NOT NULL,"
       " installed_on timestamp NOT NULL DEFAULT now(), execution_time integer NOT NULL,"
       " success boolean NOT NULL);"
       "INSERT INTO flyway_schema_history VALUES"
       " (1, '20240101000001', 'create users', 'SQL', 'V20240101000001__create_users.sql', 1,"
       " 'app', '2024-01-02', 5, true),"
       " (2, '20240101000002', 'add email', 'SQL', 'V20240101000002__add_email.sql', 2, 'app',"
       " '2024-01-03', 5, true),"
       " (3, NULL, 'views', 'SQL', 'R__views.sql', 3, 'app', '2024-01-03', 5, true),"
       " (4, '20240101000003', 'create orders', 'SQL', 'V20240101000003__create_orders.sql', 4,"
       " 'app', '2024-01-04', 5, true);",
       "SELECT * FROM flyway_schema_history ORDER BY installed_rank"});
}

TEST(AdoptTools, Sqitch) {
  // The registry as sqitch's pg.sql creates it (the columns adopt reads, and their neighbours).
  adopt_then_up(
      {"sqitch",
       "CREATE SCHEMA sqitch;"
       "CREATE TABLE sqitch.changes (change_id text PRIMARY KEY, script_hash text,"
       " change text NOT NULL, project text NOT NULL, note text NOT NULL DEFAULT '',"
       " committed_at timestamptz NOT NULL DEFAULT clock_timestamp(),"
       " committer_name text NOT NULL, committer_email text NOT NULL,"
       " planned_at timestamptz NOT NULL, planner_name text NOT NULL,"
       " planner_email text NOT NULL);"
       "CREATE TABLE sqitch.events (event text NOT NULL CHECK (event IN ('deploy',"
       " 'revert', 'fail', 'merge')), change_id text NOT NULL, change text NOT NULL,"
       " project text NOT NULL, note text NOT NULL DEFAULT '',"
       " committed_at timestamptz NOT NULL DEFAULT clock_timestamp(),"
       " PRIMARY KEY (change_id, committed_at));"
       "INSERT INTO sqitch.changes (change_id, change, project, committed_at,"
       " committer_name, committer_email, planned_at, planner_name, planner_email)"
       " SELECT 'id' || n, c, 'app', ('2024-01-0' || n)::timestamptz, 'a', 'a@x', now(), 'a', 'a@x'"
       " FROM (VALUES (1, 'create_users'), (2, 'add_email'), (3, 'create_orders'))"
       " AS t(n, c);"
       "INSERT INTO sqitch.events (event, change_id, change, project, committed_at)"
       " VALUES ('deploy', 'id1', 'create_users', 'app', '2024-01-01'),"
       " ('deploy', 'id2', 'add_email', 'app', '2024-01-02'),"
       " ('fail', 'id3', 'create_orders', 'app', '2024-01-03 00:00'),"
       " ('deploy', 'id3', 'create_orders', 'app', '2024-01-03 01:00');",
       "SELECT change_id, change FROM sqitch.changes ORDER BY 1"});
}

TEST(AdoptTools, NodePgMigrate) {
  adopt_then_up({"node-pg-migrate",
                 "CREATE TABLE pgmigrations (id serial PRIMARY KEY, name varchar(255) NOT NULL,"
                 " run_on timestamp NOT NULL);"
                 "INSERT INTO pgmigrations (name, run_on) VALUES"
                 " ('20240101000001_create_users', '2024-01-02'),"
                 " ('20240101000002_add_email', '2024-01-03'),"
                 " ('20240101000003_create_orders', '2024-01-04');",
                 "SELECT * FROM pgmigrations ORDER BY id"});
}

TEST(AdoptTools, Postgrator) {
  adopt_then_up({"postgrator",
                 "CREATE TABLE schemaversion (version bigint PRIMARY KEY, name text DEFAULT '',"
                 " md5 text DEFAULT '', run_at timestamptz DEFAULT now());"
                 "INSERT INTO schemaversion VALUES (0, '', '', '2024-01-01'),"
                 " (20240101000001, 'create_users', 'x', '2024-01-02'),"
                 " (20240101000002, 'add_email', 'y', '2024-01-03'),"
                 " (20240101000003, 'create_orders', 'z', '2024-01-04');",
                 "SELECT * FROM schemaversion ORDER BY version"});
}

// graphile-migrate 1.4's own DDL (its migration.js); filename is the number only.
TEST(AdoptTools, GraphileMigrate) {
  adopt_then_up(
      {"graphile-migrate",
       "CREATE SCHEMA graphile_migrate; CREATE TABLE graphile_migrate.migrations ("
       " hash text PRIMARY KEY, previous_hash text REFERENCES graphile_migrate.migrations,"
       " filename text NOT NULL, date timestamptz NOT NULL DEFAULT now());"
       "INSERT INTO graphile_migrate.migrations VALUES"
       " ('sha1:a', NULL, '20240101000001.sql', '2024-01-02'),"
       " ('sha1:b', 'sha1:a', '20240101000002.sql', '2024-01-03'),"
       " ('sha1:c', 'sha1:b', '20240101000003.sql', '2024-01-04');",
       "SELECT * FROM graphile_migrate.migrations ORDER BY filename"});
}

TEST(AdoptTools, AppliedAtTimesAreKept) {
  REQUIRE_TEST_DATABASE();
  TestDb db;
  MigrationDir dir;
  write_set(dir);
  apply_by_hand(db, 3);
  db.query(
      "CREATE TABLE schemaversion (version bigint PRIMARY KEY, name text, md5 text,"
      " run_at timestamptz);"
      "INSERT INTO schemaversion VALUES (20240101000001, 'a', '', '2023-05-06 07:08:09+00'),"
      " (20240101000002, 'b', '', '2023-05-07 00:00:00+00'),"
      " (20240101000003, 'c', '', '2023-05-08 00:00:00+00');");
  const auto a = db.stepwise({"--source", dir.path(), "adopt", "--from", "postgrator"});
  ASSERT_EQ(a.exit_code, 0) << a.err;
  EXPECT_EQ(db.scalar("SELECT to_char(finished_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS')"
                      " FROM stepwise_log WHERE version = '20240101000001'"),
            "2023-05-06 07:08:09");
  // The checksum is the file's: validate checks adopted rows like applied ones.
  db.query("UPDATE stepwise_log SET checksum = 'x' WHERE version = '20240101000002'");
  (void)db.stepwise({"--source", dir.path(), "up"});
  EXPECT_EQ(db.stepwise({"--source", dir.path(), "validate"}).exit_code, 12);
}

// --- refusals -------------------------------------------------------------------------------

struct Refused {
  ProcessResult r;
  long long log_rows = 0;
};

Refused adopt_with(const std::string& history_sql, std::vector<std::string> args,
                   std::size_t by_hand = 3, const std::string& log_sql = "") {
  TestDb db;
  MigrationDir dir;
  write_set(dir);
  apply_by_hand(db, by_hand);
  db.query(history_sql);
  if (!log_sql.empty()) {
    // stepwise ran something itself first (the log table then exists).
    MigrationDir first;
    first.write(kFiles[0].first, "SELECT 1;\n");
    (void)db.stepwise({"--source", first.path(), "up"});
    db.query(log_sql);
  }
  std::vector<std::string> full = {"--source", dir.path(), "adopt"};
  full.insert(full.end(), args.begin(), args.end());
  Refused out;
  out.r = db.stepwise(full);
  out.log_rows = db.scalar("SELECT to_regclass('public.stepwise_log') IS NULL") == "t"
                     ? 0
                     : db.count("SELECT count(*) FROM stepwise_log WHERE origin <> 'stepwise'");
  return out;
}

constexpr const char* kGolang =
    "CREATE TABLE schema_migrations (version bigint NOT NULL PRIMARY KEY, dirty boolean NOT "
    "NULL);";
constexpr const char* kDbmate =
    "CREATE TABLE schema_migrations (version varchar(128) PRIMARY KEY);";

TEST(AdoptRefusals, DirtyGolangMigrateVersion) {
  REQUIRE_TEST_DATABASE();
  const auto x = adopt_with(
      std::string(kGolang) + "INSERT INTO schema_migrations VALUES (20240101000003, true);",
      {"--from", "golang-migrate"});
  EXPECT_EQ(x.r.exit_code, 6) << x.r.err;
  EXPECT_NE(x.r.err.find("20240101000003 is dirty"), std::string::npos) << x.r.err;
  EXPECT_EQ(x.log_rows, 0);
}

TEST(AdoptRefusals, FailedFlywayEntry) {
  REQUIRE_TEST_DATABASE();
  const auto x = adopt_with(
      "CREATE TABLE flyway_schema_history (installed_rank integer PRIMARY KEY, version "
      "varchar(50), description varchar(200), type varchar(20) NOT NULL, script varchar(1000),"
      " checksum integer, installed_by varchar(100), installed_on timestamp DEFAULT now(),"
      " execution_time integer, success boolean NOT NULL);"
      "INSERT INTO flyway_schema_history (installed_rank, version, description, type, script,"
      " success) VALUES (1, '20240101000001', 'u', 'SQL', 'V20240101000001__u.sql', true),"
      " (2, '20240101000002', 'e', 'SQL', 'V20240101000002__e.sql', false);",
      {"--from", "flyway"});
  EXPECT_EQ(x.r.exit_code, 6) << x.r.err;
  EXPECT_NE(x.r.err.find("V20240101000002__e.sql"), std::string::npos) << x.r.err;
  EXPECT_EQ(x.log_rows, 0);
}

TEST(AdoptRefusals, FailedSqitchDeploy) {
  REQUIRE_TEST_DATABASE();
  const auto x = adopt_with(
      "CREATE SCHEMA sqitch; CREATE TABLE sqitch.changes (change text, project text,"
      " committed_at timestamptz);"
      "CREATE TABLE sqitch.events (event text, change text, project text, committed_at "
      "timestamptz);"
      "INSERT INTO sqitch.changes VALUES ('create_users', 'app', now());"
      "INSERT INTO sqitch.events VALUES ('deploy', 'create_users', 'app', now()),"
      " ('fail', 'add_email', 'app', now());",
      {"--from", "sqitch"});
  EXPECT_EQ(x.r.exit_code, 6) << x.r.err;
  EXPECT_NE(x.r.err.find("add_email is failed"), std::string::npos) << x.r.err;
}

TEST(AdoptRefusals, GooseRolledBackVersionStaysPending) {
  REQUIRE_TEST_DATABASE();
  TestDb db;
  MigrationDir dir;
  write_set(dir);
  apply_by_hand(db, 2);
  db.query(
      "CREATE TABLE goose_db_version (id serial PRIMARY KEY, version_id bigint NOT NULL,"
      " is_applied boolean NOT NULL, tstamp timestamp DEFAULT now());"
      "INSERT INTO goose_db_version (version_id, is_applied) VALUES (0, true),"
      " (20240101000001, true), (20240101000002, true), (20240101000003, true),"
      " (20240101000003, false);");
  const auto a = db.stepwise({"--source", dir.path(), "adopt", "--from", "goose"});
  ASSERT_EQ(a.exit_code, 0) << a.err;
  EXPECT_NE(a.out.find("recorded 2 migration(s)"), std::string::npos) << a.out;
  const auto up = db.stepwise({"--source", dir.path(), "up"});
  EXPECT_EQ(up.exit_code, 0) << up.err;
  EXPECT_NE(up.out.find("applied 2 migration(s)"), std::string::npos) << up.out;
}

// A goose project switches in two commands: import converts the folder (annotations, statement
// blocks, NO TRANSACTION), adopt takes goose's history over, and up runs only what goose had not.
TEST(AdoptRefusals, GooseFolderImportedThenAdoptedThenUp) {
  REQUIRE_TEST_DATABASE();
  TestDb db;
  MigrationDir goose;
  goose.write("00001_users.sql",
              "-- +goose Up\nCREATE TABLE users (id int PRIMARY KEY);\n-- +goose StatementBegin\n"
              "CREATE FUNCTION one() RETURNS int AS $$ SELECT 1; $$ LANGUAGE sql;\n"
              "-- +goose StatementEnd\n-- +goose Down\nDROP FUNCTION one();\nDROP TABLE users;\n");
  goose.write("00002_users_idx.sql",
              "-- +goose NO TRANSACTION\n-- +goose Up\nCREATE INDEX CONCURRENTLY users_id_idx ON "
              "users (id);\n-- +goose Down\nDROP INDEX CONCURRENTLY users_id_idx;\n");
  goose.write("00003_orders.sql",
              "-- +goose Up\nCREATE TABLE orders (id int);\n-- +goose Down\nDROP TABLE orders;\n");
  // What goose itself left: the first two applied, its own row for version 0.
  db.query(
      "CREATE TABLE users (id int PRIMARY KEY);"
      " CREATE FUNCTION one() RETURNS int AS $$ SELECT 1; $$ LANGUAGE sql;"
      " CREATE INDEX users_id_idx ON users (id);"
      " CREATE TABLE goose_db_version (id serial PRIMARY KEY, version_id bigint NOT NULL,"
      " is_applied boolean NOT NULL, tstamp timestamp DEFAULT now());"
      " INSERT INTO goose_db_version (version_id, is_applied) VALUES (0, true), (1, true), (2, "
      "true)");
  MigrationDir out_parent;
  const auto set = out_parent.path() + "/set";
  const auto im = db.stepwise({"import", "--from", "goose", goose.path(), set});
  ASSERT_EQ(im.exit_code, 0) << im.err;
  EXPECT_NE(im.out.find("imported 3 migration(s) (6 file(s))"), std::string::npos) << im.out;
  const auto up_before = db.stepwise({"--source", set, "up"});
  EXPECT_EQ(up_before.exit_code, 6) << "up over goose's history must refuse\n" << up_before.err;
  const auto a = db.stepwise({"--source", set, "adopt", "--from", "goose"});
  ASSERT_EQ(a.exit_code, 0) << a.err;
  EXPECT_NE(a.out.find("recorded 2 migration(s)"), std::string::npos) << a.out;
  const auto up = db.stepwise({"--source", set, "up"});
  ASSERT_EQ(up.exit_code, 0) << up.err;
  EXPECT_NE(up.out.find("applied 1 migration(s)"), std::string::npos) << up.out;
  EXPECT_EQ(db.scalar("SELECT to_regclass('orders') IS NOT NULL"), "t");
  // The down of version 2 came over with NO TRANSACTION: migrate-to 1 runs it outside one.
  const auto down = db.stepwise({"--source", set, "migrate-to", "1"});
  EXPECT_EQ(down.exit_code, 0) << down.err;
  EXPECT_EQ(db.scalar("SELECT to_regclass('users_id_idx') IS NULL"), "t");
}

TEST(AdoptRefusals, UnmappedEntryIsNamedAndAMappingFileMapsIt) {
  REQUIRE_TEST_DATABASE();
  TestDb db;
  MigrationDir dir;
  write_set(dir);
  apply_by_hand(db, 3);
  db.query(std::string(kDbmate) +
           "INSERT INTO schema_migrations VALUES ('20240101000001'), ('20240101000002'),"
           " ('1.3'), ('99');");
  auto a = db.stepwise({"--source", dir.path(), "adopt", "--from", "dbmate"});
  EXPECT_EQ(a.exit_code, 6) << a.err;
  EXPECT_NE(a.err.find("2 entries match no file of this set: 1.3, 99"), std::string::npos) << a.err;
  MigrationDir maps;
  maps.write("map.txt", "# dbmate id = stepwise version\n1.3 = 20240101000003\n99=-\n");
  a = db.stepwise(
      {"--source", dir.path(), "adopt", "--from", "dbmate", "--mapping", maps.path() + "/map.txt"});
  ASSERT_EQ(a.exit_code, 0) << a.err;
  EXPECT_NE(a.err.find("99: left out"), std::string::npos) << a.err;
  EXPECT_EQ(db.count("SELECT count(*) FROM stepwise_log WHERE origin = 'adopted:dbmate'"), 3);
  maps.write("bad.txt", "1.3 = one\n");
  a = db.stepwise(
      {"--source", dir.path(), "adopt", "--from", "dbmate", "--mapping", maps.path() + "/bad.txt"});
  EXPECT_EQ(a.exit_code, 2) << a.err;
  EXPECT_NE(a.err.find("bad.txt\":1: \"one\" is not a stepwise version"), std::string::npos)
      << a.err;
}

TEST(AdoptRefusals, GapIsNamedUnlessAllowedOutOfOrder) {
  REQUIRE_TEST_DATABASE();
  TestDb db;
  MigrationDir dir;
  write_set(dir);
  db.query(kFiles[0].second);
  db.query("CREATE TABLE orders (id bigint PRIMARY KEY, user_id bigint REFERENCES users);");
  db.query(std::string(kDbmate) +
           "INSERT INTO schema_migrations VALUES ('20240101000001'), ('20240101000003');");
  auto a = db.stepwise({"--source", dir.path(), "adopt", "--from", "dbmate"});
  EXPECT_EQ(a.exit_code, 6) << a.err;
  EXPECT_NE(a.err.find("never applied 20240101000002_add_email.up.sql"), std::string::npos)
      << a.err;
  EXPECT_EQ(db.scalar("SELECT to_regclass('public.stepwise_log') IS NULL"), "t");
  a = db.stepwise({"--source", dir.path(), "adopt", "--from", "dbmate", "--allow-out-of-order"});
  ASSERT_EQ(a.exit_code, 0) << a.err;
  EXPECT_EQ(states(db, dir)["20240101000002"], "pending");
  const auto up = db.stepwise({"--source", dir.path(), "up", "--allow-out-of-order"});
  EXPECT_EQ(up.exit_code, 0) << up.err;
  EXPECT_EQ(db.stepwise({"--source", dir.path(), "validate"}).exit_code, 0);
}

TEST(AdoptRefusals, StepwiseLogThatDisagrees) {
  REQUIRE_TEST_DATABASE();
  TestDb db;
  MigrationDir dir;
  write_set(dir);
  // stepwise applied file 2 itself (by a set holding only it); dbmate claims 1 and 3.
  MigrationDir only2;
  only2.write(kFiles[1].first, kFiles[1].second);
  db.query(kFiles[0].second);
  ASSERT_EQ(db.stepwise({"--source", only2.path(), "up"}).exit_code, 0);
  db.query(kFiles[2].second);
  db.query(std::string(kDbmate) +
           "INSERT INTO schema_migrations VALUES ('20240101000001'), ('20240101000003');");
  const auto a = db.stepwise({"--source", dir.path(), "adopt", "--from", "dbmate"});
  EXPECT_EQ(a.exit_code, 6) << a.err;
  EXPECT_NE(a.err.find("version(s) 20240101000002 applied, which dbmate"), std::string::npos)
      << a.err;
  EXPECT_EQ(db.count("SELECT count(*) FROM stepwise_log"), 1);
}

TEST(AdoptRefusals, MissingTableAndUnknownTool) {
  REQUIRE_TEST_DATABASE();
  TestDb db;
  MigrationDir dir;
  write_set(dir);
  auto a = db.stepwise({"--source", dir.path(), "adopt", "--from", "dbmate"});
  EXPECT_EQ(a.exit_code, 6) << a.err;
  EXPECT_NE(a.err.find("public.schema_migrations does not exist"), std::string::npos) << a.err;
  a = db.stepwise({"--source", dir.path(), "adopt", "--from", "liquibase"});
  EXPECT_EQ(a.exit_code, 2) << a.err;
  a = db.stepwise({"--source", dir.path(), "adopt"});
  EXPECT_EQ(a.exit_code, 2) << a.err;
  db.query("CREATE TABLE schema_migrations (v text)");
  a = db.stepwise({"--source", dir.path(), "adopt", "--from", "dbmate"});
  EXPECT_EQ(a.exit_code, 6) << a.err;
  EXPECT_NE(a.err.find("has no column version"), std::string::npos) << a.err;
}

// --- verification against the expected schema -------------------------------------------

// A set with releases at 3 and 4 and their expected schemas generated by stepwise.
void write_set_with_expected(const TestDb& db, const MigrationDir& dir) {
  write_set(dir);
  dir.write(
      "releases.json",
      R"({"releases": [{"name": "1.0", "schema": 20240101000003, "min_schema": 20240101000001},
 {"name": "1.1", "schema": 20240101000004, "min_schema": 20240101000003}]})");
  const auto g = db.stepwise({"--log-level", "warn", "--source", dir.path(), "generate-expected"});
  ASSERT_EQ(g.exit_code, 0) << g.out << g.err;
}

TEST(AdoptVerify, MatchingSchemaIsVerified) {
  REQUIRE_TEST_DATABASE();
  TestDb db;
  MigrationDir dir;
  write_set_with_expected(db, dir);
  apply_by_hand(db, 3);
  db.query(std::string(kGolang) + "INSERT INTO schema_migrations VALUES (20240101000003, false);");
  const auto a = db.stepwise({"--source", dir.path(), "adopt", "--from", "golang-migrate"});
  ASSERT_EQ(a.exit_code, 0) << a.out << a.err;
  EXPECT_NE(a.out.find("schema verified"), std::string::npos) << a.out;
}

TEST(AdoptVerify, DriftRefusesWith14AndAcceptDriftRecordsTheFindings) {
  REQUIRE_TEST_DATABASE();
  TestDb db;
  MigrationDir dir;
  write_set_with_expected(db, dir);
  apply_by_hand(db, 3);
  db.query("ALTER TABLE users ADD COLUMN nickname text");  // a hand change nobody recorded
  db.query(std::string(kGolang) + "INSERT INTO schema_migrations VALUES (20240101000003, false);");
  auto a = db.stepwise({"--source", dir.path(), "adopt", "--from", "golang-migrate"});
  EXPECT_EQ(a.exit_code, 14) << a.out << a.err;
  EXPECT_NE(a.out.find("public.users.nickname"), std::string::npos) << a.out;
  EXPECT_EQ(db.scalar("SELECT to_regclass('public.stepwise_log') IS NULL"), "t");
  a = db.stepwise({"--source", dir.path(), "adopt", "--from", "golang-migrate", "--accept-drift"});
  ASSERT_EQ(a.exit_code, 0) << a.out << a.err;
  EXPECT_EQ(db.count("SELECT count(*) FROM stepwise_log WHERE notes LIKE '%accepted drift%"
                     "public.users.nickname%'"),
            3);
}

// Item 3, the release containing the version: the set has expected schemas for its releases
// (1 and 3) and the head (4); a database the other tool left at 2 lies between two releases,
// so none applies: adopt refuses (nothing recorded) unless --skip-verify, which warns.
TEST(AdoptVerify, VersionBetweenReleasesRefusesUnlessSkipVerify) {
  REQUIRE_TEST_DATABASE();
  TestDb db;
  MigrationDir dir;
  write_set(dir);
  dir.write(
      "releases.json",
      R"({"releases": [{"name": "0.9", "schema": 20240101000001, "min_schema": 20240101000001},
 {"name": "1.0", "schema": 20240101000003, "min_schema": 20240101000001}]})");
  const auto g = db.stepwise({"--log-level", "warn", "--source", dir.path(), "generate-expected"});
  ASSERT_EQ(g.exit_code, 0) << g.out << g.err;
  apply_by_hand(db, 2);
  db.query(std::string(kGolang) + "INSERT INTO schema_migrations VALUES (20240101000002, false);");
  auto a = db.stepwise({"--source", dir.path(), "adopt", "--from", "golang-migrate"});
  EXPECT_EQ(a.exit_code, 6) << a.out << a.err;
  EXPECT_NE(a.err.find("version 20240101000002 lies between release 0.9 (schema 20240101000001) "
                       "and release 1.0 (schema 20240101000003): no expected schema applies"),
            std::string::npos)
      << a.err;
  EXPECT_NE(a.err.find("--skip-verify"), std::string::npos) << a.err;
  EXPECT_EQ(db.scalar("SELECT to_regclass('public.stepwise_log') IS NULL"), "t");
  a = db.stepwise({"--source", dir.path(), "adopt", "--from", "golang-migrate", "--skip-verify"});
  ASSERT_EQ(a.exit_code, 0) << a.out << a.err;
  EXPECT_NE(a.err.find("no expected schema applies to it"), std::string::npos) << a.err;
  EXPECT_NE(a.out.find("recorded 2 migration(s)"), std::string::npos) << a.out;
  EXPECT_EQ(a.out.find("schema verified"), std::string::npos) << a.out;
  // From there stepwise goes on; at the head validate verifies the schema (golang-migrate's
  // table is not the application's: adopt leaves it, validate is told to).
  EXPECT_EQ(db.stepwise({"--source", dir.path(), "up"}).exit_code, 0);
  const auto v =
      db.stepwise({"--source", dir.path(), "validate", "--ignore", "public.schema_migrations"});
  EXPECT_EQ(v.exit_code, 0) << v.out << v.err;
}

// --- baseline -----------------------------------------------------------------------------

TEST(AdoptBaseline, EveryFileUpToTheVersionOnAnEmptyLog) {
  REQUIRE_TEST_DATABASE();
  TestDb db;
  MigrationDir dir;
  write_set(dir);
  apply_by_hand(db, 3);
  auto a = db.stepwise({"--source", dir.path(), "adopt", "--baseline", "20240101000005"});
  EXPECT_EQ(a.exit_code, 6) << a.err;
  EXPECT_NE(a.err.find("--baseline 20240101000005: not a migration version"), std::string::npos)
      << a.err;
  a = db.stepwise({"--source", dir.path(), "adopt", "--baseline", "20240101000003"});
  ASSERT_EQ(a.exit_code, 0) << a.out << a.err;
  auto st = states(db, dir);
  EXPECT_EQ(st["20240101000002"], "applied baseline");
  EXPECT_EQ(st["20240101000004"], "pending");
  const auto up = db.stepwise({"--source", dir.path(), "up"});
  EXPECT_EQ(up.exit_code, 0) << up.err;
  EXPECT_NE(up.out.find("applied 1 migration(s)"), std::string::npos) << up.out;
  EXPECT_EQ(db.stepwise({"--source", dir.path(), "validate"}).exit_code, 0);
  a = db.stepwise({"--source", dir.path(), "adopt", "--baseline", "20240101000003"});
  EXPECT_EQ(a.exit_code, 0);
  EXPECT_NE(a.out.find("nothing to adopt"), std::string::npos) << a.out;
}

// --- the log's format 2 -> 3 upgrade ---------------------------------------------------

// The log table exactly as the previous stepwise created it (format 2: version text, no origin).
constexpr const char* kFormat2Ddl = R"(CREATE TABLE public.stepwise_log (
  id bigserial PRIMARY KEY,
  version text NOT NULL CHECK (version ~ '^(0|[1-9][0-9]*)$'),
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
COMMENT ON TABLE public.stepwise_log IS 'stepwise attempt log, format 2';)";

TEST(AdoptLogFormat, FormatTwoLogIsReadAsItIsAndUpgradedOnceUnderTheLock) {
  REQUIRE_TEST_DATABASE();
  TestDb db;
  MigrationDir dir;
  write_set(dir);
  db.query(kFormat2Ddl);
  db.query(kFiles[0].second);
  db.query(
      "INSERT INTO stepwise_log (version, name, direction, outcome, checksum,"
      " checksum_algorithm, host, pid, tool_version, finished_at) VALUES ('20240101000001',"
      " 'create_users', 'up', 'succeeded', encode(sha256(convert_to($f$" +
      kFiles[0].second + "$f$, 'UTF8')), 'hex'), 'sha256', 'old-host', 1, '0.9.1', now())");
  // status and validate read the format-2 log without changing it.
  auto st = states(db, dir);
  EXPECT_EQ(st["20240101000001"], "applied stepwise");
  EXPECT_EQ(db.count("SELECT count(*) FROM information_schema.columns WHERE table_name ="
                     " 'stepwise_log' AND column_name = 'origin'"),
            0);
  // adopt --baseline: upgraded under the lock, old rows keep origin 'stepwise'.
  db.query(kFiles[1].second);
  const auto a = db.stepwise({"--source", dir.path(), "adopt", "--baseline", "20240101000002"});
  ASSERT_EQ(a.exit_code, 0) << a.out << a.err;
  EXPECT_NE(a.out.find("recorded 1 migration(s)"), std::string::npos) << a.out;
  EXPECT_EQ(db.scalar("SELECT obj_description('public.stepwise_log'::regclass, 'pg_class')"),
            "stepwise attempt log, format 3");
  EXPECT_EQ(db.scalar("SELECT string_agg(version || ':' || origin, ',' ORDER BY id) FROM "
                      "stepwise_log"),
            "20240101000001:stepwise,20240101000002:baseline");
  EXPECT_THROW(db.query("UPDATE stepwise_log SET origin = 'someone' WHERE id = 1"), std::exception);
  // A writer that knows nothing of origin (the previous stepwise) still records 'stepwise'.
  db.query(
      "INSERT INTO stepwise_log (version, name, direction, outcome, checksum,"
      " checksum_algorithm, host, pid, tool_version) VALUES ('7', 'x', 'up', 'failed', 'c',"
      " 'sha256', 'old-host', 1, '0.9.1')");
  EXPECT_EQ(db.scalar("SELECT origin FROM stepwise_log WHERE version = '7'"), "stepwise");
  db.query("DELETE FROM stepwise_log WHERE version = '7'");
  // Later runs change the layout no more.
  const auto constraints = db.scalar(
      "SELECT string_agg(conname, ',' ORDER BY conname) FROM pg_constraint WHERE conrelid = "
      "'public.stepwise_log'::regclass");
  const auto up = db.stepwise({"--source", dir.path(), "up"});
  ASSERT_EQ(up.exit_code, 0) << up.err;
  EXPECT_EQ(db.scalar("SELECT string_agg(conname, ',' ORDER BY conname) FROM pg_constraint WHERE "
                      "conrelid = 'public.stepwise_log'::regclass"),
            constraints);
  EXPECT_EQ(db.stepwise({"--source", dir.path(), "validate"}).exit_code, 0);
}

// --- adopt racing up ----------------------------------------------------------------------

TEST(AdoptRace, AdoptAndUpFromTwoProcesses) {
  REQUIRE_TEST_DATABASE();
  for (int round = 0; round < 3; ++round) {
    TestDb db;
    MigrationDir dir;
    write_set(dir);
    apply_by_hand(db, 3);
    db.query(std::string(kDbmate) +
             "INSERT INTO schema_migrations VALUES ('20240101000001'), ('20240101000002'),"
             " ('20240101000003');");
    Process adopt(stepwise_cmd(
        {"--database-url", db.url(), "--source", dir.path(), "adopt", "--from", "dbmate"}));
    Process up(stepwise_cmd({"--database-url", db.url(), "--source", dir.path(), "up"}));
    const auto a = adopt.wait();
    const auto u = up.wait();
    EXPECT_EQ(a.exit_code, 0) << a.err;
    // Either up came second and applied file 4 only, or it came first, found dbmate's history
    // and an empty log, and refused before applying anything.
    if (u.exit_code == 0) {
      EXPECT_NE(u.out.find("applied 1 migration(s)"), std::string::npos) << u.out;
    } else {
      EXPECT_EQ(u.exit_code, 6) << u.err;
      EXPECT_NE(u.err.find("stepwise adopt --from dbmate"), std::string::npos) << u.err;
      EXPECT_EQ(db.stepwise({"--source", dir.path(), "up"}).exit_code, 0);
    }
    EXPECT_EQ(db.count("SELECT count(*) FROM stepwise_log"), 4);
    EXPECT_EQ(db.count("SELECT count(DISTINCT version) FROM stepwise_log"), 4);
    EXPECT_EQ(db.stepwise({"--source", dir.path(), "validate"}).exit_code, 0);
  }
}

TEST(AdoptRace, UpOnAForeignHistoryWithAnEmptyLogRefuses) {
  REQUIRE_TEST_DATABASE();
  TestDb db;
  MigrationDir dir;
  write_set(dir);
  apply_by_hand(db, 3);
  db.query(std::string(kDbmate) + "INSERT INTO schema_migrations VALUES ('20240101000003');");
  auto u = db.stepwise({"--source", dir.path(), "up"});
  EXPECT_EQ(u.exit_code, 6) << u.err;
  EXPECT_NE(u.err.find("public.schema_migrations"), std::string::npos) << u.err;
  EXPECT_EQ(db.scalar("SELECT to_regclass('public.stepwise_log') IS NULL"), "t");
  // An empty table of that name (another tool's leftovers) does not count.
  db.query("DELETE FROM schema_migrations");
  db.query("DROP TABLE orders; DROP TABLE users");
  u = db.stepwise({"--source", dir.path(), "up"});
  EXPECT_EQ(u.exit_code, 0) << u.err;
}

// --- the real tool, where this machine has it ---------------------------------------------

// The npm tools scripts/install-peer-tools.sh installs (scripts/test.sh runs it first): the
// path in STEPWISE_TEST_<TOOL>, else in $STEPWISE_PEER_TOOLS or /opt/stepwise-peer-tools
// (node_modules/.bin). Missing: the test skips, unless STEPWISE_REQUIRE_PEER_TOOLS=1.
std::string peer_tool(const char* env, const char* bin) {
  if (const char* e = std::getenv(env); e != nullptr && *e != '\0')
    return ::access(e, X_OK) == 0 ? std::string(e) : std::string();
  const char* dir = std::getenv("STEPWISE_PEER_TOOLS");
  const auto path = std::string(dir != nullptr && *dir != '\0' ? dir : "/opt/stepwise-peer-tools") +
                    "/node_modules/.bin/" + bin;
  return ::access(path.c_str(), X_OK) == 0 ? path : std::string();
}

#define REQUIRE_PEER_TOOL(var, env, bin)                                                        \
  const auto var = peer_tool(env, bin);                                                         \
  if (var.empty()) {                                                                            \
    if (const char* r = std::getenv("STEPWISE_REQUIRE_PEER_TOOLS"); r && std::string(r) == "1") \
      FAIL() << bin << " not found (" << env << ", scripts/install-peer-tools.sh)";             \
    GTEST_SKIP() << bin << " not found: run scripts/install-peer-tools.sh";                     \
  }

// postgres://user:password@host:port/database?... -> its parts (for postgrator's options).
struct UrlParts {
  std::string user, password, host, port = "5432", database;
};
UrlParts url_parts(const std::string& url) {
  UrlParts p;
  auto rest = url.substr(url.find("://") + 3);
  rest = rest.substr(0, rest.find('?'));
  if (const auto at = rest.rfind('@'); at != std::string::npos) {
    const auto cred = rest.substr(0, at);
    p.user = cred.substr(0, cred.find(':'));
    if (cred.find(':') != std::string::npos) p.password = cred.substr(cred.find(':') + 1);
    rest = rest.substr(at + 1);
  }
  const auto slash = rest.find('/');
  p.database = slash == std::string::npos ? "" : rest.substr(slash + 1);
  const auto hostport = rest.substr(0, slash);
  p.host = hostport.substr(0, hostport.rfind(':'));
  if (hostport.rfind(':') != std::string::npos) p.port = hostport.substr(hostport.rfind(':') + 1);
  return p;
}

// The steps every real-tool test shares once the tool has applied files 1..3 and `set` holds
// the imported files plus file 4: up refuses over the foreign history, adopt records 3, up
// applies file 4 only, validate passes, and the tool's table is unchanged.
void stepwise_takes_over(const TestDb& db, const std::string& set, const std::string& tool,
                         const std::string& table_dump) {
  const auto before = db.query(table_dump);
  auto r = db.stepwise({"--source", set, "up"});
  EXPECT_EQ(r.exit_code, 6) << r.out << r.err;  // an empty log over the tool's history
  EXPECT_NE(r.err.find("stepwise adopt --from " + tool), std::string::npos) << r.err;
  EXPECT_EQ(db.scalar("SELECT to_regclass('public.stepwise_log') IS NULL"), "t");
  r = db.stepwise({"--source", set, "adopt", "--from", tool});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("recorded 3 migration(s) from " + tool), std::string::npos) << r.out;
  r = db.stepwise({"--source", set, "up"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("applied 1 migration(s)"), std::string::npos) << r.out;
  EXPECT_EQ(db.count("SELECT count(*) FROM pg_indexes WHERE indexname = 'orders_user'"), 1);
  r = db.stepwise({"--source", set, "validate"});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(db.query(table_dump), before) << tool << "'s table changed";
}

void add_file_four(const std::string& set) {
  std::ofstream w(set + "/" + kFiles[3].first);
  w << kFiles[3].second;
}

// dbmate (npm): applies its own single-file migrations; stepwise imports the folder, adopts.
TEST(AdoptRealTools, DbmateAppliesThenStepwiseTakesOver) {
  REQUIRE_TEST_DATABASE();
  REQUIRE_PEER_TOOL(dbmate, "STEPWISE_TEST_DBMATE", "dbmate");
  TestDb db;
  MigrationDir tool, dir;
  // dbmate's layout: one file per migration, -- migrate:up / -- migrate:down.
  for (std::size_t i = 0; i < 3; ++i) {
    const auto& [name, sql] = kFiles[i];
    tool.write(name.substr(0, name.size() - 7) + ".sql",
               "-- migrate:up\n" + sql + "\n-- migrate:down\nSELECT 1;\n");
  }
  // stepwise import turns dbmate's folder into stepwise files; file 4 is new on top.
  const auto imported = dir.path() + "/set";
  const auto im = db.stepwise({"import", "--from", "dbmate", tool.path(), imported});
  ASSERT_EQ(im.exit_code, 0) << im.out << im.err;
  EXPECT_NE(im.out.find("imported 3 migration(s) (6 file(s))"), std::string::npos) << im.out;
  add_file_four(imported);
  const auto url =
      db.url() + (db.url().find('?') == std::string::npos ? "?" : "&") + "sslmode=disable";
  const auto d =
      run({dbmate, "--url", url, "--migrations-dir", tool.path(), "--no-dump-schema", "up"});
  ASSERT_EQ(d.exit_code, 0) << d.out << d.err;
  ASSERT_EQ(db.count("SELECT count(*) FROM schema_migrations"), 3);
  stepwise_takes_over(db, imported, "dbmate", "SELECT version FROM schema_migrations ORDER BY 1");
  const auto st =
      run({dbmate, "--url", url, "--migrations-dir", tool.path(), "--no-dump-schema", "status"});
  EXPECT_NE(st.out.find("Applied: 3"), std::string::npos) << st.out << st.err;
  EXPECT_NE(st.out.find("Pending: 0"), std::string::npos) << st.out << st.err;
}

// node-pg-migrate (npm), SQL migrations: `-- Up Migration` / `-- Down Migration` sections in
// <timestamp>_<name>.sql; its table pgmigrations names each file without the extension.
TEST(AdoptRealTools, NodePgMigrateAppliesThenStepwiseTakesOver) {
  REQUIRE_TEST_DATABASE();
  REQUIRE_PEER_TOOL(npm, "STEPWISE_TEST_NODE_PG_MIGRATE", "node-pg-migrate");
  TestDb db;
  MigrationDir tool, dir;
  for (std::size_t i = 0; i < 3; ++i) {
    const auto& [name, sql] = kFiles[i];
    tool.write(name.substr(0, name.size() - 7) + ".sql",
               "-- Up Migration\n" + sql + "\n-- Down Migration\nSELECT 1;\n");
  }
  const auto set = dir.path() + "/set";
  const auto im = db.stepwise({"import", "--from", "node-pg-migrate", tool.path(), set});
  ASSERT_EQ(im.exit_code, 0) << im.out << im.err;
  EXPECT_NE(im.out.find("imported 3 migration(s) (6 file(s))"), std::string::npos) << im.out;
  add_file_four(set);
  const std::map<std::string, std::string> env{{"DATABASE_URL", db.url()}};
  const auto n = run({npm, "up", "-m", tool.path(), "--migration-file-language", "sql"}, env);
  ASSERT_EQ(n.exit_code, 0) << n.out << n.err;
  ASSERT_EQ(db.count("SELECT count(*) FROM pgmigrations"), 3);
  stepwise_takes_over(db, set, "node-pg-migrate",
                      "SELECT id, name, run_on FROM pgmigrations ORDER BY 1");
  // node-pg-migrate has no status command; a dry run says what it would run: nothing.
  const auto st = run({npm, "up", "-m", tool.path(), "--dry-run"}, env);
  EXPECT_EQ(st.exit_code, 0) << st.out << st.err;
  EXPECT_NE(st.out.find("No migrations to run!"), std::string::npos) << st.out << st.err;
}

// postgrator (postgrator-cli, npm): <version>.do.<name>.sql / .undo. files; its table
// schemaversion(version, name, md5, run_at) with version 0 as its own first row.
TEST(AdoptRealTools, PostgratorAppliesThenStepwiseTakesOver) {
  REQUIRE_TEST_DATABASE();
  REQUIRE_PEER_TOOL(postgrator, "STEPWISE_TEST_POSTGRATOR", "postgrator");
  TestDb db;
  MigrationDir tool, dir;
  for (std::size_t i = 0; i < 3; ++i) {
    const auto& [name, sql] = kFiles[i];
    const auto us = name.find('_');
    const auto stem = name.substr(0, us) + ".do." + name.substr(us + 1, name.size() - 7 - us - 1);
    tool.write(stem + ".sql", sql);
    tool.write(
        name.substr(0, us) + ".undo." + name.substr(us + 1, name.size() - 7 - us - 1) + ".sql",
        "SELECT 1;\n");
  }
  const auto set = dir.path() + "/set";
  const auto im = db.stepwise({"import", "--from", "postgrator", tool.path(), set});
  ASSERT_EQ(im.exit_code, 0) << im.out << im.err;
  EXPECT_NE(im.out.find("imported 3 migration(s) (6 file(s))"), std::string::npos) << im.out;
  add_file_four(set);
  const auto u = url_parts(db.url());
  const std::vector<std::string> cmd{
      postgrator, "--no-config", "-r", "pg",   "-h", u.host,     "-o", u.port,
      "-d",       u.database,    "-u", u.user, "-p", u.password, "-m", tool.path() + "/*"};
  const auto p = run(cmd);
  ASSERT_EQ(p.exit_code, 0) << p.out << p.err;
  ASSERT_EQ(db.count("SELECT count(*) FROM schemaversion WHERE version > 0"), 3);
  stepwise_takes_over(db, set, "postgrator",
                      "SELECT version, name, md5, run_at FROM schemaversion ORDER BY 1");
  // postgrator run again: it checks the md5 of what it ran and finds nothing to do.
  const auto again = run(cmd);
  EXPECT_EQ(again.exit_code, 0) << again.out << again.err;
  EXPECT_NE(again.out.find("verifying checksum"), std::string::npos) << again.out;
  EXPECT_EQ(again.out.find("running"), std::string::npos) << again.out;
}

// graphile-migrate (npm): committed migrations migrations/committed/000001.sql with a
// `--! Previous:` / `--! Hash:` header chain; history in graphile_migrate.migrations.
std::string sha1_hex(const std::string& s) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EXPECT_EQ(EVP_Digest(s.data(), s.size(), md, &len, EVP_sha1(), nullptr), 1);
  std::string out;
  for (unsigned int i = 0; i < len; ++i) out += fmt::format("{:02x}", md[i]);
  return out;
}

TEST(AdoptRealTools, GraphileMigrateAppliesThenStepwiseTakesOver) {
  REQUIRE_TEST_DATABASE();
  REQUIRE_PEER_TOOL(gm, "STEPWISE_TEST_GRAPHILE_MIGRATE", "graphile-migrate");
  TestDb db;
  MigrationDir project, dir;
  std::filesystem::create_directories(project.path() + "/migrations/committed");
  // Its versions are 1, 2, 3: stepwise's file 4 is 000004.
  std::string previous;
  for (std::size_t i = 0; i < 3; ++i) {
    const auto body = kFiles[i].second;  // ends with one newline, as graphile-migrate writes it
    // graphile-migrate's hash: sha1 of (previous hash + "\n" + body).trim() + "\n".
    auto chained = previous + "\n" + body.substr(0, body.size() - 1);
    chained.erase(0, chained.find_first_not_of('\n'));
    const auto hash = "sha1:" + sha1_hex(chained + "\n");
    project.write(fmt::format("migrations/committed/{:06}.sql", i + 1),
                  fmt::format("--! Previous: {}\n--! Hash: {}\n\n{}",
                              previous.empty() ? "-" : previous, hash, body));
    previous = hash;
  }
  project.write("migrations/current.sql", "-- Enter migration here\n");
  const auto shadow = db.url().substr(0, db.url().rfind('/') + 1) + db.name() + "_shadow";
  project.write(".gmrc",
                fmt::format(R"({{"connectionString": "{}", "shadowConnectionString": "{}"}})",
                            db.url(), shadow));
  const auto set = dir.path() + "/set";
  const auto im =
      db.stepwise({"import", "--from", "graphile-migrate", project.path() + "/migrations", set});
  ASSERT_EQ(im.exit_code, 0) << im.out << im.err;
  EXPECT_NE(im.out.find("imported 3 migration(s) (3 file(s))"), std::string::npos) << im.out;
  {
    std::ofstream w(set + "/000004_add_index.up.sql");
    w << kFiles[3].second;
  }
  const auto g = run({"/usr/bin/env", "-C", project.path(), gm, "migrate"});
  ASSERT_EQ(g.exit_code, 0) << g.out << g.err;
  ASSERT_EQ(db.count("SELECT count(*) FROM graphile_migrate.migrations"), 3);
  stepwise_takes_over(db, set, "graphile-migrate",
                      "SELECT hash, previous_hash, filename, date FROM graphile_migrate.migrations "
                      "ORDER BY filename");
  const auto st = run({"/usr/bin/env", "-C", project.path(), gm, "status"});
  EXPECT_EQ(st.exit_code, 0) << st.out << st.err;  // 1: committed migrations pending
  EXPECT_NE(st.out.find("Up to date."), std::string::npos) << st.out << st.err;
}

// sqitch (Debian's package): deploys two changes of a project with its own registry; stepwise
// imports the folder (plan order, deploy/revert without their BEGIN/COMMIT), refuses to start
// over sqitch's history, adopts it by change name, and runs only the change sqitch had not.
TEST(AdoptRealTools, SqitchDeploysThenStepwiseTakesOver) {
  REQUIRE_TEST_DATABASE();
  const std::string sqitch = "/usr/bin/sqitch";
  if (::access(sqitch.c_str(), X_OK) != 0) {
    if (const char* r = std::getenv("STEPWISE_REQUIRE_DB"); r && std::string(r) == "1")
      FAIL() << "sqitch is not installed (run scripts/install-deps.sh)";
    GTEST_SKIP() << "sqitch is not installed";
  }
  TestDb db;
  MigrationDir project, dir;
  project.write("sqitch.conf", "[core]\n\tengine = pg\n");
  const std::string head =
      "%syntax-version=1.0.0\n%project=flipr\n\n"
      "appschema 2024-01-01T00:00:00Z Ann <ann@example.com> # the schema\n"
      "users [appschema] 2024-01-02T00:00:00Z Ann <ann@example.com> # users\n"
      "@v1.0 2024-01-03T00:00:00Z Ann <ann@example.com> # release 1.0\n";
  project.write("sqitch.plan", head);
  std::filesystem::create_directories(project.path() + "/deploy");
  std::filesystem::create_directories(project.path() + "/revert");
  project.write("deploy/appschema.sql",
                "-- Deploy flipr:appschema to pg\n\nBEGIN;\n\nCREATE SCHEMA flipr;\n\nCOMMIT;\n");
  project.write("revert/appschema.sql", "BEGIN;\nDROP SCHEMA flipr;\nCOMMIT;\n");
  project.write("deploy/users.sql",
                "BEGIN;\nCREATE TABLE flipr.users (id int PRIMARY KEY);\nCOMMIT;\n");
  project.write("revert/users.sql", "BEGIN;\nDROP TABLE flipr.users;\nCOMMIT;\n");
  auto target = "db:" + db.url();
  target.replace(target.find("postgres://"), 11, "pg://");
  const std::map<std::string, std::string> env{{"SQITCH_FULLNAME", "stepwise test"},
                                               {"SQITCH_EMAIL", "test@example.com"}};
  const auto deployed = run({sqitch, "--chdir", project.path(), "deploy", target}, env);
  ASSERT_EQ(deployed.exit_code, 0) << deployed.out << deployed.err;
  ASSERT_EQ(db.count("SELECT count(*) FROM sqitch.changes"), 2);
  // The project moves on: a third change sqitch never deployed.
  project.write("sqitch.plan",
                head + "orders [users] 2024-02-01T00:00:00Z Ann <ann@example.com> # orders\n");
  project.write("deploy/orders.sql",
                "BEGIN;\nCREATE TABLE flipr.orders (id int, user_id int REFERENCES flipr.users);\n"
                "COMMIT;\n");
  project.write("revert/orders.sql", "BEGIN;\nDROP TABLE flipr.orders;\nCOMMIT;\n");
  const auto set = dir.path() + "/set";
  const auto im = db.stepwise({"import", "--from", "sqitch", project.path(), set});
  ASSERT_EQ(im.exit_code, 0) << im.out << im.err;
  EXPECT_NE(im.out.find("imported 3 migration(s) (6 file(s))"), std::string::npos) << im.out;
  auto r = db.stepwise({"--source", set, "up"});
  EXPECT_EQ(r.exit_code, 6) << r.err;  // an empty log over sqitch's registry
  r = db.stepwise({"--source", set, "adopt", "--from", "sqitch"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("recorded 2 migration(s)"), std::string::npos) << r.out;
  r = db.stepwise({"--source", set, "up"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("applied 1 migration(s)"), std::string::npos) << r.out;
  EXPECT_EQ(db.scalar("SELECT to_regclass('flipr.orders') IS NOT NULL"), "t");
  EXPECT_EQ(db.stepwise({"--source", set, "validate"}).exit_code, 0);
  EXPECT_EQ(db.count("SELECT count(*) FROM sqitch.changes"), 2);  // sqitch's registry untouched
  // The converted down files run: back to the schema alone.
  r = db.stepwise({"--source", set, "migrate-to", "1"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(db.scalar("SELECT to_regclass('flipr.users') IS NULL"), "t");
}

}  // namespace
}  // namespace stepwise::test
