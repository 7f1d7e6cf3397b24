// The pure part of `stepwise adopt`: mapping the other tool's entries to files, and the checks
// against stepwise's own log (no database).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "stepwise/adopt.hpp"
#include "stepwise/errors.hpp"

namespace stepwise {
namespace {

MigrationFile file(std::string name, std::string bytes) {
  MigrationFile f;
  f.name = std::move(name);
  f.bytes = std::move(bytes);
  return f;
}

MigrationSet four() {
  return build_migration_set(
      std::vector<MigrationFile>{file("10_create_users.up.sql", "CREATE TABLE u (id int);"),
                                 file("20_add_email.up.sql", "ALTER TABLE u ADD e text;"),
                                 file("30_create_orders.up.sql", "CREATE TABLE o (id int);"),
                                 file("40_add_index.up.sql", "CREATE INDEX i ON o (id);")});
}

ForeignHistory history(Tool tool, std::vector<std::string> ids) {
  ForeignHistory h;
  h.tool = tool;
  h.table = default_history_table(tool);
  for (auto& id : ids) h.applied.push_back({std::move(id), "", std::nullopt, false, ""});
  return h;
}

std::vector<Version> recorded(const AdoptPlan& p) {
  std::vector<Version> out;
  for (const auto& s : p.record) out.push_back(s.migration->version);
  return out;
}

Attempt applied(const MigrationSet& set, Version v, long long id, Direction d = Direction::kUp,
                Outcome o = Outcome::kSucceeded) {
  Attempt a;
  a.id = id;
  a.version = v;
  a.direction = d;
  a.outcome = o;
  a.checksum = set.find(v)->up.checksum;
  return a;
}

std::string refusal(const std::function<void()>& f) {
  try {
    f();
  } catch (const PlanRefused& e) {
    return e.what();
  }
  return "(not refused)";
}

TEST(AdoptPlan, ByVersionInVersionOrder) {
  const auto set = four();
  const auto p =
      plan_adoption(set, history(Tool::kDbmate, {"0030", "10", "20"}), {}, History(), false);
  EXPECT_EQ(recorded(p), (std::vector<Version>{10, 20, 30}));
  EXPECT_EQ(p.version_after, 30);
  EXPECT_TRUE(p.left_pending.empty());
}

TEST(AdoptPlan, GolangMigrateOneRowMeansEverythingUpToIt) {
  const auto set = four();
  auto h = history(Tool::kGolangMigrate, {"30"});
  h.applied[0].up_to = true;
  const auto p = plan_adoption(set, h, {}, History(), false);
  EXPECT_EQ(recorded(p), (std::vector<Version>{10, 20, 30}));
  h.applied[0].problem = "dirty";
  EXPECT_NE(refusal([&] { (void)plan_adoption(set, h, {}, History(), false); }).find("30 is dirty"),
            std::string::npos);
}

TEST(AdoptPlan, SqitchByNameAndNodePgMigrateByLeadingNumber) {
  const auto set = four();
  EXPECT_EQ(recorded(plan_adoption(set, history(Tool::kSqitch, {"create_users", "add_email"}), {},
                                   History(), false)),
            (std::vector<Version>{10, 20}));
  EXPECT_EQ(recorded(plan_adoption(set, history(Tool::kNodePgMigrate, {"10_x", "add_email"}), {},
                                   History(), false)),
            (std::vector<Version>{10, 20}));
}

TEST(AdoptPlan, UnmappedEntriesAreNamedAndTheMappingMapsOrLeavesOut) {
  const auto set = four();
  const auto h = history(Tool::kFlyway, {"1.0", "1.1", "30", "R__x"});
  EXPECT_NE(refusal([&] {
              (void)plan_adoption(set, h, {}, History(), false);
            }).find("3 entries match no file of this set: 1.0, 1.1, R__x"),
            std::string::npos);
  const auto m = parse_mapping("# comment\n1.0=10\n 1.1 = 0020 \n\nR__x=-\n", "map.txt");
  const auto p = plan_adoption(set, h, m, History(), false);
  EXPECT_EQ(recorded(p), (std::vector<Version>{10, 20, 30}));
  ASSERT_EQ(p.warnings.size(), 1u);
  EXPECT_NE(p.warnings[0].find("R__x"), std::string::npos);
  EXPECT_NE(refusal([&] {
              (void)plan_adoption(set, h, parse_mapping("1.0=99\n", "m"), History(), false);
            }).find("version 99, which is not a migration"),
            std::string::npos);
}

TEST(AdoptPlan, MappingFileErrorsNameTheLine) {
  EXPECT_THROW((void)parse_mapping("a=1\nb\n", "m.txt"), UsageError);
  try {
    (void)parse_mapping("a=1\na=2\n", "m.txt");
    FAIL();
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find(":2: "), std::string::npos) << e.what();
  }
  EXPECT_THROW((void)parse_mapping("a=x1\n", "m.txt"), UsageError);
}

TEST(AdoptPlan, GapsRefuseUnlessAllowedAndThenStayPending) {
  const auto set = four();
  const auto h = history(Tool::kDbmate, {"10", "30"});
  EXPECT_NE(refusal([&] {
              (void)plan_adoption(set, h, {}, History(), false);
            }).find("never applied 20_add_email.up.sql"),
            std::string::npos);
  const auto p = plan_adoption(set, h, {}, History(), true);
  EXPECT_EQ(recorded(p), (std::vector<Version>{10, 30}));
  EXPECT_EQ(p.left_pending, (std::vector<Version>{20}));
}

TEST(AdoptPlan, SecondAdoptionRecordsNothing) {
  const auto set = four();
  const History log({applied(set, 10, 1), applied(set, 20, 2), applied(set, 40, 3)});
  const auto p = plan_adoption(set, history(Tool::kDbmate, {"10", "20"}), {}, log, false);
  EXPECT_TRUE(p.record.empty());
  EXPECT_EQ(p.already, (std::vector<Version>{10, 20}));
  EXPECT_EQ(p.version_after, 40);
}

TEST(AdoptPlan, DisagreeingLogRefuses) {
  const auto set = four();
  // stepwise applied 20 itself; the other tool claims 10 and 30.
  EXPECT_NE(refusal([&] {
              (void)plan_adoption(set, history(Tool::kDbmate, {"10", "30"}), {},
                                  History({applied(set, 20, 1)}), false);
            }).find("version(s) 20 applied"),
            std::string::npos);
  // stepwise's latest attempt of 20 failed.
  EXPECT_NE(refusal([&] {
              (void)plan_adoption(set, history(Tool::kDbmate, {"10", "20"}), {},
                                  History({applied(set, 20, 1, Direction::kUp, Outcome::kFailed)}),
                                  false);
            }).find("failed or unfinished attempt of 20_add_email.up.sql"),
            std::string::npos);
  // stepwise rolled 20 back.
  EXPECT_NE(refusal([&] {
              (void)plan_adoption(
                  set, history(Tool::kDbmate, {"10", "20"}), {},
                  History({applied(set, 20, 1), applied(set, 20, 2, Direction::kDown)}), false);
            }).find("rolled back"),
            std::string::npos);
}

TEST(AdoptPlan, BaselineUpToAVersionOfTheSet) {
  const auto set = four();
  EXPECT_EQ(recorded(plan_baseline(set, "030", History())), (std::vector<Version>{10, 20, 30}));
  EXPECT_NE(refusal([&] {
              (void)plan_baseline(set, "35", History());
            }).find("--baseline 35: not a migration version of this set"),
            std::string::npos);
  EXPECT_NE(refusal([&] { (void)plan_baseline(set, "x", History()); }).find("not a migration"),
            std::string::npos);
}

TEST(AdoptPlan, GraphileMigrateByTheNumberOfItsFileName) {
  const auto set = four();
  const auto p = plan_adoption(set, history(Tool::kGraphileMigrate, {"000010.sql", "000020.sql"}),
                               {}, History{}, false);
  EXPECT_EQ(recorded(p), (std::vector<Version>{Version(10), Version(20)}));
  EXPECT_NE(refusal([&] {
              (void)plan_adoption(set, history(Tool::kGraphileMigrate, {"000011.sql"}), {},
                                  History{}, false);
            }).find("000011.sql"),
            std::string::npos);
}

// Item 3: which expected schema an adoption at a version is verified against.
TEST(AdoptPlan, ExpectedSchemaForAVersionAReleaseOrNone) {
  const std::map<Version, std::string> expected{{Version(20), "{20}"}, {Version(40), "{40}"}};
  const Releases releases({{"1.0", Version(20), Version(10)}, {"1.1", Version(40), Version(20)}});
  auto e = expected_schema_for(expected, releases, Version(20));
  ASSERT_NE(e.json, nullptr);
  EXPECT_EQ(*e.json, "{20}");
  EXPECT_EQ(e.release, "1.0");
  e = expected_schema_for(expected, releases, Version(30));  // strictly between 1.0 and 1.1
  EXPECT_EQ(e.json, nullptr);
  EXPECT_TRUE(e.refuse);
  EXPECT_NE(e.why_not.find("version 30 lies between release 1.0 (schema 20) and release 1.1 "
                           "(schema 40): no expected schema applies"),
            std::string::npos)
      << e.why_not;
  e = expected_schema_for(expected, releases, Version(10));
  EXPECT_TRUE(e.refuse);
  EXPECT_NE(e.why_not.find("lies before release 1.0"), std::string::npos) << e.why_not;
  // A release whose expected file is missing: named.
  e = expected_schema_for({{Version(40), "{40}"}}, releases, Version(20));
  EXPECT_TRUE(e.refuse);
  EXPECT_NE(e.why_not.find("schema of release 1.0, but the set has no expected/20.json"),
            std::string::npos)
      << e.why_not;
  // No expected schema at all: nothing could be verified, so no refusal, one warning.
  e = expected_schema_for({}, releases, Version(30));
  EXPECT_FALSE(e.refuse);
  EXPECT_NE(e.why_not.find("no expected schema recorded for version 30"), std::string::npos);
  // Without releases.json, a version that has no file among others refuses too.
  e = expected_schema_for(expected, Releases{}, Version(30));
  EXPECT_TRUE(e.refuse);
  EXPECT_NE(e.why_not.find("the set has them for 20, 40"), std::string::npos) << e.why_not;
}

TEST(AdoptPlan, ToolNames) {
  EXPECT_EQ(parse_tool("graphile-migrate"), Tool::kGraphileMigrate);
  EXPECT_EQ(default_history_table(Tool::kGraphileMigrate).display(), "graphile_migrate.migrations");
  EXPECT_EQ(parse_tool("migrate"), Tool::kGolangMigrate);
  EXPECT_EQ(parse_tool("node-pg-migrate"), Tool::kNodePgMigrate);
  EXPECT_FALSE(parse_tool("liquibase"));
  EXPECT_EQ(default_history_table(Tool::kSqitch).display(), "sqitch.changes");
}

}  // namespace
}  // namespace stepwise

