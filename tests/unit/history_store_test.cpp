// The SQL the history store writes for the runner, read back from a fake connection that
// answers like the server would: the log table's DDL and layout upgrades, the one-round-trip
// step transaction, the attempt rows. The runner's own behaviour is tested over an in-memory
// attempt log in runner_test.cpp.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <deque>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include "runner_fakes.hpp"
#include "stepwise/database.hpp"
#include "stepwise/errors.hpp"
#include "stepwise/history_store.hpp"
#include "stepwise/lock.hpp"
#include "stepwise/runner.hpp"

namespace stepwise {
namespace {

using test_fakes::FakeLock;
using test_fakes::RecordingReporter;
using test_fakes::throw_if_failing;
using test_fakes::Trace;

// ------------------------------------------------------------------ fakes

bool is_log_read(std::string_view sql) {
  return sql.starts_with("SELECT id, version");
}
// The no-op check (HistoryStore::matches): one row, whatever the log's length. The summary's
// statement holds the digest of the log as its fallback branch; the plain digest is the
// statement for a log without a summary.
bool is_summary_query(std::string_view sql) {
  return sql.starts_with("SELECT r.log IS NOT NULL, CASE WHEN ");
}
bool is_plain_digest_query(std::string_view sql) {
  return sql.starts_with(
      "SELECT CASE WHEN pg_catalog.bool_and((direction) OPERATOR(pg_catalog.=) ('up') AND "
      "(outcome) OPERATOR(pg_catalog.=) ('succeeded'))");
}
bool is_digest_query(std::string_view sql) {
  return is_summary_query(sql) || is_plain_digest_query(sql);
}
bool is_summary_check(std::string_view sql) {
  return sql.starts_with(
      "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_sequence");
}
// The summary's refresh after the last step: a transaction of its own, not a step's.
bool is_summary_refresh(std::string_view sql) {
  return sql.starts_with("BEGIN ISOLATION LEVEL READ COMMITTED;\nSET LOCAL lock_timeout");
}
bool contains(std::string_view hay, std::string_view needle) {
  return hay.find(needle) != std::string_view::npos;
}
// The catalog questions and the summary's upkeep: neither a step nor a log write.
bool is_catalog_or_summary(std::string_view sql) {
  return (sql.starts_with("SELECT ") && contains(sql, "pg_catalog")) || is_summary_refresh(sql) ||
         contains(sql, "CREATE SEQUENCE IF NOT EXISTS");
}
// "WHERE id = <id>" as the log store writes it (PostgreSQL's own `=`).
std::string where_id(long long id) {
  return "WHERE (id) OPERATOR(pg_catalog.=) (" + std::to_string(id) + ")";
}

// One row of the log table, by column name; rendered in whatever column order a query asks for.
using Record = std::map<std::string, Field>;
using Records = std::vector<Record>;

// The column expressions of "SELECT a, f(b, 'x, y'), c FROM ...", split at top-level commas.
std::vector<std::string> select_columns(std::string_view sql) {
  sql.remove_prefix(std::string_view("SELECT ").size());
  sql = sql.substr(0, sql.rfind(" FROM "));
  std::vector<std::string> out;
  std::string cur;
  int depth = 0;
  bool quoted = false;
  for (char c : sql) {
    if (c == '\'') quoted = !quoted;
    if (!quoted && c == '(') ++depth;
    if (!quoted && c == ')') --depth;
    if (!quoted && depth == 0 && c == ',') {
      out.push_back(cur);
      cur.clear();
      continue;
    }
    cur += c;
  }
  out.push_back(cur);
  for (auto& col : out) {
    const auto b = col.find_first_not_of(' ');
    col = col.substr(b == std::string::npos ? 0 : b);
  }
  return out;
}

// Which log column a select expression reads.
std::string column_key(const std::string& expr) {
  if (expr.find("started_at") != std::string::npos) return "started_at";
  if (expr.find("finished_at") != std::string::npos) return "finished_at";
  return expr;
}

// A Connection that records every SQL text and answers from a script.
class FakeConnection final : public Connection {
 public:
  explicit FakeConnection(Trace& trace) : trace_(trace) {}

  // Each read of the log table takes the next answer; the last one repeats.
  std::deque<std::variant<Records, DbError>> log_reads;
  bool schema_exists = true;
  bool table_exists = true;
  std::string version_type = "text";  // the log's version column (format 2)
  bool has_origin = true;             // the log's origin column (format 3)
  using Failure = test_fakes::Failure;
  std::vector<Failure> failures;
  long long next_id = 500;

  std::vector<std::string> sent;  // every SQL text, execute and query alike
  int commits = 0;                // texts ending in COMMIT that the fake server accepted
  std::vector<Params> query_params;

  // The log's digest as the server computes it: (newest attempts all succeeded ups, digest);
  // none: no rows.
  std::optional<std::pair<std::string, std::string>> digest_answer;
  // The no-op summary: its sequences, function and triggers are in place (ensure_table
  // creates none), and it answers for the log as digest_answer describes it (current).
  bool summary_in_place = true;
  bool summary_current = true;
  int summary_refreshes = 0;  // the refresh transactions sent

  Rows execute(std::string_view sql) override {
    record(sql);
    if (is_summary_query(sql)) {
      throw_if_failing(failures, sql);  // e.g. an engine without these functions
      // Whether the log exists, and the client's digest when the summary holds its hash.
      const bool answers = table_exists && summary_in_place && summary_current && digest_answer &&
                           digest_answer->first == "t" &&
                           contains(sql, quote_literal(digest_answer->second));
      return {{table_exists ? "t" : "f", answers ? Field(digest_answer->second) : Field()}};
    }
    if (is_plain_digest_query(sql)) {
      if (!digest_answer) return {};
      return {{digest_answer->first == "t" ? Field(digest_answer->second) : Field()}};
    }
    // In place; the role may act as the log's owner; who that is.
    if (is_summary_check(sql)) return {{summary_in_place ? "t" : "f", "t", "stepwise_owner"}};
    if (is_summary_refresh(sql)) {
      ++summary_refreshes;
      return {};
    }
    if (is_log_read(sql)) {
      ++log_reads_done;
      if (log_reads.empty()) return {};
      auto answer = log_reads.front();
      if (log_reads.size() > 1) log_reads.pop_front();
      if (auto* err = std::get_if<DbError>(&answer)) throw *err;
      const auto columns = select_columns(sql);
      Rows rows;
      for (const auto& record : std::get<Records>(answer)) {
        Row row;
        for (const auto& col : columns) {
          const auto it = record.find(column_key(col));
          EXPECT_NE(it, record.end()) << "the fake log has no column for " << col;
          row.push_back(it == record.end() ? Field() : it->second);
        }
        rows.push_back(std::move(row));
      }
      return rows;
    }
    throw_if_failing(failures, sql);
    if (sql.ends_with("COMMIT")) ++commits;
    if (contains(sql, "RETURNING id")) return {{std::to_string(next_id++)}};
    return {};
  }

