// The engine seam without a server: detection, retry classification, CockroachDB normalisation.
#include <gtest/gtest.h>

#include "stepwise/engine.hpp"
#include "stepwise/errors.hpp"
#include "stepwise/schema.hpp"

namespace stepwise {
namespace {

// Answers the detection query with a scripted row.
class DetectConnection final : public Connection {
 public:
  explicit DetectConnection(Row row) : row_(std::move(row)) {}
  Rows execute(std::string_view) override { return {}; }
  Rows query(std::string_view sql, const Params&) override {
    last_sql = std::string(sql);
    return {row_};
  }
  std::string quote_identifier(std::string_view n) override { return "\"" + std::string(n) + "\""; }
  std::string quote_literal(std::string_view v) override { return "'" + std::string(v) + "'"; }
  void cancel() noexcept override {}
  int backend_pid() const override { return 1; }
  void on_notice(std::function<void(std::string_view)>) override {}
  std::string last_sql;

 private:
  Row row_;
};

TEST(Engine, ParsesNamesAndRejectsOthers) {
  EXPECT_EQ(parse_engine("postgres"), EngineKind::kPostgres);
  EXPECT_EQ(parse_engine("postgresql"), EngineKind::kPostgres);
  EXPECT_EQ(parse_engine("cockroachdb"), EngineKind::kCockroach);
  EXPECT_EQ(parse_engine("crdb"), EngineKind::kCockroach);
  EXPECT_FALSE(parse_engine("auto"));
  EXPECT_FALSE(parse_engine("mysql"));
  EXPECT_FALSE(parse_engine(""));
  EXPECT_EQ(to_string(EngineKind::kCockroach), "cockroachdb");
}

TEST(Engine, DetectsPostgresWhenCrdbVersionIsUnset) {
  DetectConnection c({std::nullopt, "15.18"});
  const auto e = detect_engine(c, std::nullopt);
  EXPECT_EQ(e.kind(), EngineKind::kPostgres);
  EXPECT_FALSE(e.cockroach_server);
  EXPECT_EQ(e.server_version, "PostgreSQL 15.18");
  EXPECT_NE(c.last_sql.find("current_setting('crdb_version', true)"), std::string::npos);
  EXPECT_FALSE(e.rules().statement_by_statement());
  EXPECT_EQ(e.rules().choose_lock(LockStrategy::kAuto, false), LockKind::kAdvisory);
  EXPECT_EQ(e.rules().session_setup(), "");
}

// One query also tells a hot standby and read-only sessions apart (no extra round trip).
TEST(Engine, DetectsHotStandbyAndReadOnlySessionsInTheSameQuery) {
  const auto detect = [](Row row) {
    DetectConnection c(std::move(row));
    auto e = detect_engine(c, std::nullopt);
    EXPECT_NE(c.last_sql.find("transaction_read_only"), std::string::npos) << c.last_sql;
    return e;
  };
  // in_hot_standby, transaction_read_only, default_transaction_read_only
  auto e = detect({std::nullopt, "15.18", "off", "off", "off"});
  EXPECT_FALSE(e.hot_standby);
  EXPECT_FALSE(e.read_only_session);
  e = detect({std::nullopt, "15.18", "on", "on", "off"});
  EXPECT_TRUE(e.hot_standby);
  EXPECT_FALSE(e.read_only_session);
  e = detect({std::nullopt, "15.18", "off", "on", "on"});  // ALTER DATABASE ... SET ... = on
  EXPECT_FALSE(e.hot_standby);
  EXPECT_TRUE(e.read_only_session);
  e = detect({std::nullopt, "12.9", std::nullopt, "on", "off"});  // a standby before PG 14
  EXPECT_TRUE(e.hot_standby);
  e = detect({std::nullopt, "12.9", std::nullopt, std::nullopt, std::nullopt});
  EXPECT_FALSE(e.hot_standby);
  EXPECT_FALSE(e.read_only_session);
}

TEST(Engine, DetectsCockroach) {
  DetectConnection c({"CockroachDB CCL v25.2.0 (x86_64-pc-linux-gnu)", "13.0.0"});
  const auto e = detect_engine(c, std::nullopt);
  EXPECT_EQ(e.kind(), EngineKind::kCockroach);
  EXPECT_TRUE(e.cockroach_server);
  EXPECT_TRUE(e.rules().statement_by_statement());
  EXPECT_EQ(e.rules().choose_lock(LockStrategy::kAuto, false), LockKind::kLease);
  EXPECT_TRUE(e.rules().partial_catalog());
  EXPECT_EQ(e.rules().session_setup(), "SET autocommit_before_ddl = false");
}

TEST(Engine, ForcedCockroachOnPostgresUsesItsRulesWithoutItsSettings) {
  DetectConnection c({"", "15.18"});
  const auto e = detect_engine(c, EngineKind::kCockroach);
  EXPECT_EQ(e.kind(), EngineKind::kCockroach);
  EXPECT_FALSE(e.cockroach_server);
  EXPECT_TRUE(e.rules().statement_by_statement());
  EXPECT_EQ(e.rules().choose_lock(LockStrategy::kAuto, false), LockKind::kLease);
  EXPECT_EQ(e.rules().session_setup(), "") << "autocommit_before_ddl does not exist on PostgreSQL";
}

TEST(Engine, ForcedPostgresOnCockroachKeepsPostgresRules) {
  DetectConnection c({"CockroachDB CCL v24.1.0", "13.0.0"});
  const auto e = detect_engine(c, EngineKind::kPostgres);
  EXPECT_EQ(e.kind(), EngineKind::kPostgres);
  EXPECT_TRUE(e.cockroach_server);
  EXPECT_FALSE(e.rules().statement_by_statement());
}

TEST(RetryClassification, RetriesContentionAndLockTimeoutsOnly) {
  EXPECT_EQ(classify_retry("40001"),
            Retry::kSerialization);  // serialization failure / CRDB restart
  EXPECT_EQ(classify_retry("40P01"), Retry::kSerialization);  // deadlock
  EXPECT_EQ(classify_retry("55P03"), Retry::kLockTimeout);
  EXPECT_EQ(classify_retry("40003"), Retry::kNo);  // completion unknown: look, do not guess
  EXPECT_EQ(classify_retry("XXA00"), Retry::kNo);  // CRDB: committed, schema change failed
  EXPECT_EQ(classify_retry("0A000"), Retry::kNo);  // feature not supported
  EXPECT_EQ(classify_retry("42601"), Retry::kNo);  // syntax error
  EXPECT_EQ(classify_retry("57014"), Retry::kNo);  // query cancelled (a signal)
  EXPECT_EQ(classify_retry(""), Retry::kNo);
}

TEST(CockroachNormalisation, TypeSpellings) {
  EXPECT_EQ(normalize_cockroach_type("INT8"), "bigint");
  EXPECT_EQ(normalize_cockroach_type("int"), "bigint");
  EXPECT_EQ(normalize_cockroach_type("int4"), "integer");
  EXPECT_EQ(normalize_cockroach_type("json"), "jsonb");
  EXPECT_EQ(normalize_cockroach_type("STRING"), "text");
  EXPECT_EQ(normalize_cockroach_type("string[]"), "text[]");
  EXPECT_EQ(normalize_cockroach_type("timestamptz"), "timestamp with time zone");
  EXPECT_EQ(normalize_cockroach_type("bool"), "boolean");
  EXPECT_EQ(normalize_cockroach_type("numeric(10,2)"), "numeric(10,2)");
  EXPECT_EQ(normalize_cockroach_type("public.task_status"), "public.task_status");
}

TEST(CockroachNormalisation, HiddenRowidKeyIsDroppedAndTypesRewritten) {
  SchemaDescription d;
  d.objects.push_back(
      {"column", "public", "t", "rowid", {{"type", "int8"}, {"default", "unique_rowid()"}}});
  d.objects.push_back({"column", "public", "t", "v", {{"type", "STRING"}}});
  d.objects.push_back({"column", "public", "t", "doc", {{"type", "json"}}});
  d.objects.push_back(
      {"constraint", "public", "t", "t_pkey", {{"definition", "PRIMARY KEY (rowid ASC)"}}});
  d.objects.push_back(
      {"constraint", "public", "u", "u_pkey", {{"definition", "PRIMARY KEY (id ASC)"}}});
  d.objects.push_back(
      {"column", "public", "u", "rowid", {{"type", "int8"}, {"default", "nextval('s')"}}});
  normalize_cockroach(d);
  std::vector<std::string> names;
  for (const auto& o : d.objects)
    names.push_back(o.kind + ":" + o.table + "." + o.name + ":" + o.attr("type"));
  EXPECT_EQ(names, (std::vector<std::string>{"column:t.doc:jsonb", "column:t.v:text",
                                             "column:u.rowid:bigint", "constraint:u.u_pkey:"}));
}

}  // namespace
}  // namespace stepwise
