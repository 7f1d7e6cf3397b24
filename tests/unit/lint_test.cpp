// The lint of `stepwise check`: one positive and one negative case per rule, the catalog
// (tables created in the same file or batch are new), suppressions. No database.
#include "stepwise/lint.hpp"

#include "stepwise/errors.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <string>
#include <vector>

namespace stepwise {
namespace {

struct Lint {
  std::vector<MigrationFile> files;
  std::string releases;  // releases.json text, or empty

  Lint& up(const std::string& version, const std::string& sql, const char* down = nullptr) {
    files.push_back({version + "_m.up.sql", sql, "", 0});
    if (down != nullptr) files.push_back({version + "_m.down.sql", down, "", 0});
    return *this;
  }
  std::map<Version, std::string> expected;
  std::vector<CheckFinding> run() const {
    const auto set = build_migration_set(files);
    const auto rel = releases.empty() ? Releases() : parse_releases(releases, set);
    return lint_migrations(set, rel, expected);
  }
};

// A first migration creating `existing`, shipped in release 1 (so later files see it as
// existing), then the file under test.
Lint on_existing(const std::string& sql, const char* down = "SELECT 1;") {
  Lint l;
  l.up("1", "CREATE TABLE existing (id bigint PRIMARY KEY, a int, v varchar(10), n numeric(8,2));",
       "DROP TABLE existing;");
  l.releases = R"({"releases": [{"name": "1.0", "schema": 1, "min_schema": 1}]})";
  l.up("2", sql, down);
  return l;
}

std::vector<std::string> rules_of(const std::vector<CheckFinding>& findings) {
  std::vector<std::string> r;
  for (const auto& f : findings)
    if (f.rule != "irreversible") r.push_back(f.rule);
  return r;
}

bool has(const std::vector<CheckFinding>& findings, const std::string& rule) {
  return std::any_of(findings.begin(), findings.end(),
                     [&](const CheckFinding& f) { return f.rule == rule; });
}

using Rules = std::vector<std::string>;

TEST(Lint, CleanSetHasNoFindings) {
  EXPECT_EQ(rules_of(on_existing("ALTER TABLE existing ADD COLUMN note text;").run()), Rules{});
}

TEST(Lint, IndexNotConcurrent) {
  const auto f = on_existing("\nCREATE INDEX existing_a ON existing (a);").run();
  ASSERT_EQ(rules_of(f), Rules{"index-not-concurrent"});
  EXPECT_EQ(f[0].file, "2_m.up.sql");
  EXPECT_EQ(f[0].line, 2);
  EXPECT_EQ(f[0].col, 28);  // at the table name
  EXPECT_EQ(f[0].severity, Severity::kError);
  EXPECT_EQ(rules_of(on_existing("-- stepwise:no-transaction\n"
                                 "CREATE INDEX CONCURRENTLY existing_a ON existing (a);")
                         .run()),
            Rules{});
}

TEST(Lint, TableCreatedInTheSameFileIsNew) {
  // squawk's most reported false positive.
  EXPECT_EQ(rules_of(on_existing("CREATE TABLE fresh (id int, a int);\n"
                                 "CREATE INDEX fresh_a ON fresh (a);\n"
                                 "ALTER TABLE fresh ADD CONSTRAINT f FOREIGN KEY (a) REFERENCES "
                                 "existing (id);\n"
                                 "ALTER TABLE fresh ADD PRIMARY KEY (id);\n"
                                 "ALTER TABLE fresh ALTER COLUMN a SET NOT NULL;\n"
                                 "ALTER TABLE fresh ALTER COLUMN a TYPE bigint;\n"
                                 "ALTER TABLE fresh ADD COLUMN u uuid DEFAULT gen_random_uuid();")
                         .run()),
            Rules{});
}

TEST(Lint, TableCreatedEarlierInTheSameBatchIsNew) {
  Lint l;
  l.up("1", "CREATE TABLE t (id int);", "DROP TABLE t;");
  l.up("2", "CREATE INDEX t_id ON t (id);", "DROP INDEX t_id;");
  EXPECT_EQ(rules_of(l.run()), Rules{});
  // Once a release shipped the table, it is existing.
  l.releases = R"({"releases": [{"name": "1.0", "schema": 1, "min_schema": 1}]})";
  // (The down drops the index its own up created: new, since no release shipped it.)
  EXPECT_EQ(rules_of(l.run()), Rules{"index-not-concurrent"});
}

TEST(Lint, DropIndexNotConcurrent) {
  EXPECT_EQ(rules_of(on_existing("DROP INDEX existing_a;").run()),
            Rules{"drop-index-not-concurrent"});
  EXPECT_EQ(
      rules_of(
          on_existing("-- stepwise:no-transaction\nDROP INDEX CONCURRENTLY existing_a;").run()),
      Rules{});
  // An index the same file creates on a new table: no finding.
  EXPECT_EQ(rules_of(on_existing("CREATE TABLE x (a int); CREATE INDEX x_a ON x (a); DROP INDEX "
                                 "x_a;")
                         .run()),
            Rules{});
}

TEST(Lint, ForeignKeyAndCheckNeedNotValid) {
  EXPECT_EQ(rules_of(on_existing("ALTER TABLE existing ADD CONSTRAINT fk FOREIGN KEY (a) "
                                 "REFERENCES existing (id);")
                         .run()),
            Rules{"constraint-not-valid"});
  EXPECT_EQ(rules_of(on_existing("ALTER TABLE existing ADD CONSTRAINT c CHECK (a > 0);").run()),
            Rules{"constraint-not-valid"});
  EXPECT_EQ(
      rules_of(
          on_existing("ALTER TABLE existing ADD COLUMN b int REFERENCES existing (id);").run()),
      Rules{"constraint-not-valid"});
  EXPECT_EQ(rules_of(on_existing("ALTER TABLE existing ADD CONSTRAINT fk FOREIGN KEY (a) "
                                 "REFERENCES existing (id) NOT VALID;\n"
                                 "ALTER TABLE existing ADD CONSTRAINT c CHECK (a > 0) NOT VALID;\n"
                                 "ALTER TABLE existing VALIDATE CONSTRAINT fk;")
                         .run()),
            Rules{});
}

TEST(Lint, VolatileDefault) {
  EXPECT_EQ(rules_of(on_existing("ALTER TABLE existing ADD COLUMN u uuid DEFAULT "
                                 "gen_random_uuid();")
                         .run()),
            Rules{"volatile-default"});
  EXPECT_EQ(rules_of(on_existing("ALTER TABLE existing ADD COLUMN s bigserial;").run()),
            Rules{"volatile-default"});
  EXPECT_EQ(rules_of(on_existing("ALTER TABLE existing ADD COLUMN i int GENERATED ALWAYS AS "
                                 "IDENTITY;")
                         .run()),
            Rules{"volatile-default"});
  // now() and constants are evaluated once: no rewrite since PostgreSQL 11.
  EXPECT_EQ(rules_of(on_existing("ALTER TABLE existing ADD COLUMN t timestamptz DEFAULT now(), "
                                 "ADD COLUMN c text DEFAULT 'x', ADD COLUMN d timestamptz DEFAULT "
                                 "CURRENT_TIMESTAMP;")
                         .run()),
            Rules{});
  // An unknown function may be volatile: a warning.
  const auto f = on_existing("ALTER TABLE existing ADD COLUMN x int DEFAULT my_func();").run();
  ASSERT_EQ(rules_of(f), Rules{"volatile-default"});
  EXPECT_EQ(f[0].severity, Severity::kWarning);
}

TEST(Lint, SetNotNullNeedsAValidatedCheck) {
  EXPECT_EQ(rules_of(on_existing("ALTER TABLE existing ALTER COLUMN a SET NOT NULL;").run()),
            Rules{"set-not-null"});
  Lint l = on_existing("ALTER TABLE existing ADD CONSTRAINT a_nn CHECK (a IS NOT NULL) NOT VALID;");
  l.up("3", "ALTER TABLE existing VALIDATE CONSTRAINT a_nn;", "SELECT 1;");
  l.up("4", "ALTER TABLE existing ALTER COLUMN a SET NOT NULL;", "SELECT 1;");
  EXPECT_EQ(rules_of(l.run()), Rules{});
  // Added NOT VALID but never validated: still a scan.
  Lint n = on_existing("ALTER TABLE existing ADD CONSTRAINT a_nn CHECK (a IS NOT NULL) NOT VALID;");
  n.up("3", "ALTER TABLE existing ALTER COLUMN a SET NOT NULL;", "SELECT 1;");
  EXPECT_EQ(rules_of(n.run()), Rules{"set-not-null"});
}

TEST(Lint, TypeChangeThatRewrites) {
  EXPECT_EQ(rules_of(on_existing("ALTER TABLE existing ALTER COLUMN a TYPE bigint;").run()),
            Rules{"type-change-rewrite"});
  EXPECT_EQ(rules_of(on_existing("ALTER TABLE existing ALTER COLUMN v TYPE varchar(5);").run()),
            Rules{"type-change-rewrite"});
  EXPECT_EQ(
      rules_of(on_existing("ALTER TABLE existing ALTER COLUMN v TYPE text USING v || '';").run()),
      Rules{"type-change-rewrite"});
  // Binary-coercible widenings need no rewrite.
  EXPECT_EQ(rules_of(on_existing("ALTER TABLE existing ALTER COLUMN v TYPE varchar(20), ALTER "
                                 "COLUMN n TYPE numeric(12,2);")
                         .run()),
            Rules{});
  EXPECT_EQ(rules_of(on_existing("ALTER TABLE existing ALTER COLUMN v TYPE text;").run()), Rules{});
}

TEST(Lint, PrimaryKeyOrUniqueWithoutIndex) {
  EXPECT_EQ(rules_of(on_existing("ALTER TABLE existing ADD CONSTRAINT u UNIQUE (a);").run()),
            Rules{"unique-without-index"});
  EXPECT_EQ(rules_of(on_existing("ALTER TABLE existing ADD CONSTRAINT u UNIQUE USING INDEX "
                                 "existing_a_key;")
                         .run()),
            Rules{});
}

TEST(Lint, ConcurrentlyInATransactionalStep) {
  const auto f = on_existing("CREATE INDEX CONCURRENTLY existing_a ON existing (a);").run();
  EXPECT_EQ(rules_of(f), Rules{"concurrent-in-transaction"});
  EXPECT_EQ(rules_of(on_existing("-- stepwise:no-transaction\n"
                                 "CREATE INDEX CONCURRENTLY existing_a ON existing (a);")
                         .run()),
            Rules{});
}

TEST(Lint, VacuumFullAndCluster) {
  EXPECT_EQ(rules_of(on_existing("-- stepwise:no-transaction\nVACUUM FULL existing;").run()),
            Rules{"vacuum-full-cluster"});
  EXPECT_EQ(rules_of(on_existing("CLUSTER existing USING existing_pkey;").run()),
            Rules{"vacuum-full-cluster"});
  EXPECT_EQ(rules_of(on_existing("-- stepwise:no-transaction\nVACUUM existing;").run()), Rules{});
}

TEST(Lint, TruncateCascade) {
  EXPECT_EQ(rules_of(on_existing("TRUNCATE existing CASCADE;").run()), Rules{"truncate-cascade"});
  EXPECT_EQ(rules_of(on_existing("TRUNCATE existing;").run()), Rules{});
}

TEST(Lint, IdentifierTooLong) {
  const std::string long_name(64, 'x');
  EXPECT_EQ(rules_of(on_existing("CREATE TABLE " + long_name + " (id int);").run()),
            Rules{"identifier-too-long"});
  EXPECT_EQ(
      rules_of(on_existing("ALTER TABLE existing ADD COLUMN \"" + long_name + "\" int;").run()),
      Rules{"identifier-too-long"});
  EXPECT_EQ(rules_of(on_existing("CREATE TABLE " + std::string(63, 'x') + " (id int);").run()),
            Rules{});
  // Inside a string or a comment it is no identifier.
  EXPECT_EQ(rules_of(on_existing("-- " + long_name + "\nSELECT '" + long_name + "';").run()),
            Rules{});
}

TEST(Lint, SyntaxErrorNamesTheLine) {
  const auto f = on_existing("SELECT 1;\nALTER TABLE existing ADD COLUMN;").run();
  ASSERT_EQ(rules_of(f), Rules{"syntax-error"});
  EXPECT_EQ(f[0].line, 2);
}

TEST(Lint, MissingDownFileIsIrreversible) {
  Lint l;
  l.up("1", "CREATE TABLE t (id int);");
  const auto f = l.run();
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].rule, "irreversible");
  EXPECT_EQ(f[0].severity, Severity::kWarning);
  Lint ok;
  ok.up("1", "CREATE TABLE t (id int);", "DROP TABLE t;");
  EXPECT_TRUE(ok.run().empty());
}

