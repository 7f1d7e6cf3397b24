// `stepwise validate` against a real PostgreSQL server: schema drift (each finding, and its
// suggested fix applied by hand makes validate pass again), version / checksum / attempt
// findings, --release ranges, --ignore, --skip-drift, read-only behaviour, --wait, and the
// committed expected schemas being fresh.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <pqxx/pqxx>
#include <set>
#include <sstream>
#include <thread>

#include "test_db.hpp"

namespace stepwise::test {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

constexpr long long kExampleLatest = 20240315100000LL;

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

long long version_of(const std::string& file_name) {
  return std::stoll(file_name.substr(0, file_name.find_first_of("_.")));
}

// Copies the example set into `dir`: migration files up to `max` (0: all), the releases that
// ship by then, and (with_expected) the committed expected schemas of the versions kept.
void copy_example(const MigrationDir& dir, long long max = 0, bool with_expected = true) {
  const fs::path src(STEPWISE_MIGRATIONS_DIR);
  for (const auto& e : fs::directory_iterator(src)) {
    const auto name = e.path().filename().string();
    if (!e.is_regular_file() || !name.ends_with(".sql")) continue;
    if (max == 0 || version_of(name) <= max) fs::copy_file(e.path(), fs::path(dir.path()) / name);
  }
  auto releases = nlohmann::json::parse(slurp(src / "releases.json"));
  nlohmann::json kept = nlohmann::json::array();
  for (const auto& r : releases["releases"])
    if (max == 0 || r["schema"].get<long long>() <= max) kept.push_back(r);
  if (!kept.empty()) dir.write("releases.json", nlohmann::json{{"releases", kept}}.dump(2) + "\n");
  if (!with_expected) return;
  fs::create_directories(fs::path(dir.path()) / "expected");
  for (const auto& e : fs::directory_iterator(src / "expected")) {
    const auto name = e.path().filename().string();
    if (name.ends_with(".json") && (max == 0 || version_of(name) <= max))
      fs::copy_file(e.path(), fs::path(dir.path()) / "expected" / name);
  }
}

// The example set plus a migration with a trigger function and its trigger (the example itself
// has neither), with expected schemas generated for that set on a scratch database.
const char* kTouchMigration = "20240401090000_touch_tasks.up.sql";
const char* kTouchSql =
    "ALTER TABLE tasks ADD COLUMN updated_at timestamptz;\n"
    "CREATE FUNCTION touch_updated_at() RETURNS trigger LANGUAGE plpgsql AS $$\n"
    "BEGIN\n"
    "  NEW.updated_at := now();\n"
    "  RETURN NEW;\n"
    "END\n"
    "$$;\n"
    "CREATE TRIGGER tasks_touch_updated_at BEFORE UPDATE ON tasks\n"
    "  FOR EACH ROW EXECUTE FUNCTION touch_updated_at();\n";

void make_touch_source(const TestDb& db, const MigrationDir& dir) {
  copy_example(dir, 0, false);
  dir.write(kTouchMigration, kTouchSql);
  const auto r = db.stepwise({"--log-level", "warn", "--source", dir.path(), "generate-expected",
                              "--out", dir.path() + "/expected"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  ASSERT_TRUE(fs::exists(fs::path(dir.path()) / "expected" / "20240401090000.json")) << r.out;
}

struct Validated {
  int exit_code = -1;
  nlohmann::json doc;
  std::string out, err;
  // Every finding as "kind: object".
  [[nodiscard]] std::string summary() const {
    std::string s;
    if (doc.is_object() && doc.contains("findings"))
      for (const auto& f : doc["findings"])
        s += "  " + f.value("kind", "") + ": " + f.value("object", "") +
             " | expected: " + f.value("expected", "") + " | actual: " + f.value("actual", "") +
             " | fix: " + f.value("fix", "") + "\n";
    return s + "stdout: " + out + "\nstderr: " + err;
  }
  [[nodiscard]] const nlohmann::json* find(const std::string& kind,
                                           const std::string& object) const {
    if (!doc.is_object() || !doc.contains("findings")) return nullptr;
    for (const auto& f : doc["findings"])
      if (f.value("kind", "") == kind && f.value("object", "") == object) return &f;
    return nullptr;
  }
  [[nodiscard]] std::set<std::string> kinds() const {
    std::set<std::string> k;
    if (doc.is_object() && doc.contains("findings"))
      for (const auto& f : doc["findings"]) k.insert(f.value("kind", ""));
    return k;
  }
};

// `stepwise [global...] --output json validate [opts...]` against `url`.
Validated validate_at(const std::string& url, const std::vector<std::string>& global,
                      const std::vector<std::string>& opts,
                      const std::map<std::string, std::string>& env = {}) {
  std::vector<std::string> args{"--database-url", url};
  args.insert(args.end(), global.begin(), global.end());
  args.insert(args.end(), {"--output", "json", "validate"});
  args.insert(args.end(), opts.begin(), opts.end());
  auto e = env;
  e.emplace("STEPWISE_DATABASE_URL", "");
  e.emplace("DATABASE_URL", "");
  const auto r = run(stepwise_cmd(args), e);
  Validated v;
  v.exit_code = r.exit_code;
  v.out = r.out;
  v.err = r.err;
  try {
    v.doc = nlohmann::json::parse(r.out);
  } catch (const nlohmann::json::exception&) {
    v.doc = nullptr;
  }
  return v;
}

Validated validate(const TestDb& db, const std::vector<std::string>& global = {},
                   const std::vector<std::string>& opts = {}) {
  return validate_at(db.url(), global, opts);
}

// The server's error for `sql`, or "" when it runs.
std::string try_query(const TestDb& db, const std::string& sql) {
  try {
    db.query(sql);
    return "";
  } catch (const std::exception& e) {
    return e.what();
  }
}

// ---------------------------------------------------------------------------------------------
// Drift scenarios.

struct ExpectedFinding {
  std::string object;  // the finding's object text, e.g. "column public.tasks.note unexpected"
  std::optional<std::string> expected;
  std::optional<std::string> actual;
};

struct DriftCase {
  std::string name;
  bool touch_source = false;  // example set + trigger function migration (--source)
  std::function<void(const TestDb&)> apply;
  std::vector<ExpectedFinding> findings;  // exactly these drift findings, in any order
};

void PrintTo(const DriftCase& c, std::ostream* os) {
  *os << c.name;
}

std::function<void(const TestDb&)> sql(std::string text) {
  return [text = std::move(text)](const TestDb& db) { db.query(text); };
}

// An interrupted CREATE INDEX CONCURRENTLY: the catalog entry is committed, then the build
// waits for a transaction that writes the table and is cancelled, leaving the index INVALID
// with exactly the definition the migration wanted.
void interrupted_concurrent_index(const TestDb& db) {
  db.query("DROP INDEX tasks_assignee_id_idx");
  pqxx::connection blocker_conn(db.url());
  pqxx::work blocker(blocker_conn);
  blocker.exec("LOCK TABLE tasks IN ROW EXCLUSIVE MODE");
  {
    pqxx::connection builder_conn(db.url());
    pqxx::nontransaction builder(builder_conn);
    builder.exec("SET statement_timeout = '1s'");
    EXPECT_THROW(
        builder.exec("CREATE INDEX CONCURRENTLY tasks_assignee_id_idx ON tasks (assignee_id)"),
        pqxx::sql_error);
  }
  blocker.abort();
  ASSERT_EQ(db.scalar("SELECT indisvalid::text FROM pg_index WHERE indexrelid = "
                      "'tasks_assignee_id_idx'::regclass"),
            "false");
}

const char* kSeedRows =
    "INSERT INTO accounts (email) VALUES ('a@example.com'), ('b@example.com');\n"
    "INSERT INTO projects (account_id, name) SELECT id, 'p' FROM accounts;\n"
    "INSERT INTO tasks (project_id, title, status, assignee_id)"
    " SELECT p.id, 't' || g, (ARRAY['todo', 'doing', 'blocked', 'done']::task_status[])[1 + g % "
    "4], p.account_id"
    " FROM projects p, generate_series(1, 10) g;\n";

const char* kIndexDef =
    "CREATE INDEX tasks_assignee_id_idx ON public.tasks USING btree (assignee_id)";

std::vector<DriftCase> drift_cases() {
  return {
      {"ColumnAdded",
       false,
       sql("ALTER TABLE tasks ADD COLUMN note text"),
       {{"column public.tasks.note unexpected", "", "text"}}},
      {"ColumnDropped",
       false,
       sql("ALTER TABLE tasks DROP COLUMN due_date"),
       {{"column public.tasks.due_date missing", "date", ""}}},
      {"ColumnRetyped",
       false,
       sql("ALTER TABLE accounts ALTER COLUMN display_name TYPE varchar(200)"),
       {{"column public.accounts.display_name changed (type)", "text", "character varying(200)"}}},
      {"ColumnRetypedWithData",
       false,
       sql(std::string(kSeedRows) + "ALTER TABLE tasks ALTER COLUMN due_date TYPE timestamptz"),
       {{"column public.tasks.due_date changed (type)", "date", "timestamp with time zone"}}},
      {"ColumnSetNotNull",
       false,
       sql("ALTER TABLE accounts ALTER COLUMN display_name SET NOT NULL"),
       {{"column public.accounts.display_name changed (not_null)", "", "true"}}},
      {"ColumnDroppedNotNull",
       false,
       sql("ALTER TABLE tasks ALTER COLUMN title DROP NOT NULL"),
       {{"column public.tasks.title changed (not_null)", "true", ""}}},
      {"ColumnDefaultChanged",
       false,
       sql("ALTER TABLE tasks ALTER COLUMN status SET DEFAULT 'doing'"),
       {{"column public.tasks.status changed (default)", "'todo'::public.task_status",
         "'doing'::public.task_status"}}},
      {"ColumnDefaultDropped",
       false,
       sql("ALTER TABLE accounts ALTER COLUMN created_at DROP DEFAULT"),
       {{"column public.accounts.created_at changed (default)", "now()", ""}}},
      {"IndexMissing",
       false,
       sql("DROP INDEX tasks_assignee_id_idx"),
       {{"index public.tasks.tasks_assignee_id_idx missing", kIndexDef, ""}}},
      {"IndexExtra",
       false,
       sql("CREATE INDEX tasks_due_date_idx ON tasks (due_date)"),
       {{"index public.tasks.tasks_due_date_idx unexpected", "",
         "CREATE INDEX tasks_due_date_idx ON public.tasks USING btree (due_date)"}}},
      {"IndexDefinitionChanged",
       false,
       sql("DROP INDEX tasks_assignee_id_idx;"
           " CREATE INDEX tasks_assignee_id_idx ON tasks (assignee_id) WHERE completed_at IS NULL"),
       {{"index public.tasks.tasks_assignee_id_idx changed (definition)", kIndexDef,
         std::string(kIndexDef) + " WHERE (completed_at IS NULL)"}}},
      {"IndexInvalid",
       false,
       interrupted_concurrent_index,
       {{"index public.tasks.tasks_assignee_id_idx invalid (valid)", "true", "false"}}},
      {"ForeignKeyMissing",
       false,
       sql("ALTER TABLE tasks DROP CONSTRAINT tasks_assignee_id_fkey"),
       {{"constraint public.tasks.tasks_assignee_id_fkey missing",
         "FOREIGN KEY (assignee_id) REFERENCES public.accounts(id) ON DELETE SET NULL", ""}}},
      {"CheckConstraintChanged",
       false,
       sql("ALTER TABLE tasks DROP CONSTRAINT tasks_title_check,"
           " ADD CONSTRAINT tasks_title_check CHECK (length(title) BETWEEN 1 AND 1000)"),
       {{"constraint public.tasks.tasks_title_check changed (definition)",
         "CHECK (((length(title) >= 1) AND (length(title) <= 500)))",
         "CHECK (((length(title) >= 1) AND (length(title) <= 1000)))"}}},
      {"ExtraTable",
       false,
       sql("CREATE TABLE hotfix_audit (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, note "
           "text NOT NULL"
           " REFERENCES accounts (email));"
           " CREATE INDEX hotfix_audit_note_idx ON hotfix_audit (note)"),
       {{"table public.hotfix_audit unexpected", "", std::nullopt}}},
      {"ExtraTableWithSerialKey",
       false,
       sql("CREATE TABLE legacy_import (id serial PRIMARY KEY, payload text)"),
       {{"table public.legacy_import unexpected", "", std::nullopt}}},
      {"ViewDefinitionChanged",
       false,
       sql("CREATE OR REPLACE VIEW project_overview AS"
           " SELECT p.id AS project_id, p.account_id, p.name, count(t.id) AS task_count,"
           " count(t.id) FILTER (WHERE t.status <> 'done') AS open_task_count,"
           " max(t.completed_at) AS last_completed_at, min(t.created_at) AS first_created_at"
           " FROM projects p LEFT JOIN tasks t ON t.project_id = p.id GROUP BY p.id, p.account_id, "
           "p.name"),
       {{"view public.project_overview changed (definition)", std::nullopt, std::nullopt}}},
      {"EnumLabelAdded",
       false,
       sql(std::string(kSeedRows) + "ALTER TYPE task_status ADD VALUE 'archived'"),
       {{"type public.task_status changed (labels)", "'todo', 'doing', 'blocked', 'done'",
         "'todo', 'doing', 'blocked', 'done', 'archived'"}}},
      {"FunctionBodyChanged",
       true,
       sql("CREATE OR REPLACE FUNCTION touch_updated_at() RETURNS trigger LANGUAGE plpgsql AS $$\n"
           "BEGIN\n  NEW.updated_at := clock_timestamp();\n  RETURN NEW;\nEND\n$$"),
       {{"function public.touch_updated_at() changed (definition)", std::nullopt, std::nullopt}}},
      {"TableMissing",
       false,
       sql("DROP VIEW project_overview; DROP TABLE tasks"),
       {{"table public.tasks missing", std::nullopt, ""},
        {"view public.project_overview missing", std::nullopt, ""}}},
      {"ExtraTriggerWithItsFunction",
       false,
       sql("CREATE FUNCTION audit_accounts() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN "
           "NEW; END $$;"
           " CREATE TRIGGER accounts_audit AFTER INSERT ON accounts FOR EACH ROW EXECUTE FUNCTION "
           "audit_accounts()"),
       {{"function public.audit_accounts() unexpected", "", std::nullopt},
        {"trigger public.accounts.accounts_audit unexpected", "", std::nullopt}}},
      {"TriggerMissing",
       true,
       sql("DROP TRIGGER tasks_touch_updated_at ON tasks"),
       {{"trigger public.tasks.tasks_touch_updated_at missing",
         "CREATE TRIGGER tasks_touch_updated_at BEFORE UPDATE ON public.tasks FOR EACH ROW EXECUTE "
         "FUNCTION "
         "public.touch_updated_at()",
         ""}}},
  };
}

class DriftTest : public ::testing::TestWithParam<DriftCase> {};

TEST_P(DriftTest, IsFoundAndItsSuggestedFixMakesValidatePass) {
  REQUIRE_TEST_DATABASE();
  const auto& c = GetParam();
  TestDb db;
  MigrationDir dir;
  std::vector<std::string> global;
  if (c.touch_source) {
    ASSERT_NO_FATAL_FAILURE(make_touch_source(db, dir));
    global = {"--source", dir.path()};
  }
  auto up = global;
  up.push_back("up");
  const auto u = db.stepwise(up);
  ASSERT_EQ(u.exit_code, 0) << u.err;
  // No drift before the change: the live schema matches the expected one.
  const auto clean = validate(db, global);
  ASSERT_EQ(clean.exit_code, 0) << clean.summary();

  ASSERT_NO_FATAL_FAILURE(c.apply(db));
  const auto v = validate(db, global);
  ASSERT_TRUE(v.doc.is_object()) << v.summary();
  EXPECT_EQ(v.exit_code, 14) << v.summary();
  EXPECT_EQ(v.doc["exit_code"], 14);
  EXPECT_EQ(v.doc["ok"], false);
  for (const auto& want : c.findings) {
    const auto* f = v.find("drift", want.object);
    if (f == nullptr) {
      ADD_FAILURE() << "no finding \"" << want.object << "\"\n" << v.summary();
      continue;
    }
    if (want.expected) {
      EXPECT_EQ((*f)["expected"], *want.expected) << want.object;
    }
    if (want.actual) {
      EXPECT_EQ((*f)["actual"], *want.actual) << want.object;
    }
    EXPECT_FALSE((*f)["fix"].get<std::string>().empty()) << want.object;
  }
  EXPECT_EQ(v.doc["findings"].size(), c.findings.size()) << "exactly the expected findings\n"
                                                         << v.summary();
  EXPECT_EQ(v.kinds(), std::set<std::string>{"drift"}) << v.summary();

  // Apply every suggested fix, in the order listed, as a user would paste them.
  for (const auto& f : v.doc["findings"]) {
    const auto fix = f["fix"].get<std::string>();
    const auto error = try_query(db, fix);
    EXPECT_EQ(error, "") << "the fix for \"" << f["object"].get<std::string>() << "\" fails:\n"
                         << fix;
  }
  const auto after = validate(db, global);
  EXPECT_EQ(after.exit_code, 0) << "validate after applying the fixes\n" << after.summary();
}

INSTANTIATE_TEST_SUITE_P(Drift, DriftTest, ::testing::ValuesIn(drift_cases()),
                         [](const ::testing::TestParamInfo<DriftCase>& p) { return p.param.name; });

// ---------------------------------------------------------------------------------------------
// Text output, --ignore and --skip-drift.

TEST(ValidateDrift, TextOutputHasOneLinePerFindingWithItsFix) {
  REQUIRE_TEST_DATABASE();
  TestDb db;
  ASSERT_EQ(db.stepwise({"up"}).exit_code, 0);
  db.query("ALTER TABLE tasks ADD COLUMN note text");
  const auto r = db.stepwise({"validate"});
  EXPECT_EQ(r.exit_code, 14) << r.out << r.err;
  EXPECT_NE(r.out.find("drift\tcolumn public.tasks.note unexpected\texpected: -\tactual: text\n"
                       "  fix: ALTER TABLE public.tasks DROP COLUMN note;\n"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("invalid: 1 finding(s); database version 20240315100000"), std::string::npos)
      << r.out;
}

TEST(ValidateDrift, IgnoredObjectsAreNotReported) {
  REQUIRE_TEST_DATABASE();
  TestDb db;
  ASSERT_EQ(db.stepwise({"up"}).exit_code, 0);
  db.query(
      "CREATE TABLE hotfix_notes (id int PRIMARY KEY, body text);"
      " CREATE INDEX hotfix_notes_body_idx ON hotfix_notes (body);"
      " CREATE TABLE hotfix_flags (name text)");
  const auto reported = validate(db);
  EXPECT_EQ(reported.exit_code, 14) << reported.summary();
  EXPECT_NE(reported.find("drift", "table public.hotfix_notes unexpected"), nullptr)
      << reported.summary();
  EXPECT_NE(reported.find("drift", "table public.hotfix_flags unexpected"), nullptr)
      << reported.summary();

  const auto ignored = validate(db, {}, {"--ignore", "public.hotfix*"});
  EXPECT_EQ(ignored.exit_code, 0) << ignored.summary();
  EXPECT_EQ(ignored.doc["findings"].size(), 0u) << ignored.summary();

  // A pattern only hides what it matches: a column added to an owned table is still drift.
  db.query("ALTER TABLE tasks ADD COLUMN hotfix_flag boolean");
  const auto partly =
      validate(db, {}, {"--ignore", "public.hotfix*", "--ignore", "public.nothing_*"});
  EXPECT_EQ(partly.exit_code, 14) << partly.summary();
  EXPECT_NE(partly.find("drift", "column public.tasks.hotfix_flag unexpected"), nullptr)
      << partly.summary();
  EXPECT_EQ(partly.doc["findings"].size(), 1u) << partly.summary();
  // Repeatable: a second pattern covers the column.
  const auto both =
      validate(db, {}, {"--ignore", "public.hotfix*", "--ignore", "public.tasks.hotfix_*"});
  EXPECT_EQ(both.exit_code, 0) << both.summary();
}

// A large schema's catalogs are read by two sessions in one exported snapshot (forced here for
// a small one): the description is the same as one session's, drift is found the same way.
TEST(ValidateDrift, TwoSessionCatalogReadEqualsOneSessionRead) {
  REQUIRE_TEST_DATABASE();
  TestDb db;
  ASSERT_EQ(db.stepwise({"up"}).exit_code, 0);
  const std::map<std::string, std::string> two{{"STEPWISE_DESCRIBE_PARALLEL_FROM", "0"}};
  const std::map<std::string, std::string> one{{"STEPWISE_DESCRIBE_PARALLEL_FROM", "1000000000"}};
  const auto serial = db.stepwise({"describe", "--output", "json"}, one);
  const auto parallel = db.stepwise({"describe", "--output", "json", "--log-level", "debug"}, two);
  ASSERT_EQ(serial.exit_code, 0) << serial.err;
  ASSERT_EQ(parallel.exit_code, 0) << parallel.err;
  EXPECT_NE(parallel.err.find("catalog read by two sessions"), std::string::npos) << parallel.err;
  EXPECT_EQ(serial.err.find("catalog read by two sessions"), std::string::npos) << serial.err;
  EXPECT_GT(serial.out.size(), 1000u);
  EXPECT_EQ(parallel.out, serial.out);
  EXPECT_EQ(db.stepwise({"validate"}, two).exit_code, 0);
  db.query("ALTER TABLE tasks ADD COLUMN note text; DROP INDEX tasks_assignee_id_idx");
  const auto r = db.stepwise({"validate", "--log-level", "debug"}, two);
  EXPECT_EQ(r.exit_code, 14) << r.out << r.err;
  EXPECT_NE(r.err.find("catalog read by two sessions"), std::string::npos) << r.err;
  EXPECT_NE(r.out.find("column public.tasks.note unexpected"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("index public.tasks.tasks_assignee_id_idx missing"), std::string::npos)
      << r.out;
}

// On PostgreSQL the reader spells simple index definitions itself (pg_get_indexdef is slow):
// for every index, simple or not, the description holds exactly the server's own text.
TEST(ValidateDrift, IndexDefinitionsAreTheServersText) {
  REQUIRE_TEST_DATABASE();
  TestDb db;
  ASSERT_EQ(db.stepwise({"up"}).exit_code, 0);
  db.query(R"sql(
CREATE SCHEMA "Idx";
CREATE DOMAIN "Idx".dom AS text;
CREATE TABLE "Idx"."Mixed Case" ("Col A" int, "select" text, b varchar(10), c text COLLATE "C",
  d jsonb, e int4range, f "Idx".dom, g point, h tsvector, i int NOT NULL);
CREATE INDEX "Weird Name" ON "Idx"."Mixed Case" ("Col A", "select");
CREATE INDEX "ix""quote" ON "Idx"."Mixed Case" ("Col A");
CREATE INDEX ix_desc ON "Idx"."Mixed Case" ("Col A" DESC);
CREATE INDEX ix_nf ON "Idx"."Mixed Case" ("Col A" NULLS FIRST);
CREATE INDEX ix_desc_nl ON "Idx"."Mixed Case" ("Col A" DESC NULLS LAST);
CREATE INDEX ix_multi ON "Idx"."Mixed Case" (i, "Col A" DESC, "select");
CREATE INDEX ix_coll ON "Idx"."Mixed Case" ("select" COLLATE "C");
CREATE INDEX ix_coll_same ON "Idx"."Mixed Case" (c COLLATE "C");
CREATE INDEX ix_pattern ON "Idx"."Mixed Case" ("select" text_pattern_ops);
CREATE INDEX ix_varchar ON "Idx"."Mixed Case" (b);
CREATE INDEX ix_incl ON "Idx"."Mixed Case" ("Col A") INCLUDE ("select", b);
CREATE INDEX ix_hash ON "Idx"."Mixed Case" USING hash ("select");
CREATE INDEX ix_gin ON "Idx"."Mixed Case" USING gin (d);
CREATE INDEX ix_gin_path ON "Idx"."Mixed Case" USING gin (d jsonb_path_ops);
CREATE INDEX ix_gist ON "Idx"."Mixed Case" USING gist (e);
CREATE INDEX ix_gist_pt ON "Idx"."Mixed Case" USING gist (g);
CREATE INDEX ix_tsv ON "Idx"."Mixed Case" USING gist (h tsvector_ops (siglen = 100));
CREATE INDEX ix_tsv2 ON "Idx"."Mixed Case" USING gist (h);
CREATE INDEX ix_brin ON "Idx"."Mixed Case" USING brin ("Col A") WITH (pages_per_range = 16);
CREATE INDEX ix_partial ON "Idx"."Mixed Case" ("Col A") WHERE "Col A" > 0;
CREATE INDEX ix_expr ON "Idx"."Mixed Case" (lower("select"), i);
CREATE INDEX ix_dom ON "Idx"."Mixed Case" (f);
CREATE UNIQUE INDEX ix_unique ON "Idx"."Mixed Case" (i, "Col A");
CREATE UNIQUE INDEX ix_nnd ON "Idx"."Mixed Case" (i) NULLS NOT DISTINCT;
CREATE INDEX ix_fill ON "Idx"."Mixed Case" ("Col A") WITH (fillfactor = 70);
CREATE TABLE "Idx".parted (k int, v text) PARTITION BY RANGE (k);
CREATE TABLE "Idx".parted_1 PARTITION OF "Idx".parted FOR VALUES FROM (0) TO (10);
CREATE INDEX parted_v ON "Idx".parted (v);
CREATE INDEX parted_1_own ON "Idx".parted_1 (k);
CREATE MATERIALIZED VIEW "Idx".mv AS SELECT 1 AS x;
CREATE INDEX mv_x ON "Idx".mv (x);
CREATE TABLE "Idx"."user" ("order" int, "Group" text);
CREATE INDEX user_order ON "Idx"."user" ("order", "Group");
)sql");
  const auto r = db.stepwise({"describe", "--output", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto doc = nlohmann::json::parse(r.out);
  // The server's text, under the settings every catalog read pins (an empty search_path).
  std::map<std::string, std::string> server;
  for (const auto& row : db.query(
           "SET search_path = ''; SELECT n.nspname || '.' || c.relname,"
           " pg_catalog.pg_get_indexdef(c.oid) FROM pg_catalog.pg_class c JOIN"
           " pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('i', 'I')"))
    server[row.at(0)] = row.at(1);
  std::size_t compared = 0;
  for (const auto& o : doc["objects"]) {
    if (o["kind"] != "index") continue;
    const auto key = o["schema"].get<std::string>() + "." + o["name"].get<std::string>();
    ASSERT_EQ(server.count(key), 1u) << key;
    EXPECT_EQ(o["attrs"]["definition"].get<std::string>(), server[key]) << key;
    ++compared;
  }
  EXPECT_GE(compared, 30u);
}

TEST(ValidateDrift, SkipDriftChecksVersionsOnly) {
  REQUIRE_TEST_DATABASE();
  TestDb db;
  ASSERT_EQ(db.stepwise({"up"}).exit_code, 0);
  db.query("ALTER TABLE tasks ADD COLUMN note text; DROP INDEX tasks_assignee_id_idx");
  EXPECT_EQ(validate(db).exit_code, 14);
  const auto v = validate(db, {}, {"--skip-drift"});
  EXPECT_EQ(v.exit_code, 0) << v.summary();
  EXPECT_EQ(v.doc["findings"].size(), 0u) << v.summary();
  EXPECT_NE(v.doc["notes"].dump().find("--skip-drift"), std::string::npos) << v.summary();
}

// ---------------------------------------------------------------------------------------------
// Version, checksum and attempt findings.

TEST(ValidateFindings, FreshDatabaseIsNotMigratedAndNothingIsCreated) {
  REQUIRE_TEST_DATABASE();
  TestDb db;
  const auto v = validate(db);
  EXPECT_EQ(v.exit_code, 10) << v.summary();
  ASSERT_TRUE(v.doc.is_object()) << v.summary();
  EXPECT_NE(v.find("not-migrated", "log table"), nullptr) << v.summary();
  EXPECT_EQ(v.doc["database_version"], 0);
  EXPECT_EQ(db.count("SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                     " WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')"),
            0);
}

TEST(ValidateFindings, MigratedDatabaseValidates) {
  REQUIRE_TEST_DATABASE();
  TestDb db;
  ASSERT_EQ(db.stepwise({"up"}).exit_code, 0);
  const auto v = validate(db);
  EXPECT_EQ(v.exit_code, 0) << v.summary();
  EXPECT_EQ(v.doc["ok"], true);
  EXPECT_EQ(v.doc["database_version"], kExampleLatest);
  EXPECT_EQ(v.doc["expected_min"], kExampleLatest);
  EXPECT_EQ(v.doc["expected_max"], kExampleLatest);
  EXPECT_EQ(v.doc["notes"].size(), 0u) << v.summary() << " (drift was checked)";
  const auto text = db.stepwise({"validate"});
  EXPECT_EQ(text.exit_code, 0);
  EXPECT_NE(text.out.find("valid: database version 20240315100000 fits this build"),
            std::string::npos)
      << text.out;
}

TEST(ValidateFindings, BehindWhenNewerMigrationsArePending) {
  REQUIRE_TEST_DATABASE();
  TestDb db;
  MigrationDir partial;  // the 1.1.0 build
  copy_example(partial, 20240215120000LL);
  const auto u = db.stepwise({"--source", partial.path(), "up"});
  ASSERT_EQ(u.exit_code, 0) << u.err;
  const auto v = validate(db);
  EXPECT_EQ(v.exit_code, 10) << v.summary();
  const auto* f = v.find("behind", "database version 20240215120000");
  ASSERT_NE(f, nullptr) << v.summary();
  EXPECT_EQ((*f)["expected"], "20240315100000 or later");
  EXPECT_EQ((*f)["actual"], "4 pending: 20240301090000_add_task_completed_at.up.sql ...");
  EXPECT_EQ(v.kinds(), std::set<std::string>{"behind"}) << "no drift at a release's schema\n"
                                                        << v.summary();
  // The build that migrated it is satisfied.
  EXPECT_EQ(validate(db, {"--source", partial.path()}).exit_code, 0);
}

TEST(ValidateFindings, AheadWhenTheBuildLacksTheNewestMigration) {
  REQUIRE_TEST_DATABASE();
  TestDb db;
  ASSERT_EQ(db.stepwise({"up"}).exit_code, 0);
  MigrationDir older;  // the previous build: everything but the newest migration
  copy_example(older, 20240301093000LL);
  const auto v = validate(db, {"--source", older.path()});
  EXPECT_EQ(v.exit_code, 11) << v.summary();
  const auto* f = v.find("ahead", "database version 20240315100000");
  ASSERT_NE(f, nullptr) << v.summary();
  EXPECT_EQ((*f)["expected"], "at most 20240301093000");
  EXPECT_EQ((*f)["actual"], "applied: 20240315100000");
  EXPECT_EQ(v.kinds(), std::set<std::string>{"ahead"}) << v.summary();
}

TEST(ValidateFindings, ChecksumMismatchOfAnEditedAppliedFile) {
  REQUIRE_TEST_DATABASE();
  TestDb db;
  MigrationDir dir;
  copy_example(dir);
  ASSERT_EQ(db.stepwise({"--source", dir.path(), "up"}).exit_code, 0);
  ASSERT_EQ(validate(db, {"--source", dir.path()}).exit_code, 0);
  const auto file = fs::path(dir.path()) / "20240201080000_add_task_assignee.up.sql";
  dir.write(file.filename().string(), slurp(file) + "-- edited after it was applied\n");
  const auto v = validate(db, {"--source", dir.path()});
  EXPECT_EQ(v.exit_code, 12) << v.summary();
  const auto* f = v.find("checksum", "20240201080000_add_task_assignee.up.sql");
  ASSERT_NE(f, nullptr) << v.summary();
  EXPECT_NE((*f)["expected"].get<std::string>().find("(applied)"), std::string::npos);
  EXPECT_NE((*f)["actual"].get<std::string>().find("(file)"), std::string::npos);
  EXPECT_EQ(v.doc["findings"].size(), 1u) << v.summary();
  // The embedded (unedited) set still matches the log.
  EXPECT_EQ(validate(db).exit_code, 0);
}

TEST(ValidateFindings, FailedAttemptIsReported) {
  REQUIRE_TEST_DATABASE();
  TestDb db;
  MigrationDir dir;
  copy_example(dir);
  dir.write("20240401090000_broken.up.sql", "ALTER TABLE tasks ADD COLUMN x int;\nSELEC broken;\n");
  const auto u = db.stepwise({"--source", dir.path(), "up"});
  ASSERT_EQ(u.exit_code, 1) << u.err;
  const auto v = validate(db, {"--source", dir.path()});
  EXPECT_EQ(v.exit_code, 13) << v.summary();
  const auto* f = v.find("failed", "20240401090000_broken.up.sql");
  ASSERT_NE(f, nullptr) << v.summary();
  EXPECT_NE((*f)["actual"].get<std::string>().find("SELEC"), std::string::npos) << v.summary();
  // A failed step is not worth waiting for: --wait gives up at once with the same code.
  const auto w = validate(db, {"--source", dir.path()}, {"--wait", "--timeout", "30s"});
  EXPECT_EQ(w.exit_code, 13) << w.summary();
}

// ---------------------------------------------------------------------------------------------
// --release: compatibility ranges (compatible_range: [r.min_schema, S.schema], S the newest
// release from r on whose min_schema <= r.schema).

TEST(ValidateRelease, ExampleReleasesAcceptTheirCompatibilityRange) {
  REQUIRE_TEST_DATABASE();
  TestDb db;
  struct Range {
    const char* release;
    long long min, max;
  };
  // releases.json: 1.0.0 (schema ..112100000, min ..112100000), 1.1.0 (..215120000, min
  // ..201080000), 2.0.0 (..315100000, min ..301093000). No later release runs on an earlier one's
  // schema, so each range ends at the release's own schema.
  const Range ranges[] = {{"1.0.0", 20240112100000LL, 20240112100000LL},
                          {"1.1.0", 20240201080000LL, 20240215120000LL},
                          {"2.0.0", 20240301093000LL, 20240315100000LL}};
  const long long versions[] = {20240112100000LL, 20240201080000LL, 20240201081500LL,
                                20240215120000LL, 20240301091000LL, 20240301093000LL,
                                20240315100000LL};
  for (const auto version : versions) {
    const auto m = db.stepwise({"migrate-to", std::to_string(version)});
    ASSERT_EQ(m.exit_code, 0) << m.err;
    for (const auto& r : ranges) {
      SCOPED_TRACE(testing::Message() << "database at " << version << ", --release " << r.release);
      const auto v = validate(db, {}, {"--release", r.release});
      ASSERT_TRUE(v.doc.is_object()) << v.summary();
      EXPECT_EQ(v.doc["expected_min"], r.min);
      EXPECT_EQ(v.doc["expected_max"], r.max);
      const int want = version < r.min ? 10 : version > r.max ? 11 : 0;
      EXPECT_EQ(v.exit_code, want) << v.summary();
      const std::set<std::string> kinds = want == 10   ? std::set<std::string>{"behind"}
                                          : want == 11 ? std::set<std::string>{"ahead"}
                                                       : std::set<std::string>{};
      EXPECT_EQ(v.kinds(), kinds) << v.summary();
    }
  }
  // Drift is checked against the expected schema of the database's version, also with --release.
  ASSERT_EQ(db.stepwise({"migrate-to", "20240215120000"}).exit_code, 0);
  db.query("ALTER TABLE tasks ADD COLUMN note text");
  const auto drift = validate(db, {}, {"--release", "1.1.0"});
  EXPECT_EQ(drift.exit_code, 14) << drift.summary();
  EXPECT_NE(drift.find("drift", "column public.tasks.note unexpected"), nullptr) << drift.summary();
}

TEST(ValidateRelease, RangeExtendsToTheNewestLaterReleaseThatRunsOnThisOnesSchema) {
  REQUIRE_TEST_DATABASE();
  TestDb db;
  MigrationDir dir;
  for (int i = 1; i <= 4; ++i) {
    dir.write(std::to_string(i) + "_t" + std::to_string(i) + ".up.sql",
              "CREATE TABLE t" + std::to_string(i) + " (id int);");
    dir.write(std::to_string(i) + "_t" + std::to_string(i) + ".down.sql",
              "DROP TABLE t" + std::to_string(i) + ";");
  }
  // a runs on 1; b (2) still runs on 1, so a's code fits schema 2; c (3) needs 2, so b's code
  // fits 3 but a's does not; d (4) needs 4.
  dir.write("releases.json", R"({"releases": [
    {"name": "a", "schema": 1, "min_schema": 1},
    {"name": "b", "schema": 2, "min_schema": 1},
    {"name": "c", "schema": 3, "min_schema": 2},
    {"name": "d", "schema": 4, "min_schema": 4}]})");
  struct Case {
    long long db_version;
    const char* release;
    long long min, max;
    int exit_code;
  };
  const Case cases[] = {{2, "a", 1, 2, 0},  {2, "b", 1, 3, 0},  {2, "c", 2, 3, 0},
                        {2, "d", 4, 4, 10}, {3, "a", 1, 2, 11}, {3, "b", 1, 3, 0},
                        {3, "c", 2, 3, 0},  {3, "d", 4, 4, 10}, {1, "a", 1, 2, 0},
                        {1, "c", 2, 3, 10}};
  for (const auto& c : cases) {
    SCOPED_TRACE(testing::Message()
                 << "database at " << c.db_version << ", --release " << c.release);
    ASSERT_EQ(
        db.stepwise({"--source", dir.path(), "migrate-to", std::to_string(c.db_version)}).exit_code,
        0);
    const auto v = validate(db, {"--source", dir.path()}, {"--release", c.release});
    ASSERT_TRUE(v.doc.is_object()) << v.summary();
    EXPECT_EQ(v.doc["expected_min"], c.min);
    EXPECT_EQ(v.doc["expected_max"], c.max);
    EXPECT_EQ(v.exit_code, c.exit_code) << v.summary();
  }
}

TEST(ValidateRelease, UnknownReleaseIsRefused) {
  REQUIRE_TEST_DATABASE();
  TestDb db;
  ASSERT_EQ(db.stepwise({"up"}).exit_code, 0);
  const auto r = db.stepwise({"validate", "--release", "9.9.9"});
  EXPECT_EQ(r.exit_code, 6) << r.err;
  EXPECT_NE(r.err.find("--release \"9.9.9\": not a release in releases.json"), std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("1.0.0, 1.1.0, 2.0.0"), std::string::npos) << r.err;
}

// ---------------------------------------------------------------------------------------------
// Read-only: a role with CONNECT, USAGE and SELECT only; no write and no lock.

class ReadOnlyRole {
 public:
  explicit ReadOnlyRole(const TestDb& db) : db_(db), name_("ro_" + db.name()) {
    {
      pqxx::connection c(admin_url());
      pqxx::nontransaction w(c);
      w.exec("CREATE ROLE " + name_ + " LOGIN PASSWORD '" + kPassword + "'");
    }
    db_.query("REVOKE ALL ON DATABASE " + db.name() +
              " FROM PUBLIC;"
              " REVOKE CREATE ON SCHEMA public FROM PUBLIC;"
              " GRANT CONNECT ON DATABASE " +
              db.name() + " TO " + name_ +
              ";"
              " GRANT USAGE ON SCHEMA public TO " +
              name_ +
              ";"
              " GRANT SELECT ON ALL TABLES IN SCHEMA public TO " +
              name_ +
              ";"
              " ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO " +
              name_);
    // postgres://user:password@host... -> postgres://<role>:<password>@host...
    const auto& u = db.url();
    const auto scheme = u.find("://") + 3;
    url_ = u.substr(0, scheme) + name_ + ":" + kPassword + u.substr(u.find('@', scheme));
  }
  ~ReadOnlyRole() {
    try {
      db_.query("ALTER DEFAULT PRIVILEGES IN SCHEMA public REVOKE SELECT ON TABLES FROM " + name_ +
                "; DROP OWNED BY " + name_);
      pqxx::connection c(admin_url());
      pqxx::nontransaction w(c);
      w.exec("DROP ROLE IF EXISTS " + name_);
    } catch (...) {
    }
  }
  ReadOnlyRole(const ReadOnlyRole&) = delete;
  ReadOnlyRole& operator=(const ReadOnlyRole&) = delete;
  [[nodiscard]] const std::string& url() const { return url_; }
  [[nodiscard]] const std::string& name() const { return name_; }

 private:
  static constexpr const char* kPassword = "ro-secret";
  const TestDb& db_;
  std::string name_;
  std::string url_;
};

// n_tup_ins, n_tup_upd, n_tup_del of the log table, once the statistics have settled (a
// finished backend flushes its counters as it exits).
std::string log_write_stats(const TestDb& db) {
  const auto read = [&] {
    return db.scalar(
        "SELECT n_tup_ins || '/' || n_tup_upd || '/' || n_tup_del FROM pg_stat_user_tables"
        " WHERE relid = 'public.stepwise_log'::regclass");
  };
  auto last = read();
  for (int i = 0; i < 20; ++i) {
    std::this_thread::sleep_for(250ms);
    const auto now = read();
    if (now == last) return now;
    last = now;
  }
  return last;
}

TEST(ValidateReadOnly, ValidatesAndReportsDriftWithSelectRightsOnly) {
  REQUIRE_TEST_DATABASE();
  TestDb db;
  ASSERT_EQ(db.stepwise({"up"}).exit_code, 0);
  ReadOnlyRole ro(db);
  // The role really cannot write.
  {
    pqxx::connection c(ro.url());
    pqxx::nontransaction w(c);
    EXPECT_THROW(w.exec("DELETE FROM stepwise_log WHERE false"), pqxx::sql_error);
    EXPECT_THROW(w.exec("CREATE TABLE probe (id int)"), pqxx::sql_error);
  }
  const auto before = log_write_stats(db);
  // The monitoring role's own grants are drift (privileges are compared)...
  const auto granted = validate_at(ro.url(), {}, {});
  EXPECT_EQ(granted.exit_code, 14) << granted.summary();
  EXPECT_NE(granted.find("drift", "default_acl public.(migrator) on tables unexpected"), nullptr)
      << granted.summary();
  // ... that an environment where they legitimately differ ignores by kind.
  const auto ok = validate_at(ro.url(), {}, {"--ignore", "kind:grant"});
  EXPECT_EQ(ok.exit_code, 0) << ok.summary();
  EXPECT_EQ(ok.doc["notes"].size(), 0u) << ok.summary() << " (drift was checked)";

  db.query("ALTER TABLE tasks ADD COLUMN note text; DROP INDEX tasks_assignee_id_idx");
  const auto drift = validate_at(ro.url(), {}, {"--ignore", "kind:grant"});
  EXPECT_EQ(drift.exit_code, 14) << drift.summary();
  EXPECT_NE(drift.find("drift", "column public.tasks.note unexpected"), nullptr) << drift.summary();
  EXPECT_NE(drift.find("drift", "index public.tasks.tasks_assignee_id_idx missing"), nullptr)
      << drift.summary();
  EXPECT_EQ(drift.doc["findings"].size(), 2u) << drift.summary();
  EXPECT_EQ(log_write_stats(db), before) << "validate wrote to the log table";
}

TEST(ValidateReadOnly, OwnerRunWritesNothingEvenInAReadOnlySession) {
  REQUIRE_TEST_DATABASE();
  TestDb db;
  ASSERT_EQ(db.stepwise({"up"}).exit_code, 0);
  const auto before = log_write_stats(db);
  // With every transaction read-only, any write validate attempted would fail it.
  const auto v =
      validate_at(db.url(), {}, {}, {{"PGOPTIONS", "-c default_transaction_read_only=on"}});
  EXPECT_EQ(v.exit_code, 0) << v.summary();
  db.query("ALTER TABLE tasks ADD COLUMN note text");
  const auto d =
      validate_at(db.url(), {}, {}, {{"PGOPTIONS", "-c default_transaction_read_only=on"}});
  EXPECT_EQ(d.exit_code, 14) << d.summary();
  EXPECT_EQ(validate(db).exit_code, 14);
  EXPECT_EQ(log_write_stats(db), before) << "validate wrote to the log table";
}

TEST(ValidateReadOnly, WaitTakesNoLockAndWritesNothing) {
  REQUIRE_TEST_DATABASE();
  TestDb db;
  MigrationDir partial;
  copy_example(partial, 20240215120000LL);
  ASSERT_EQ(db.stepwise({"--source", partial.path(), "up"}).exit_code, 0);
  ReadOnlyRole ro(db);
  const auto before = log_write_stats(db);
  // Behind: the waiter polls (history and drift) until its timeout.
  Process p(stepwise_cmd({"--database-url", ro.url(), "validate", "--wait", "--timeout", "4s"}),
            {{"STEPWISE_DATABASE_URL", ""}, {"DATABASE_URL", ""}});
  int seen_waiter = 0;
  long long advisory = 0;
  // Watch until the waiter has been seen polling for a while; under a loaded CI machine its
  // start and connection alone can take seconds.
  const auto deadline = std::chrono::steady_clock::now() + 15s;
  while (std::chrono::steady_clock::now() < deadline && seen_waiter < 20) {
    const auto rows =
        db.query("SELECT (SELECT count(*) FROM pg_stat_activity WHERE usename = '" + ro.name() +
                 "'), (SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND database = "
                 "(SELECT oid FROM pg_database WHERE datname = current_database()))");
    seen_waiter += std::stoi(rows[0][0]) > 0 ? 1 : 0;
    advisory = std::max(advisory, std::stoll(rows[0][1]));
    std::this_thread::sleep_for(50ms);
  }
  const auto r = p.wait(20s);
  EXPECT_EQ(r.exit_code, 15) << r.out << r.err;
  EXPECT_GT(seen_waiter, 0) << "the waiter's session was never seen";
  EXPECT_EQ(advisory, 0) << "validate --wait took an advisory lock";
  EXPECT_EQ(log_write_stats(db), before) << "validate --wait wrote to the log table";
}

// ---------------------------------------------------------------------------------------------
// --wait.

TEST(ValidateWait, WaitsUntilAnotherRunnerHasMigrated) {
  REQUIRE_TEST_DATABASE();
  TestDb db;
  Process waiter(
      stepwise_cmd({"--database-url", db.url(), "validate", "--wait", "--timeout", "30s"}),
      {{"STEPWISE_DATABASE_URL", ""}, {"DATABASE_URL", ""}});
  std::this_thread::sleep_for(1500ms);
  const auto u = db.stepwise({"up"});
  ASSERT_EQ(u.exit_code, 0) << u.err;
  const auto r = waiter.wait(40s);
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.err.find("waiting for the database to reach this build"), std::string::npos) << r.err;
  EXPECT_NE(r.out.find("valid: database version 20240315100000"), std::string::npos) << r.out;
  EXPECT_LT(r.took.count(), 15000);
}

TEST(ValidateWait, TimesOutWithItsOwnExitCode) {
  REQUIRE_TEST_DATABASE();
  TestDb db;
  const auto r = db.stepwise({"validate", "--wait", "--timeout", "1s"}, {}, 20s);
  EXPECT_EQ(r.exit_code, 15) << r.out << r.err;
  EXPECT_NE(r.err.find("the database did not validate within 1.0s"), std::string::npos) << r.err;
  EXPECT_GE(r.took.count(), 900);
  EXPECT_LT(r.took.count(), 5000);
  EXPECT_EQ(db.count("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"), 0);
}

// Another pod is in the middle of a no-transaction step (its first statement committed, the
// second still running): the replica must keep waiting, not judge the half-migrated schema
// against the expected description of the previous version.
TEST(ValidateWait, WaitsThroughANoTransactionStepInProgress) {
  REQUIRE_TEST_DATABASE();
  TestDb db;
  MigrationDir dir;
  copy_example(dir, 0, false);
  // Slow only outside generate-expected's scratch database.
  dir.write("20240401090000_audit_log.up.sql",
            "-- stepwise:no-transaction\n"
            "CREATE TABLE IF NOT EXISTS audit_log (id bigint, note text);\n"
            "SELECT pg_sleep(CASE WHEN current_database() LIKE 'stepwise\\_scratch%' THEN 0 ELSE 4 "
            "END);\n");
  const auto g = db.stepwise({"--log-level", "warn", "--source", dir.path(), "generate-expected",
                              "--out", dir.path() + "/expected"});
  ASSERT_EQ(g.exit_code, 0) << g.out << g.err;
  ASSERT_EQ(db.stepwise({"--source", dir.path(), "migrate-to", "20240315100000"}).exit_code, 0);
  Process up(stepwise_cmd({"--database-url", db.url(), "--source", dir.path(), "up"}),
             {{"STEPWISE_DATABASE_URL", ""}, {"DATABASE_URL", ""}});
  // Wait until the step's first statement has committed and the second runs.
  bool sleeping = false;
  for (int i = 0; i < 200 && !sleeping; ++i) {
    sleeping = db.count(
                   "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND"
                   " state = 'active' AND pid <> pg_backend_pid() AND query LIKE '%SELECT "
                   "pg_sleep(CASE%'") > 0;
    if (!sleeping) std::this_thread::sleep_for(25ms);
  }
  ASSERT_TRUE(sleeping) << up.stderr_so_far();
  ASSERT_EQ(db.count("SELECT count(*) FROM pg_tables WHERE tablename = 'audit_log'"), 1);
  const auto w =
      db.stepwise({"--source", dir.path(), "validate", "--wait", "--timeout", "30s"}, {}, 40s);
  const auto u = up.wait(40s);
  EXPECT_EQ(u.exit_code, 0) << u.err;
  EXPECT_EQ(w.exit_code, 0) << "the waiter gave up while another runner was migrating\n"
                            << w.out << w.err;
  EXPECT_GE(w.took.count(), 2000) << "it did wait";
}

TEST(ValidateWait, DriftIsNotWaitedFor) {
  REQUIRE_TEST_DATABASE();
  TestDb db;
  ASSERT_EQ(db.stepwise({"up"}).exit_code, 0);
  db.query("ALTER TABLE tasks ADD COLUMN note text");
  const auto r = db.stepwise({"validate", "--wait", "--timeout", "30s"}, {}, 40s);
  EXPECT_EQ(r.exit_code, 14) << r.out << r.err;
  EXPECT_LT(r.took.count(), 10000);
}

// ---------------------------------------------------------------------------------------------
// The committed expected schemas match what the migrations produce.

TEST(ValidateExpected, CommittedExpectedSchemasAreFresh) {
  REQUIRE_TEST_DATABASE();
  TestDb db;
  MigrationDir out;
  const auto r = db.stepwise({"--log-level", "warn", "--source", STEPWISE_MIGRATIONS_DIR,
                              "generate-expected", "--out", out.path()});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  const fs::path committed = fs::path(STEPWISE_MIGRATIONS_DIR) / "expected";
  std::set<std::string> fresh_names, committed_names;
  for (const auto& e : fs::directory_iterator(out.path()))
    fresh_names.insert(e.path().filename().string());
  for (const auto& e : fs::directory_iterator(committed))
    if (e.path().extension() == ".json") committed_names.insert(e.path().filename().string());
  const char* hint =
      "the committed expected schemas are stale: run scripts/refresh-expected.sh and commit the "
      "result";
  EXPECT_EQ(fresh_names, committed_names) << hint;
  for (const auto& name : fresh_names) {
    if (!committed_names.count(name)) continue;
    EXPECT_TRUE(slurp(fs::path(out.path()) / name) == slurp(committed / name))
        << "migrations/expected/" << name << " differs from a fresh generation; " << hint;
  }
}

}  // namespace
}  // namespace stepwise::test