namespace stepwise {
namespace {

MigrationFile raw(std::string name, std::string bytes) {
  MigrationFile f;
  f.name = std::move(name);
  f.bytes = std::move(bytes);
  return f;
}

TEST(ImportFolder, DbmateSplitsUpAndDownAndKeepsTransactionFalse) {
  std::vector<std::string> skipped;
  const auto out = import_folder(
      Tool::kDbmate,
      {raw("20240101_a.sql",
           "-- migrate:up\nCREATE TABLE a (id int);\n\n-- migrate:down\nDROP "
           "TABLE a;\n"),
       raw("20240102_idx.sql",
           "-- migrate:up transaction:false\nCREATE INDEX CONCURRENTLY i ON a (id);\n"),
       raw("README.md", "x")},
      &skipped);
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0].name, "20240101_a.up.sql");
  EXPECT_EQ(out[0].bytes, "CREATE TABLE a (id int);\n\n");
  EXPECT_EQ(out[1].name, "20240101_a.down.sql");
  EXPECT_EQ(out[1].bytes, "DROP TABLE a;\n");
  EXPECT_EQ(out[2].name, "20240102_idx.up.sql");
  EXPECT_EQ(out[2].bytes, "-- stepwise:no-transaction\nCREATE INDEX CONCURRENTLY i ON a (id);\n");
  EXPECT_EQ(skipped, (std::vector<std::string>{"README.md"}));
  EXPECT_EQ(build_migration_set(out).size(), 2u);
  EXPECT_THROW((void)import_folder(Tool::kDbmate, {raw("1_a.sql", "CREATE TABLE a ();")}, nullptr),
               SourceError);
}