TEST(Lint, SuppressionWithAReason) {
  const auto f = on_existing(
                     "-- stepwise:allow index-not-concurrent because the table has 10 rows\n"
                     "CREATE INDEX existing_a ON existing (a);\n"
                     "CREATE INDEX existing_b ON existing (a);")
                     .run();
  // The suppression covers only the statement after it.
  ASSERT_EQ(rules_of(f), Rules{"index-not-concurrent"});
  EXPECT_EQ(f[0].line, 3);
}

TEST(Lint, SuppressionWithoutAReasonIsRefused) {
  const auto f = on_existing(
                     "-- stepwise:allow index-not-concurrent\n"
                     "CREATE INDEX existing_a ON existing (a);")
                     .run();
  EXPECT_TRUE(has(f, "bad-suppression"));
  EXPECT_TRUE(has(f, "index-not-concurrent"));
  EXPECT_TRUE(has(on_existing("-- stepwise:allow no-such-rule because x\nSELECT 1;").run(),
                  "bad-suppression"));
}

TEST(Lint, UnusedSuppressionIsReported) {
  const auto f =
      on_existing("-- stepwise:allow truncate-cascade because old habit\nSELECT 1;").run();
  ASSERT_EQ(rules_of(f), Rules{"unused-suppression"});
  EXPECT_EQ(f[0].severity, Severity::kWarning);
  EXPECT_EQ(f[0].line, 1);
}