  // COPY data blocks handed over with each text (empty for plain execute()).
  std::vector<std::vector<std::string>> copy_blocks;
  Rows execute_with_copy(std::string_view sql, std::span<const std::string> copy_data) override {
    copy_blocks.emplace_back(copy_data.begin(), copy_data.end());
    return execute(sql);
  }

  Rows query(std::string_view sql, const Params& params) override {
    record(sql);
    query_params.push_back(params);
    if (contains(sql, "pg_catalog.pg_namespace"))
      return {{schema_exists ? "t" : "f", table_exists ? "t" : "f",
               table_exists ? Field(version_type) : Field(), Field(),
               table_exists && has_origin ? "t" : "f"}};
    return {};
  }

  std::string quote_identifier(std::string_view name) override {
    return "\"" + std::string(name) + "\"";
  }
  std::string quote_literal(std::string_view value) override {
    std::string out = "'";
    for (char c : value) {
      if (c == '\'') out += '\'';
      out += c;
    }
    return out + "'";
  }
  void cancel() noexcept override {}
  int backend_pid() const override { return 4242; }
  void on_notice(std::function<void(std::string_view)> handler) override {
    notice_ = std::move(handler);
  }

  int log_reads_done = 0;

  [[nodiscard]] std::size_t count_if(const std::function<bool(const std::string&)>& pred) const {
    return static_cast<std::size_t>(std::count_if(sent.begin(), sent.end(), pred));
  }

 private:
  void record(std::string_view sql) {
    sent.emplace_back(sql);
    trace_.events.push_back("sql: " + std::string(sql));
  }
  Trace& trace_;
  std::function<void(std::string_view)> notice_;
};

// ------------------------------------------------------------------ helpers

MigrationFile file(std::string name, std::string bytes) {
  MigrationFile f;
  f.name = std::move(name);
  f.bytes = std::move(bytes);
  return f;
}

Record log_row(long long id, Version v, std::string name, std::string_view direction,
               std::string_view outcome, std::string checksum, int done = 1) {
  const bool running = outcome == "running";
  return Record{{"id", std::to_string(id)},
                {"version", v.to_string()},
                {"name", std::move(name)},
                {"direction", std::string(direction)},
                {"outcome", std::string(outcome)},
                {"checksum", std::move(checksum)},
                {"statements_done", std::to_string(done)},
                {"started_at", "2024-01-01T00:00:00.000Z"},
                {"finished_at", running ? Field() : Field("2024-01-01T00:00:01.000Z")},
                {"error", Field()},
                {"sqlstate", Field()}};
}

DbError missing_table() {
  return DbError("relation \"public.stepwise_log\" does not exist", "42P01");
}

constexpr const char* kSqlA = "CREATE TABLE a (id int);\n";
constexpr const char* kSqlB = "CREATE TABLE b (id int);\nINSERT INTO b VALUES (1);\n";
constexpr const char* kSqlC = "CREATE TABLE c (id int);\n";
constexpr const char* kNoTx =
    "-- stepwise:no-transaction\n"
    "CREATE INDEX CONCURRENTLY i1 ON a (id);\n"
    "CREATE INDEX CONCURRENTLY i2 ON b (id);\n"
    "\n"
    "CREATE INDEX CONCURRENTLY i3 ON c (id);\n";

class HistoryStoreSqlTest : public ::testing::Test {
 protected:
  Trace trace;
  FakeConnection conn{trace};
  FakeLock lock{trace};
  RecordingReporter reporter;
  HistoryStore store{conn, TableName{"public", "stepwise_log"},
                     RunnerIdentity{"host-1", 77, "9.9.9"}};
  Runner runner{conn, store, lock, reporter};

  MigrationSet set = build_migration_set(
      std::vector<MigrationFile>{file("1_a.up.sql", kSqlA), file("1_a.down.sql", "DROP TABLE a;\n"),
                                 file("2_b.up.sql", kSqlB), file("3_c.up.sql", kSqlC)});

  Record applied_row(long long id, Version v) {
    const auto* m = set.find(v);
    return log_row(id, v, std::string(m->name), "up", "succeeded", std::string(m->up.checksum));
  }
  Records all_applied() { return {applied_row(1, 1), applied_row(2, 2), applied_row(3, 3)}; }