TEST(ImportFolder, FlywayVersionedUndoAndWhatItRefuses) {
  const auto out =
      import_folder(Tool::kFlyway, {raw("V2__add_b.sql", "B"), raw("U2__add_b.sql", "b")}, nullptr);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].name, "2_add_b.up.sql");
  EXPECT_EQ(out[1].name, "2_add_b.down.sql");
  try {
    (void)import_folder(Tool::kFlyway,
                        {raw("R__views.sql", ""), raw("V1.2__x.sql", ""), raw("V3__Job.java", "")},
                        nullptr);
    FAIL();
  } catch (const SourceError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("R__views.sql"), std::string::npos) << what;
    EXPECT_NE(what.find("V1.2__x.sql"), std::string::npos) << what;
    EXPECT_NE(what.find("V3__Job.java\": a code migration"), std::string::npos) << what;
  }
  EXPECT_THROW((void)import_folder(Tool::kSqitch, {}, nullptr), SourceError);  // no sqitch.plan
}

TEST(ImportFolder, GooseSqlFilesConvert) {
  const auto out = import_folder(
      Tool::kGoose,
      {raw("00001_users.sql",
           "-- a comment before the annotation\n-- +goose Up\nCREATE TABLE u (id int);\n"
           "-- +goose StatementBegin\nCREATE FUNCTION f() RETURNS int AS $$ SELECT 1; $$ "
           "LANGUAGE sql;\n-- +goose StatementEnd\n\n-- +goose Down\nDROP FUNCTION f();\n"
           "DROP TABLE u;\n"),
       raw("20240102150405_idx.sql",
           "-- +goose NO TRANSACTION\n-- +goose up\nCREATE INDEX CONCURRENTLY i ON u (id);\n"
           "-- +goose down\n\n")},
      nullptr);
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0].name, "00001_users.up.sql");
  EXPECT_EQ(out[0].bytes,
            "CREATE TABLE u (id int);\nCREATE FUNCTION f() RETURNS int AS $$ SELECT 1; $$ "
            "LANGUAGE sql;\n\n");
  EXPECT_EQ(out[1].name, "00001_users.down.sql");
  EXPECT_EQ(out[1].bytes, "DROP FUNCTION f();\nDROP TABLE u;\n");
  EXPECT_EQ(out[2].name, "20240102150405_idx.up.sql");
  EXPECT_EQ(out[2].bytes, "-- stepwise:no-transaction\nCREATE INDEX CONCURRENTLY i ON u (id);\n");
  EXPECT_EQ(build_migration_set(out).size(), 2u);
}