TEST(Lint, SuppressionInTheHeaderLoads) {
  // The header directive parser accepts the allow directive (it is the lint's to validate).
  EXPECT_NO_THROW((void)on_existing("-- stepwise:allow truncate-cascade because the audit table "
                                    "is ours\nTRUNCATE existing CASCADE;")
                      .run());
}

// Release 1.0 ships t(id, a); release 1.1's code runs against 1.0's schema too.
Lint compat_set(const std::string& min_schema_of_1_1, const std::string& change) {
  Lint l;
  l.up("1", "CREATE TABLE t (id int, a int);", "DROP TABLE t;");
  l.up("2", change, "SELECT 1;");
  l.up("3", "SELECT 1;", "SELECT 1;");
  l.releases = R"({"releases": [{"name": "1.0", "schema": 1, "min_schema": 1},
                               {"name": "1.1", "schema": 3, "min_schema": )" +
               min_schema_of_1_1 + "}]}";
  l.expected[Version(1)] = R"({"format": 1, "objects": [
      {"kind": "table", "schema": "public", "name": "t", "attrs": {}},
      {"kind": "column", "schema": "public", "table": "t", "name": "id", "attrs": {"type": "integer"}},
      {"kind": "column", "schema": "public", "table": "t", "name": "a", "attrs": {"type": "integer"}}]})";
  return l;
}