  std::size_t index_of(std::string_view event, std::size_t from = 0) const {
    for (std::size_t i = from; i < trace.events.size(); ++i)
      if (trace.events[i] == event) return i;
    return std::string::npos;
  }
  std::size_t index_where(const std::function<bool(const std::string&)>& pred,
                          std::size_t from = 0) const {
    for (std::size_t i = from; i < trace.events.size(); ++i)
      if (pred(trace.events[i])) return i;
    return std::string::npos;
  }
  // `up` with the no-op check asked for whatever the set's size.
  RunResult run_noop(bool dry_run = false) {
    RunOptions o;
    o.digest_from = 1;
    o.dry_run = dry_run;
    return runner.run(set, o);
  }
  std::string dump() const {
    std::string out;
    for (const auto& e : trace.events) out += "  " + e + "\n";
    return out;
  }
};

bool is_begin(const std::string& sql) {
  return sql.starts_with("BEGIN;");
}
bool is_commit(const std::string& sql) {
  return sql.ends_with("COMMIT");
}

std::vector<Version> applied_versions(const RunResult& r) {
  std::vector<Version> out;
  for (const auto& a : r.applied) out.push_back(a.version);
  return out;
}

// ------------------------------------------------------------------ the no-op path

TEST_F(HistoryStoreSqlTest, NoOpSendsExactlyOneStatementAndNeverTouchesTheLock) {
  conn.digest_answer = {{"t", set.log_digest()}};
  const auto result = run_noop();
  ASSERT_EQ(conn.sent.size(), 1u) << dump();
  EXPECT_TRUE(is_summary_query(conn.sent[0])) << conn.sent[0];
  EXPECT_EQ(lock.attempts, 0);
  EXPECT_EQ(trace.events.size(), 1u) << dump();
  EXPECT_FALSE(result.took_lock);
  EXPECT_TRUE(result.plan.empty());
  EXPECT_EQ(result.version_after, 3);
}

TEST_F(HistoryStoreSqlTest, ADigestThatDiffersOrNotAllSucceededUpsMeansTheFullRead) {
  for (const auto& answer : {std::pair<std::string, std::string>{"t", "another digest"},
                             std::pair<std::string, std::string>{"f", set.log_digest()}}) {
    conn.sent.clear();
    conn.digest_answer = answer;
    conn.log_reads = {all_applied()};
    const auto result = run_noop();
    // The summary does not answer for this set, the log's own digest differs: the full read.
    ASSERT_EQ(conn.sent.size(), 3u) << dump();
    EXPECT_TRUE(is_summary_query(conn.sent[0])) << conn.sent[0];
    EXPECT_TRUE(is_plain_digest_query(conn.sent[1])) << conn.sent[1];
    EXPECT_TRUE(is_log_read(conn.sent[2])) << conn.sent[2];
    EXPECT_TRUE(contains(conn.sent[2], "FROM \"public\".\"stepwise_log\"")) << conn.sent[2];
    EXPECT_EQ(result.version_after, 3);
  }
}

TEST_F(HistoryStoreSqlTest, AStaleSummaryMeansTheLogIsDigestedOnTheServer) {
  conn.summary_current = false;
  conn.digest_answer = {{"t", set.log_digest()}};
  const auto result = run_noop();
  ASSERT_EQ(conn.sent.size(), 2u) << dump();
  EXPECT_TRUE(is_plain_digest_query(conn.sent[1])) << conn.sent[1];
  // The newest attempt per version, sorted once in the "C" collation on the server.
  EXPECT_TRUE(contains(conn.sent[1], "version::pg_catalog.text COLLATE \"C\"")) << conn.sent[1];
  EXPECT_TRUE(contains(conn.sent[1], "FROM \"public\".\"stepwise_log\"")) << conn.sent[1];
  EXPECT_TRUE(contains(conn.sent[1], "ORDER BY v, id DESC")) << conn.sent[1];
  EXPECT_EQ(lock.attempts, 0);
  EXPECT_TRUE(result.plan.empty());
}

// The no-op summary: one row answers for the whole log once a run refreshed it.
TEST_F(HistoryStoreSqlTest, ACurrentSummaryAnswersTheNoOpInOneStatement) {
  conn.digest_answer = {{"t", set.log_digest()}};
  const auto result = run_noop();
  ASSERT_EQ(conn.sent.size(), 1u) << dump();
  // The summary holds a hash of the digest, the counter's value and the log's file.
  for (const auto* part :
       {// The sequences are found through the log (OWNED BY two of its columns), not by name.
        // ... and named as the triggers and the refresh name them (a renamed log's old pair is
        // not).
        "pg_catalog.pg_get_serial_sequence('\"public\".\"stepwise_log\"', 'checksum'))) THEN "
        "pg_catalog.to_regclass('\"public\".\"stepwise_log_noop\"') END AS summary",
        "pg_catalog.pg_get_serial_sequence('\"public\".\"stepwise_log\"', 'version'))) THEN "
        "pg_catalog.to_regclass('\"public\".\"stepwise_log_gen\"') END AS counter",
        "pg_catalog.to_regclass('\"public\".\"stepwise_log\"') AS log",
        "END) OPERATOR(pg_catalog.=) (pg_catalog.hashtextextended(",
        // Read only where the role may: no ERROR in the server's log for a missing summary.
        "CASE WHEN pg_catalog.has_table_privilege(r.counter, 'SELECT') THEN "
        "COALESCE(pg_catalog.pg_sequence_last_value(r.counter), 0) END",
        "CASE WHEN pg_catalog.has_table_privilege(r.summary, 'SELECT') THEN "
        "pg_catalog.pg_sequence_last_value(r.summary) END",
        "pg_catalog.pg_relation_filenode(r.log)"})
    EXPECT_TRUE(contains(conn.sent[0], part)) << part << "\n" << conn.sent[0];
  EXPECT_TRUE(contains(conn.sent[0], "'" + set.log_digest() + "'")) << conn.sent[0];
  EXPECT_FALSE(contains(conn.sent[0], "stepwise_log\" WHERE")) << "the log is not read";
  EXPECT_EQ(lock.attempts, 0);
  EXPECT_TRUE(result.plan.empty());
}

TEST_F(HistoryStoreSqlTest, ALogWithoutASummaryIsDigestedOnItsOwn) {
  conn.summary_in_place = false;
  conn.digest_answer = {{"t", set.log_digest()}};
  const auto result = run_noop();
  ASSERT_EQ(conn.sent.size(), 2u) << dump();
  EXPECT_TRUE(is_summary_query(conn.sent[0])) << conn.sent[0];
  EXPECT_TRUE(is_plain_digest_query(conn.sent[1])) << conn.sent[1];
  EXPECT_EQ(lock.attempts, 0);
  EXPECT_TRUE(result.plan.empty());
}

TEST_F(HistoryStoreSqlTest, ASummaryQueryThatFailsFallsBackToTheLogsDigest) {
  // An engine without these functions, a relation of the summary's name that is no sequence.
  conn.failures.push_back({"pg_sequence_last_value", "function does not exist", "42883", 0});
  conn.digest_answer = {{"t", set.log_digest()}};
  const auto result = run_noop();
  ASSERT_EQ(conn.sent.size(), 2u) << dump();
  EXPECT_TRUE(is_plain_digest_query(conn.sent[1])) << conn.sent[1];
  EXPECT_TRUE(result.plan.empty());
}

TEST_F(HistoryStoreSqlTest, NoLogMeansNoDigestQueryButTheRead) {
  // A fresh database: the summary's statement says there is no log; digesting it would only
  // fail on the server.
  conn.table_exists = false;
  conn.log_reads = {Records{}};
  (void)run_noop(/*dry_run=*/true);
  ASSERT_GE(conn.sent.size(), 2u) << dump();
  EXPECT_TRUE(is_summary_query(conn.sent[0])) << conn.sent[0];
  EXPECT_FALSE(is_plain_digest_query(conn.sent[1])) << conn.sent[1];
  for (const auto& s : conn.sent) EXPECT_FALSE(is_plain_digest_query(s)) << s;
}

TEST_F(HistoryStoreSqlTest, TheSummaryIsPutInPlaceAndRefreshedAfterTheLastStep) {
  conn.summary_in_place = false;
  conn.log_reads = {Records{}};
  (void)runner.run(set, RunOptions{});
  const auto create = std::find_if(conn.sent.begin(), conn.sent.end(), [](const std::string& s) {
    return contains(s, "CREATE SEQUENCE IF NOT EXISTS \"public\".\"stepwise_log_gen\" CACHE 1");
  });
  ASSERT_NE(create, conn.sent.end()) << dump();
  for (const auto* part :
       {"SET LOCAL lock_timeout = '1s'", "SECURITY DEFINER SET search_path = pg_catalog, pg_temp",
        // As the log's owner (a member of its group role may), with PostgreSQL's search_path.
        "SET LOCAL search_path = pg_catalog, pg_temp;\nSET LOCAL ROLE \"stepwise_owner\";",
        "AFTER INSERT OR UPDATE OR DELETE ON \"public\".\"stepwise_log\" FOR EACH ROW",
        "AFTER TRUNCATE ON \"public\".\"stepwise_log\" FOR EACH STATEMENT",
        "ENABLE ALWAYS TRIGGER \"stepwise_log_changed\", ENABLE ALWAYS TRIGGER "
        "\"stepwise_log_truncated\"",
        // A summary from before the triggers were (re)created answers for nothing.
        "SELECT pg_catalog.setval('\"public\".\"stepwise_log_noop\"', -9223372036854775808, "
        "false);",
        "SELECT pg_catalog.nextval('\"public\".\"stepwise_log_gen\"');\nCOMMIT",
        // Linked to the log: only its owner can, so the no-op trusts only these two.
        "ALTER SEQUENCE \"public\".\"stepwise_log_gen\" OWNED BY "
        "\"public\".\"stepwise_log\".version;",
        "ALTER SEQUENCE \"public\".\"stepwise_log_noop\" OWNED BY "
        "\"public\".\"stepwise_log\".checksum;",
        "c.relname = TG_TABLE_NAME || '_gen' AND c.relkind = 'S'"})
    EXPECT_TRUE(contains(*create, part)) << part << "\n" << *create;
  // Created before the first step; refreshed once, after the last step's commit.
  const auto first_step = std::find_if(create + 1, conn.sent.end(), is_begin);
  EXPECT_NE(first_step, conn.sent.end()) << dump();
  ASSERT_EQ(conn.summary_refreshes, 1) << dump();
  const auto refresh = std::find_if(conn.sent.begin(), conn.sent.end(),
                                    [](const std::string& s) { return is_summary_refresh(s); });
  const auto last_commit = std::find_if(conn.sent.rbegin(), conn.sent.rend(),
                                        [](const auto& s) { return is_begin(s) && is_commit(s); });
  ASSERT_NE(last_commit, conn.sent.rend());
  EXPECT_GT(refresh, last_commit.base() - 1);
  for (const auto* part : {"LOCK TABLE \"public\".\"stepwise_log\" IN SHARE MODE;",
                           "SELECT pg_catalog.setval('\"public\".\"stepwise_log_noop\"', "
                           "pg_catalog.hashtextextended(pg_catalog.concat_ws(' ', COALESCE((SELECT "
                           "CASE WHEN pg_catalog.bool_and(",
                           "FROM \"public\".\"stepwise_log_gen\" c)", "COMMIT"})
    EXPECT_TRUE(contains(*refresh, part)) << part << "\n" << *refresh;
}

TEST_F(HistoryStoreSqlTest, ASummaryThatCannotBeCreatedChangesNothingElse) {
  // A role that does not own the log may not add a trigger to it: the run goes on without.
  conn.summary_in_place = false;
  conn.failures.push_back({"CREATE TRIGGER", "must be owner", "42501", 0});
  conn.log_reads = {Records{}};
  const auto result = runner.run(set, RunOptions{});
  EXPECT_EQ(applied_versions(result), (std::vector<Version>{1, 2, 3}));
  EXPECT_EQ(conn.summary_refreshes, 0) << dump();
}

TEST_F(HistoryStoreSqlTest, FreshDatabaseAppliesEveryStepUnderTheLock) {
  conn.table_exists = false;
  conn.log_reads = {missing_table(), Records{}};
  const auto result = runner.run(set, RunOptions{});

  EXPECT_EQ(lock.acquired, 1);
  EXPECT_EQ(lock.released, 1);
  EXPECT_TRUE(result.took_lock);
  EXPECT_FALSE(result.done_by_other);
  EXPECT_EQ(applied_versions(result), (std::vector<Version>{1, 2, 3}));
  EXPECT_EQ(result.version_after, 3);
  EXPECT_EQ(conn.log_reads_done, 2);

  // Order: read, lock, read again, check table, create table, steps, release.
  ASSERT_TRUE(is_log_read(trace.events[0].substr(5))) << dump();
  const auto acquire = index_of("lock: acquire");
  ASSERT_EQ(acquire, 1u) << dump();
  const auto create =
      index_where([](const std::string& e) { return contains(e, "CREATE TABLE IF NOT EXISTS"); });
  ASSERT_NE(create, std::string::npos) << dump();
  EXPECT_GT(create, acquire) << dump();
  EXPECT_FALSE(contains(trace.events[create], "CREATE SCHEMA")) << "schema exists";
  const auto reread = index_where([](const std::string& e) { return is_log_read(e.substr(5)); }, 1);
  ASSERT_NE(reread, std::string::npos) << dump();
  EXPECT_GT(reread, acquire) << dump();
  EXPECT_LT(reread, create) << dump();
  // The table's DDL runs in a transaction of its own, with PostgreSQL's search_path alone.
  EXPECT_TRUE(
      contains(trace.events[create], "BEGIN;\nSET LOCAL search_path = pg_catalog, pg_temp;"))
      << trace.events[create];
  const auto first_begin = index_where(
      [](const std::string& e) { return is_begin(e.substr(5)) && !contains(e, "CREATE TABLE"); });
  EXPECT_GT(first_begin, create) << dump();
  EXPECT_EQ(trace.events.back(), "lock: release") << dump();

  // Each transactional step: one round trip with BEGIN, the attempt row, the script, the
  // UPDATE that finishes the attempt and COMMIT.
  std::vector<std::string> steps;
  for (const auto& s : conn.sent)
    if (!is_log_read(s) && !is_digest_query(s) && !is_catalog_or_summary(s) &&
        !contains(s, "CREATE TABLE IF NOT EXISTS"))
      steps.push_back(s);
  ASSERT_EQ(steps.size(), 3u) << dump();
  // With the log empty, the one catalog query also asks for other tools' history tables.
  EXPECT_EQ(conn.count_if([](const std::string& s) {
    return contains(s, "pg_catalog.pg_namespace") && contains(s, "'goose_db_version'");
  }),
            1u)
      << dump();
  const char* scripts[] = {kSqlA, kSqlB, kSqlC};
  for (std::size_t i = 0; i < 3; ++i) {
    const auto& sent = steps[i];
    const auto& m = set.all()[i];
    EXPECT_TRUE(is_begin(sent)) << sent;
    const auto insert = sent.find("INSERT INTO \"public\".\"stepwise_log\"");
    EXPECT_NE(insert, std::string::npos) << sent;
    EXPECT_TRUE(contains(sent, "VALUES ('" + m.version.to_string() + "', '" + std::string(m.name) +
                                   "', 'up', 'succeeded', '" + std::string(m.up.checksum) +
                                   "', 'sha256', 'host-1', 77, '9.9.9') RETURNING id;\n"))
        << sent;
    const auto script = sent.find(scripts[i]);
    const auto update = sent.find("UPDATE \"public\".\"stepwise_log\" SET finished_at");
    EXPECT_LT(insert, script) << sent;
    EXPECT_NE(script, std::string::npos) << sent;
    EXPECT_NE(update, std::string::npos) << sent;
    EXPECT_GT(update, script) << sent;
    EXPECT_TRUE(contains(
        sent,
        "pg_catalog.currval(pg_catalog.pg_get_serial_sequence('\"public\".\"stepwise_log\"', "
        "'id'))"))
        << sent;
    EXPECT_TRUE(is_commit(sent)) << sent;
  }
  EXPECT_EQ(reporter.started, (std::vector<Version>{1, 2, 3}));
  EXPECT_EQ(reporter.finished, (std::vector<Version>{1, 2, 3}));
  EXPECT_EQ(reporter.indexes.back(), (std::pair<std::size_t, std::size_t>{3, 3}));
  EXPECT_EQ(reporter.locks, 1);
}

TEST_F(HistoryStoreSqlTest, OnlyTheLastCommitIsSynchronous) {
  conn.log_reads = {Records{}};
  (void)runner.run(set, RunOptions{});
  std::vector<std::string> begins;
  for (const auto& s : conn.sent)
    if (is_begin(s)) begins.push_back(s);
  ASSERT_EQ(begins.size(), 3u) << dump();
  EXPECT_TRUE(contains(begins[0], "SET LOCAL synchronous_commit = off;")) << begins[0];
  EXPECT_TRUE(contains(begins[1], "SET LOCAL synchronous_commit = off;")) << begins[1];
  EXPECT_FALSE(contains(begins[2], "synchronous_commit")) << begins[2];
}

TEST_F(HistoryStoreSqlTest, CreatesSchemaWhenMissing) {
  HistoryStore ops_store(conn, TableName{"ops", "log"}, RunnerIdentity{"h", 1, "v"});
  Runner ops_runner(conn, ops_store, lock, reporter);
  conn.schema_exists = false;
  conn.table_exists = false;
  conn.log_reads = {DbError("schema \"ops\" does not exist", "3F000"), Records{}};
  const auto result = ops_runner.run(set, RunOptions{});
  EXPECT_EQ(applied_versions(result), (std::vector<Version>{1, 2, 3}));
  const auto create =
      index_where([](const std::string& e) { return contains(e, "CREATE SCHEMA"); });
  ASSERT_NE(create, std::string::npos) << dump();
  EXPECT_TRUE(contains(trace.events[create], "CREATE SCHEMA IF NOT EXISTS \"ops\""))
      << trace.events[create];
  EXPECT_TRUE(contains(trace.events[create], "CREATE TABLE IF NOT EXISTS \"ops\".\"log\""));
  EXPECT_GT(create, index_of("lock: acquire"));
  ASSERT_EQ(conn.query_params.size(), 1u);
  EXPECT_EQ(conn.query_params[0], (Params{"ops", "log"}));
}

TEST_F(HistoryStoreSqlTest, ExistingTableIsNotCreatedAgain) {
  conn.log_reads = {Records{applied_row(1, 1)}};
  (void)runner.run(set, RunOptions{});
  EXPECT_EQ(
      conn.count_if([](const std::string& s) { return contains(s, "CREATE TABLE IF NOT EXISTS"); }),
      0u)
      << dump();
  EXPECT_EQ(
      conn.count_if([](const std::string& s) { return contains(s, "pg_catalog.pg_namespace"); }),
      1u);
}

TEST_F(HistoryStoreSqlTest, FormatOneLogIsUpgradedUnderTheLockBeforeTheFirstStep) {
  conn.version_type = "bigint";  // a log written by the previous layout
  conn.has_origin = false;
  conn.log_reads = {Records{applied_row(1, 1)}};
  (void)runner.run(set, RunOptions{});
  const auto alter = index_where(
      [](const std::string& e) { return contains(e, "ALTER COLUMN version TYPE text"); });
  ASSERT_NE(alter, std::string::npos) << dump();
  const auto& sql = trace.events[alter];
  // One round trip (one implicit transaction on PostgreSQL): type, CHECK, comment.
  EXPECT_TRUE(contains(sql, "USING version::text")) << sql;
  EXPECT_TRUE(contains(sql, "ADD CONSTRAINT \"stepwise_log_version_digits\" CHECK")) << sql;
  EXPECT_TRUE(contains(sql, "ADD COLUMN IF NOT EXISTS origin")) << sql;
  EXPECT_TRUE(contains(sql, "'stepwise attempt log, format 3'")) << sql;
  EXPECT_GT(alter, index_of("lock: acquire"));
  const auto first_step = index_where([](const std::string& e) { return contains(e, "INSERT"); });
  ASSERT_NE(first_step, std::string::npos) << dump();
  EXPECT_LT(alter, first_step);
  EXPECT_EQ(conn.count_if([](const std::string& s) { return contains(s, "ALTER TABLE"); }), 1u);
}

TEST_F(HistoryStoreSqlTest, NoForeignHistoryQueryWhenTheLogHasRows) {
  conn.log_reads = {Records{applied_row(1, 1)}};
  (void)runner.run(set, RunOptions{});
  EXPECT_EQ(conn.count_if([](const std::string& s) { return contains(s, "goose_db_version"); }), 0u)
      << dump();
}

TEST_F(HistoryStoreSqlTest, FormatTwoLogGetsTheOriginColumnsInOneRoundTrip) {
  conn.has_origin = false;  // a format-2 log
  conn.log_reads = {Records{applied_row(1, 1)}};
  (void)runner.run(set, RunOptions{});
  const auto alter = index_where(
      [](const std::string& e) { return contains(e, "ADD COLUMN IF NOT EXISTS origin"); });
  ASSERT_NE(alter, std::string::npos) << dump();
  const auto& sql = trace.events[alter];
  EXPECT_FALSE(contains(sql, "ALTER COLUMN version TYPE")) << sql;
  EXPECT_TRUE(contains(sql, "ADD CONSTRAINT \"stepwise_log_origin_known\" CHECK")) << sql;
  EXPECT_TRUE(contains(sql, "ADD COLUMN IF NOT EXISTS notes text")) << sql;
  EXPECT_TRUE(contains(sql, "'stepwise attempt log, format 3'")) << sql;
  EXPECT_GT(alter, index_of("lock: acquire"));
  EXPECT_EQ(conn.count_if([](const std::string& s) { return contains(s, "ALTER TABLE"); }), 1u);
}

TEST_F(HistoryStoreSqlTest, FormatThreeLogIsNotAltered) {
  conn.log_reads = {Records{applied_row(1, 1)}};
  (void)runner.run(set, RunOptions{});
  EXPECT_EQ(conn.count_if([](const std::string& s) { return contains(s, "ALTER TABLE"); }), 0u)
      << dump();
}

TEST_F(HistoryStoreSqlTest, LogRowsInAnyOrderAreReadInIdOrder) {
  // The server may return the rows in any order: 2 was applied (id 2) and rolled back (id 7).
  auto down = log_row(7, 2, "b", "down", "succeeded", "down-sum");
  conn.log_reads = {Records{down, applied_row(1, 1), applied_row(2, 2)}};
  const auto result = runner.run(set, RunOptions{});
  EXPECT_EQ(applied_versions(result), (std::vector<Version>{2, 3}));
  EXPECT_EQ(result.plan.from, 1);
}

TEST_F(HistoryStoreSqlTest, StatementTimeoutSetLocallyInEachStep) {
  conn.log_reads = {Records{applied_row(1, 1), applied_row(2, 2)}};
  RunOptions o;
  o.statement_timeout = std::chrono::milliseconds(5000);
  (void)runner.run(set, o);
  const auto begin = std::find_if(conn.sent.begin(), conn.sent.end(), is_begin);
  ASSERT_NE(begin, conn.sent.end()) << dump();
  // Transaction-local settings come after BEGIN and before the attempt row and the script.
  EXPECT_TRUE(begin->starts_with("BEGIN;\n")) << *begin;
  const auto setting = begin->find("SET LOCAL statement_timeout = 5000;\n");
  ASSERT_NE(setting, std::string::npos) << *begin;
  EXPECT_LT(setting, begin->find("INSERT INTO")) << *begin;
  EXPECT_EQ(begin->find("SET statement_timeout"), std::string::npos) << "not session-wide";
}

TEST_F(HistoryStoreSqlTest, CommentOnlyStepIsLoggedButSendsNoScript) {
  const auto placeholder = build_migration_set(
      std::vector<MigrationFile>{file("1_reserved.up.sql", "-- reserved for a hotfix\n")});
  conn.log_reads = {Records{}};
  const auto result = runner.run(placeholder, RunOptions{});
  EXPECT_EQ(applied_versions(result), (std::vector<Version>{1}));
  EXPECT_EQ(conn.count_if(is_begin), 1u) << dump();
  EXPECT_EQ(conn.commits, 1u) << dump();
  EXPECT_EQ(
      conn.count_if([](const std::string& s) { return contains(s, "reserved for a hotfix"); }), 0u)
      << dump();
}

TEST_F(HistoryStoreSqlTest, RetryOfRunningAttemptMarksItAbandonedFirst) {
  const auto* m = set.find(3);
  conn.log_reads = {Records{applied_row(1, 1), applied_row(2, 2),
                            log_row(3, 3, "c", "up", "running", std::string(m->up.checksum), 0)}};
  (void)runner.run(set, RunOptions{});
  const auto abandon = index_where([](const std::string& e) {
    return contains(e, "SET outcome = 'abandoned'") &&
           contains(e, where_id(3) + " AND (outcome) OPERATOR(pg_catalog.=) ('running')");
  });
  ASSERT_NE(abandon, std::string::npos) << dump();
  const auto begin = index_where([](const std::string& e) { return is_begin(e.substr(5)); });
  EXPECT_LT(abandon, begin) << dump();
}

// ------------------------------------------------------------------ waiting for the lock

// ------------------------------------------------------------------ failures

TEST_F(HistoryStoreSqlTest, DbErrorRollsBackRecordsFailedAttemptAndThrowsStepFailed) {
  conn.log_reads = {Records{applied_row(1, 1)}};
  // The error is on line 2 of 2_b.up.sql ("INSERT INTO b ...").
  conn.failures.push_back({kSqlB, "relation \"a\" does not exist", "42P01", 2});
  try {
    (void)runner.run(set, RunOptions{});
    FAIL() << "no StepFailed\n" << dump();
  } catch (const StepFailed& e) {
    EXPECT_EQ(e.sqlstate(), "42P01");
    EXPECT_EQ(e.code(), ExitCode::kFailed);
    const std::string msg = e.what();
    EXPECT_TRUE(msg.starts_with("2_b.up.sql:2: ")) << msg;
    EXPECT_TRUE(contains(msg, "relation \"a\" does not exist")) << msg;
    EXPECT_TRUE(contains(msg, "42P01")) << msg;
  }
  const auto script = std::find_if(conn.sent.begin(), conn.sent.end(),
                                   [](const std::string& s) { return contains(s, kSqlB); });
  ASSERT_NE(script, conn.sent.end()) << dump();
  ASSERT_NE(script + 1, conn.sent.end()) << dump();
  EXPECT_EQ(*(script + 1), "ROLLBACK") << dump();
  ASSERT_NE(script + 2, conn.sent.end()) << dump();
  const auto& insert = *(script + 2);
  EXPECT_TRUE(insert.starts_with("INSERT INTO \"public\".\"stepwise_log\"")) << insert;
  EXPECT_TRUE(contains(insert, "VALUES ('2', 'b', 'up', 'failed', ")) << insert;
  EXPECT_TRUE(contains(insert, "'42P01'")) << insert;
  EXPECT_TRUE(contains(insert, "relation \"a\" does not exist")) << insert;
  EXPECT_TRUE(contains(insert, "statements_done, error, sqlstate")) << insert;
  // Nothing committed for the failed step, nothing after it.
  EXPECT_EQ(conn.commits, 0u) << dump();
  EXPECT_EQ(conn.count_if([](const std::string& s) { return contains(s, kSqlC); }), 0u) << dump();
  EXPECT_EQ(lock.acquired, 1);
  EXPECT_EQ(lock.released, 1);
  EXPECT_EQ(trace.events.back(), "lock: release") << dump();
  EXPECT_EQ(reporter.started, (std::vector<Version>{2}));
  EXPECT_TRUE(reporter.finished.empty());
}

TEST_F(HistoryStoreSqlTest, FailedLineIsRelativeToTheFileWithATimeoutPrelude) {
  conn.log_reads = {Records{applied_row(1, 1), applied_row(2, 2)}};
  conn.failures.push_back({"CREATE TABLE c", "syntax error at or near \"c\"", "42601", 1});
  RunOptions o;
  o.statement_timeout = std::chrono::milliseconds(1000);
  try {
    (void)runner.run(set, o);
    FAIL() << "no StepFailed";
  } catch (const StepFailed& e) {
    EXPECT_TRUE(std::string(e.what()).starts_with("3_c.up.sql:1: ")) << e.what();
  }
}

// 25006 (read_only_sql_transaction) is the server's state, not the file's fault: exit 16 with
// the cause, also when the client library lost the SQLSTATE (libpqxx 6.4).

// ------------------------------------------------------------------ no-transaction steps

class NoTxHistoryStoreSqlTest : public HistoryStoreSqlTest {
 protected:
  MigrationSet notx = build_migration_set(std::vector<MigrationFile>{file("5_idx.up.sql", kNoTx)});
  const Migration& m() const { return notx.all()[0]; }
};

TEST_F(NoTxHistoryStoreSqlTest, RunsStatementsOneAtATimeOutsideATransaction) {
  conn.log_reads = {Records{}};
  const auto result = runner.run(notx, RunOptions{});
  EXPECT_EQ(applied_versions(result), (std::vector<Version>{5}));
  EXPECT_EQ(conn.count_if(is_begin), 0u) << dump();
  EXPECT_EQ(conn.commits, 0u) << dump();
  std::vector<std::string> work;
  for (const auto& s : conn.sent)
    if (!is_log_read(s) && !is_digest_query(s) && !is_catalog_or_summary(s) &&
        !s.starts_with("SET ") && !s.starts_with("RESET "))
      work.push_back(s);
  ASSERT_EQ(work.size(), 8u) << dump();
  EXPECT_TRUE(work[0].starts_with("INSERT INTO \"public\".\"stepwise_log\"")) << work[0];
  EXPECT_TRUE(contains(
      work[0], "VALUES ('5', 'idx', 'up', 'running', '" + std::string(m().up.checksum) + "'"))
      << work[0];
  // A statement keeps its leading comment lines, as psql sends them.
  EXPECT_EQ(work[1], "-- stepwise:no-transaction\nCREATE INDEX CONCURRENTLY i1 ON a (id)");
  EXPECT_TRUE(contains(work[2], "SET statements_done = 1 " + where_id(500))) << work[2];
  EXPECT_EQ(work[3], "CREATE INDEX CONCURRENTLY i2 ON b (id)");
  EXPECT_TRUE(contains(work[4], "SET statements_done = 2 " + where_id(500))) << work[4];
  EXPECT_EQ(work[5], "CREATE INDEX CONCURRENTLY i3 ON c (id)");
  EXPECT_TRUE(contains(work[6], "SET statements_done = 3 " + where_id(500))) << work[6];
  EXPECT_TRUE(contains(work[7], "SET outcome = 'succeeded', statements_done = 3")) << work[7];
  EXPECT_TRUE(contains(work[7], where_id(500))) << work[7];
}

TEST_F(NoTxHistoryStoreSqlTest, ResumesAfterConfirmedStatements) {
  conn.log_reads = {
      Records{log_row(41, 5, "idx", "up", "running", std::string(m().up.checksum), 2)}};
  (void)runner.run(notx, RunOptions{});
  EXPECT_EQ(conn.count_if(
                [](const std::string& s) { return contains(s, "i1 ON") || contains(s, "i2 ON"); }),
            0u)
      << dump();
  EXPECT_EQ(conn.count_if(
                [](const std::string& s) { return s == "CREATE INDEX CONCURRENTLY i3 ON c (id)"; }),
            1u)
      << dump();
  EXPECT_EQ(conn.count_if([](const std::string& s) {
    return contains(s, where_id(41) + " AND (outcome) OPERATOR(pg_catalog.=) ('running')");
  }),
            1u)
      << dump();
  EXPECT_EQ(conn.count_if([](const std::string& s) {
    return contains(s, "SET outcome = 'succeeded', statements_done = 3");
  }),
            1u)
      << dump();
  ASSERT_EQ(reporter.skipped.size(), 1u);
  EXPECT_TRUE(contains(reporter.skipped[0], "2")) << reporter.skipped[0];
}

TEST_F(NoTxHistoryStoreSqlTest, FailedStatementRecordsProgressAndLine) {
  conn.log_reads = {Records{}};
  conn.failures.push_back(
      {"CREATE INDEX CONCURRENTLY i2 ON b (id)", "relation \"b\" does not exist", "42P01", 0});
  try {
    (void)runner.run(notx, RunOptions{});
    FAIL() << "no StepFailed";
  } catch (const StepFailed& e) {
    EXPECT_EQ(e.sqlstate(), "42P01");
    // The failing statement starts on line 3 of the file.
    EXPECT_TRUE(std::string(e.what()).starts_with("5_idx.up.sql:3: ")) << e.what();
  }
  EXPECT_EQ(conn.count_if([](const std::string& s) { return s == "ROLLBACK"; }), 0u) << dump();
  EXPECT_EQ(conn.count_if([](const std::string& s) {
    return contains(s, "SET outcome = 'failed', statements_done = 1") && contains(s, "'42P01'");
  }),
            1u)
      << dump();
  EXPECT_EQ(conn.count_if([](const std::string& s) { return contains(s, "i3 ON"); }), 0u) << dump();
  EXPECT_EQ(lock.released, 1);
}

// COPY ... FROM STDIN data: cut out of the text and handed to execute_with_copy, in both kinds.
constexpr const char* kCopyFile =
    "CREATE TABLE p (a int);\nCOPY p (a) FROM stdin;\n1\n2\n\\.\nSELECT 1;\n";

TEST_F(HistoryStoreSqlTest, TransactionalCopyDataGoesThroughTheCopyProtocolInOneRoundTrip) {
  const auto copy =
      build_migration_set(std::vector<MigrationFile>{file("7_copy.up.sql", kCopyFile)});
  conn.log_reads = {Records{}};
  (void)runner.run(copy, RunOptions{});
  const auto it = std::find_if(conn.copy_blocks.begin(), conn.copy_blocks.end(),
                               [](const auto& b) { return !b.empty(); });
  ASSERT_NE(it, conn.copy_blocks.end()) << dump();
  EXPECT_EQ(*it, (std::vector<std::string>{"1\n2\n"}));
  const auto step = std::find_if(conn.sent.begin(), conn.sent.end(), [](const std::string& s) {
    return contains(s, "COPY p (a) FROM stdin;");
  });
  ASSERT_NE(step, conn.sent.end()) << dump();
  EXPECT_FALSE(contains(*step, "\\.")) << *step;
  EXPECT_TRUE(contains(*step, "COPY p (a) FROM stdin;\n\n\n\nSELECT 1;")) << *step;
  EXPECT_TRUE(step->ends_with("COMMIT")) << *step;
}

TEST_F(HistoryStoreSqlTest, NoTransactionCopyStatementGetsItsOwnBlock) {
  const auto copy = build_migration_set(std::vector<MigrationFile>{
      file("7_copy.up.sql", std::string("-- stepwise:no-transaction\n") + kCopyFile)});
  conn.log_reads = {Records{}};
  (void)runner.run(copy, RunOptions{});
  const auto idx = std::find_if(conn.sent.begin(), conn.sent.end(), [](const std::string& s) {
    return s.find("COPY p (a) FROM stdin") != std::string::npos;
  });
  ASSERT_NE(idx, conn.sent.end()) << dump();
  std::size_t blocks = 0;
  for (const auto& b : conn.copy_blocks) {
    if (b.empty()) continue;
    ++blocks;
    EXPECT_EQ(b, (std::vector<std::string>{"1\n2\n"}));
  }
  EXPECT_EQ(blocks, 1u) << dump();
  EXPECT_EQ(conn.count_if([](const std::string& s) { return s.starts_with("BEGIN; SELECT 1"); }),
            1u)
      << dump();
  // Data statements commit together with their progress row: a kill between the two cannot
  // make the next run load the rows again.
  EXPECT_TRUE(contains(*idx, "BEGIN; COPY p (a) FROM stdin")) << *idx;
  EXPECT_TRUE(contains(*idx, "SET statements_done = 2 WHERE (id)")) << *idx;
  EXPECT_TRUE(contains(*idx, "COMMIT")) << *idx;
}

TEST_F(NoTxHistoryStoreSqlTest, StepErrorReportedEvenWhenRecordingItFails) {
  conn.log_reads = {Records{}};
  conn.failures.push_back(
      {"CREATE INDEX CONCURRENTLY i2 ON b (id)", "relation \"b\" does not exist", "42P01", 0});
  conn.failures.push_back(
      {"SET outcome = 'failed'", "permission denied for table stepwise_log", "42501", 0});
  try {
    (void)runner.run(notx, RunOptions{});
    FAIL() << "no StepFailed";
  } catch (const StepFailed& e) {
    EXPECT_EQ(e.sqlstate(), "42P01");
    EXPECT_TRUE(std::string(e.what()).starts_with("5_idx.up.sql:3: relation")) << e.what();
  }
  ASSERT_FALSE(reporter.warnings.empty());
  EXPECT_TRUE(contains(reporter.warnings.back(), "could not record the failed attempt"))
      << reporter.warnings.back();
}

}  // namespace
}  // namespace stepwise