TEST(ImportFolder, NodePgMigrateSqlFilesSplitAtTheirMarkers) {
  const auto out = import_folder(
      Tool::kNodePgMigrate,
      {raw("1700000000000_init.sql",
           "-- Up Migration\nCREATE TABLE a (id int);\n-- Down Migration\nDROP TABLE a;\n"),
       raw("1700000000001_b.sql", "  --- up   MIGRATION\nCREATE TABLE b ();\n"),
       raw("1700000000002_c.sql", "CREATE TABLE c ();\n")},
      nullptr);
  ASSERT_EQ(out.size(), 4u);
  EXPECT_EQ(out[0].name, "1700000000000_init.up.sql");
  EXPECT_EQ(out[0].bytes, "CREATE TABLE a (id int);\n");
  EXPECT_EQ(out[1].name, "1700000000000_init.down.sql");
  EXPECT_EQ(out[1].bytes, "DROP TABLE a;\n");
  EXPECT_EQ(out[2].bytes, "CREATE TABLE b ();\n");
  EXPECT_EQ(out[3].name, "1700000000002_c.up.sql");
  EXPECT_EQ(out[3].bytes, "CREATE TABLE c ();\n");
  EXPECT_EQ(build_migration_set(out).size(), 3u);
  try {
    (void)import_folder(Tool::kNodePgMigrate,
                        {raw("1_x.sql", "-- Down Migration\nDROP TABLE x;\n"),
                         raw("2_y.js", "exports.up = () => {}"), raw("init.sql", "")},
                        nullptr);
    FAIL();
  } catch (const SourceError& e) {
    const std::string what = e.what();
    for (const char* f : {"1_x.sql\": a `-- Down Migration` section", "2_y.js\": a code migration",
                          "init.sql\": not a node-pg-migrate migration name"})
      EXPECT_NE(what.find(f), std::string::npos) << f << "\n" << what;
  }
}