TEST(Lint, DropOrRenameWhileAnOlderReleaseStillReadsIt) {
  // 1.1 admits schema 1 (1.0's): 1.0's pods still run while the database moves through 1.1.
  EXPECT_EQ(rules_of(compat_set("1", "ALTER TABLE t DROP COLUMN a;").run()), Rules{"compat-drop"});
  EXPECT_EQ(rules_of(compat_set("1", "ALTER TABLE t RENAME COLUMN a TO b;").run()),
            Rules{"compat-drop"});
  EXPECT_EQ(rules_of(compat_set("1", "ALTER TABLE t RENAME TO u;").run()), Rules{"compat-drop"});
  EXPECT_EQ(rules_of(compat_set("1", "DROP TABLE t;").run()), Rules{"compat-drop"});
  // The range has moved on (1.1 needs schema 2 at least): the same drop is fine.
  EXPECT_EQ(rules_of(compat_set("2", "ALTER TABLE t DROP COLUMN a;").run()), Rules{});
  // A column 1.0 never had.
  EXPECT_EQ(
      rules_of(
          compat_set("1", "ALTER TABLE t ADD COLUMN z int; ALTER TABLE t DROP COLUMN z;").run()),
      Rules{});
}

TEST(Lint, SuppressionsApplyToMeasuredFindings) {
  Lint l = on_existing(
      "-- stepwise:allow measured-lock because the catalog change is instant\n"
      "ALTER TABLE existing ADD COLUMN b int;\n"
      "ALTER TABLE existing ADD COLUMN c int;");
  const auto set = build_migration_set(l.files);
  // The lint itself does not call a suppression of a measured rule unused.
  EXPECT_EQ(rules_of(lint_migrations(set, parse_releases(l.releases, set))), Rules{});
  std::vector<CheckFinding> measured = {
      {"2_m.up.sql", 2, 1, Severity::kWarning, "measured-lock", "b"},
      {"2_m.up.sql", 3, 1, Severity::kWarning, "measured-lock", "c"},
      {"2_m.up.sql", 2, 1, Severity::kError, "measured-rewrite", "b"}};
  const auto kept = apply_suppressions(set, measured);
  ASSERT_EQ(kept.size(), 2u);
  EXPECT_EQ(kept[0].message, "c");
  EXPECT_EQ(kept[1].rule, "measured-rewrite");
}

TEST(Lint, AllowListSuppressesWithoutEditingTheFileAndReportsUnusedEntries) {
  const auto allow = parse_allow_list(
      "# shipped files\n\n1_a.up.sql constraint-not-valid because new column, all NULL\n"
      "2_b.up.sql set-not-null because table is empty\n1_a.up.sql measured-lock because brief\n",
      "check-allow.txt");
  ASSERT_EQ(allow.size(), 3u);
  EXPECT_EQ(allow[1].line, 4);
  const std::vector<CheckFinding> found = {
      {"1_a.up.sql", 2, 5, Severity::kError, "constraint-not-valid", "m"},
      {"1_a.up.sql", 3, 1, Severity::kError, "set-not-null", "m"},
      {"3_c.up.sql", 1, 1, Severity::kError, "constraint-not-valid", "m"}};
  const auto lint_only = apply_allow_list(found, allow, "check-allow.txt", false);
  ASSERT_EQ(lint_only.size(), 3u);  // two findings kept, line 4 unused; measured-lock not judged
  EXPECT_EQ(lint_only[0].rule, "set-not-null");
  EXPECT_EQ(lint_only[1].file, "3_c.up.sql");
  EXPECT_EQ(lint_only[2].rule, "unused-suppression");
  EXPECT_EQ(lint_only[2].file, "check-allow.txt");
  EXPECT_EQ(lint_only[2].line, 4);
  EXPECT_EQ(lint_only[2].severity, Severity::kWarning);
  EXPECT_EQ(apply_allow_list(found, allow, "check-allow.txt", true).size(), 4u);
  const auto two = parse_allow_list("1_a.up.sql set-not-null,measured-lock because brief\n", "f");
  ASSERT_EQ(two.size(), 2u);  // the grammar of -- stepwise:allow: several rules
  EXPECT_EQ(two[1].rule, "measured-lock");
  EXPECT_THROW((void)parse_allow_list("1_a.up.sql no-such-rule because x\n", "f"), SourceError);
  EXPECT_THROW((void)parse_allow_list("1_a.up.sql unused-suppression because x\n", "f"),
               SourceError);
  EXPECT_THROW((void)parse_allow_list("1_a.up.sql set-not-null\n", "f"), SourceError);
  EXPECT_THROW((void)parse_allow_list("1_a.up.sql set-not-null since x\n", "f"), SourceError);
}

TEST(Lint, FormatsOneLine) {
  CheckFinding f{"1_a.up.sql", 3, 7, Severity::kWarning, "irreversible", "no down file"};
  EXPECT_EQ(format_finding(f), "1_a.up.sql:3:7: warning irreversible: no down file");
}

TEST(Lint, EveryRuleIsDocumentedWithASummary) {
  for (const auto& r : lint_rules()) EXPECT_FALSE(r.summary.empty()) << r.name;
  EXPECT_GE(lint_rules().size(), 12u);
}

}  // namespace
}  // namespace stepwise