TEST(ImportFolder, GraphileMigrateCommittedFilesWithoutTheirHeaders) {
  std::vector<std::string> skipped;
  const auto out =
      import_folder(Tool::kGraphileMigrate,
                    {raw("000001.sql",
                         "--! Previous: -\n--! Hash: sha1:aa\n--! Message: Create users!\n\n"
                         "CREATE TABLE u ();\n\n"),
                     raw("000002-add-email.sql",
                         "--! Previous: sha1:aa\n--! Hash: sha1:bb\n\n--! no-transaction\n"
                         "CREATE INDEX CONCURRENTLY i ON u (id);\n"),
                     raw("current.sql", "-- Enter migration here\n")},
                    &skipped);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].name, "000001_create_users.up.sql");
  EXPECT_EQ(out[0].bytes, "CREATE TABLE u ();\n");
  EXPECT_EQ(out[1].name, "000002_add-email.up.sql");
  EXPECT_EQ(out[1].bytes, "-- stepwise:no-transaction\nCREATE INDEX CONCURRENTLY i ON u (id);\n");
  EXPECT_EQ(skipped, std::vector<std::string>{"current.sql"});
  const auto set = build_migration_set(out);
  ASSERT_EQ(set.size(), 2u);
  EXPECT_NE(set.all()[1].up.tx, TxMode::kTransaction);
  const auto refused = [](std::string name, std::string bytes) {
    try {
      (void)import_folder(Tool::kGraphileMigrate, {raw(std::move(name), std::move(bytes))},
                          nullptr);
    } catch (const SourceError& e) {
      return std::string(e.what());
    }
    return std::string("(not refused)");
  };
  EXPECT_NE(refused("000003.sql",
                    "--! Previous: -\n--! Hash: sha1:cc\n\nGRANT ALL ON "
                    "DATABASE :DATABASE_NAME TO app;\n")
                .find("000003.sql\": uses the placeholder :DATABASE_NAME"),
            std::string::npos);
  EXPECT_NE(refused("000004.sql", "CREATE TABLE x ();\n").find("000004.sql\": no `--! Hash:`"),
            std::string::npos);
  EXPECT_NE(refused("v4.sql", "").find("v4.sql\": not a graphile-migrate committed migration name"),
            std::string::npos);
}

TEST(ImportFolder, PostgratorDoAndUndo) {
  const auto out = import_folder(
      Tool::kPostgrator,
      {raw("001.do.create_users.sql", "CREATE TABLE u ();"),
       raw("001.undo.create_users.sql", "DROP TABLE u;"), raw("002.do.sql", "CREATE TABLE v ();")},
      nullptr);
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0].name, "001_create_users.up.sql");
  EXPECT_EQ(out[1].name, "001_create_users.down.sql");
  EXPECT_EQ(out[1].bytes, "DROP TABLE u;");
  EXPECT_EQ(out[2].name, "002_migration.up.sql");
  EXPECT_EQ(build_migration_set(out).size(), 2u);
  EXPECT_THROW((void)import_folder(Tool::kPostgrator, {raw("001.redo.x.sql", "")}, nullptr),
               SourceError);
}

TEST(ImportFolder, SqitchPlanOrderDeployRevertWithoutTheirTransaction) {
  std::vector<std::string> skipped;
  const auto out = import_folder(
      Tool::kSqitch,
      {raw("sqitch.plan",
           "%syntax-version=1.0.0\n%project=flipr\n\nappschema 2024-01-01T00:00:00Z A <a@x> # "
           "schema\nusers [appschema] 2024-01-02T00:00:00Z A <a@x> # users\n@v1.0 "
           "2024-01-03T00:00:00Z A <a@x> # tag\n"),
       raw("deploy/appschema.sql",
           "-- Deploy flipr:appschema to pg\n\nBEGIN;\n\nCREATE SCHEMA flipr;\n\nCOMMIT;\n"),
       raw("revert/appschema.sql", "-- Revert\nbegin;\nDROP SCHEMA flipr;\ncommit;\n"),
       raw("deploy/users.sql", "CREATE TABLE flipr.users (id int);\n"), raw("sqitch.conf", "")},
      &skipped);
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0].name, "0001_appschema.up.sql");
  EXPECT_EQ(out[0].bytes, "-- Deploy flipr:appschema to pg\n\n\nCREATE SCHEMA flipr;\n\n");
  EXPECT_EQ(out[1].name, "0001_appschema.down.sql");
  EXPECT_EQ(out[1].bytes, "-- Revert\nDROP SCHEMA flipr;\n");
  EXPECT_EQ(out[2].name, "0002_users.up.sql");
  EXPECT_EQ(out[2].bytes, "CREATE TABLE flipr.users (id int);\n");
  EXPECT_EQ(skipped, (std::vector<std::string>{"sqitch.conf"}));
  EXPECT_EQ(build_migration_set(out).size(), 2u);
  try {
    (void)import_folder(Tool::kSqitch,
                        {raw("sqitch.plan", "a 2024 A <a@x>\nb 2024 A <a@x>\na 2025 A <a@x>\n"),
                         raw("deploy/a.sql", "")},
                        nullptr);
    FAIL();
  } catch (const SourceError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("sqitch.plan:3: \"a\" is reworked"), std::string::npos) << what;
    EXPECT_NE(what.find("deploy/b.sql\": not found"), std::string::npos) << what;
  }
}

TEST(ImportFolder, GooseRefusesWhatItCannotRunAsWritten) {
  try {
    (void)import_folder(Tool::kGoose,
                        {raw("1_env.sql", "-- +goose Up\n-- +goose ENVSUB ON\nSELECT '${X}';\n"),
                         raw("2_none.sql", "CREATE TABLE a ();\n"),
                         raw("3_odd.sql", "-- +goose Up\n-- +goose Sideways\n"),
                         raw("4_code.go", "package m"), raw("x_bad.sql", "-- +goose Up\n")},
                        nullptr);
    FAIL();
  } catch (const SourceError& e) {
    const std::string what = e.what();
    for (const char* f : {"1_env.sql\": `-- +goose envsub on`", "2_none.sql\": SQL before",
                          "3_odd.sql\": unknown goose annotation", "4_code.go\": a code migration",
                          "x_bad.sql\": not a goose migration name"})
      EXPECT_NE(what.find(f), std::string::npos) << f << "\n" << what;
  }
}

}  // namespace
}  // namespace stepwise
