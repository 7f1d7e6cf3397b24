// The runner's behaviour over an in-memory attempt log: the no-op path, the lock and the waits,
// the re-plan under the lock, each step with its attempt, failures, resumption and stops. The
// fake log records attempts as values and the fake connection sees only the steps' own SQL, so
// nothing here depends on the text of the log's SQL (that is history_store_test.cpp's job).
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
#include "stepwise/attempt_log.hpp"
#include "stepwise/database.hpp"
#include "stepwise/errors.hpp"
#include "stepwise/lock.hpp"
#include "stepwise/runner.hpp"

namespace stepwise {
namespace {

using test_fakes::FakeLock;
using test_fakes::RecordingReporter;
using test_fakes::throw_if_failing;
using test_fakes::Trace;

// ------------------------------------------------------------------ fakes

bool contains(std::string_view hay, std::string_view needle) {
  return hay.find(needle) != std::string_view::npos;
}

// The server side of the steps: records each text and fails the ones holding a needle.
class FakeConnection final : public Connection {
 public:
  explicit FakeConnection(Trace& trace) : trace_(trace) {}

  using Failure = test_fakes::Failure;
  std::vector<Failure> failures;
  std::vector<std::string> sent;
  std::vector<std::vector<std::string>> copy_blocks;  // the COPY data of each text

  Rows execute(std::string_view sql) override {
    sent.emplace_back(sql);
    trace_.events.push_back("sql: " + std::string(sql));
    throw_if_failing(failures, sql);
    return {};
  }
  Rows execute_with_copy(std::string_view sql, std::span<const std::string> copy_data) override {
    copy_blocks.emplace_back(copy_data.begin(), copy_data.end());
    return execute(sql);
  }
  Rows query(std::string_view sql, const Params&) override { return execute(sql); }
  std::string quote_identifier(std::string_view name) override {
    return "\"" + std::string(name) + "\"";
  }
  std::string quote_literal(std::string_view value) override {
    return "'" + std::string(value) + "'";
  }
  void cancel() noexcept override {}
  int backend_pid() const override { return 4242; }
  void on_notice(std::function<void(std::string_view)>) override {}

  [[nodiscard]] std::size_t count_if(const std::function<bool(const std::string&)>& pred) const {
    return static_cast<std::size_t>(std::count_if(sent.begin(), sent.end(), pred));
  }

 private:
  Trace& trace_;
};

struct MissingLog {};  // a read answer: the log table does not exist yet

// The attempt log as values. Each read takes the next answer (the last one repeats); every
// write is an event in the trace and an attempt in `attempts`.
class FakeAttemptLog final : public AttemptLog {
 public:
  FakeAttemptLog(Trace& trace, FakeConnection& conn) : trace_(trace), conn_(conn) {}

  std::deque<std::variant<std::vector<Attempt>, MissingLog, DbError>> reads;
  int reads_done = 0;
  std::optional<TableName> foreign;  // ensure_table(refuse_if_present) finds this table
  std::vector<Attempt> attempts;     // written by this run, in order
  std::vector<std::string> setups;   // the setup of each transactional step
  std::vector<std::string> fences;   // the fence each fenced write was given
  std::vector<int> running_from;     // statements_done of each running attempt when inserted
  std::map<std::string, DbError> failing_writes;  // "finish", "insert_finished", ...
  // Lines the fake sends before a transactional step's body, as the real log's BEGIN and
  // attempt row come before it.
  static constexpr int kLinesBefore = 2;

  // What matches() answers: whether the log holds exactly the set whose digest it is given.
  std::optional<std::string> digest_of_the_log;
  bool matches(std::string_view log_digest) override {
    const bool yes = digest_of_the_log == log_digest;
    trace_.events.emplace_back(yes ? "log: matches" : "log: does not match");
    return yes;
  }
  History read(Detail) override {
    trace_.events.emplace_back("log: read");
    ++reads_done;
    if (reads.empty()) return History();
    auto answer = reads.front();
    if (reads.size() > 1) reads.pop_front();
    if (auto* e = std::get_if<DbError>(&answer)) throw *e;
    if (std::holds_alternative<MissingLog>(answer)) {
      History h;
      h.set_log_table_exists(false);
      return h;
    }
    auto rows = std::get<std::vector<Attempt>>(answer);
    std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) { return a.id < b.id; });
    return History(std::move(rows));
  }
  std::optional<TableName> ensure_table(const std::vector<TableName>& refuse_if_present) override {
    trace_.events.emplace_back(refuse_if_present.empty() ? "log: ensure"
                                                         : "log: ensure, refusing foreign");
    if (!refuse_if_present.empty() && foreign) return foreign;
    return std::nullopt;
  }
  const TableName& table() const noexcept override { return table_; }

  std::string step_fence(const Step& step, std::optional<long long> latest,
                         std::string_view held_check) override {
    return "fence " + step.migration->version.to_string() + " latest " +
           (latest ? std::to_string(*latest) : "none") + " held " + std::string(held_check);
  }
  void run_transactional(const Step& step, std::string_view setup, std::string_view fence,
                         std::string_view body, std::span<const std::string> copy_data) override {
    const auto v = step.migration->version.to_string();
    setups.emplace_back(setup);
    if (!fence.empty()) fences.emplace_back(fence);
    if (!body.empty()) {
      try {
        conn_.execute_with_copy(std::string(kLinesBefore, '\n') + std::string(body), copy_data);
      } catch (const DbError&) {
        trace_.events.push_back("log: step " + v + " rolled back");
        throw;
      }
    }
    attempts.push_back(attempt(step, Outcome::kSucceeded, 1));
    trace_.events.push_back("log: step " + v + " committed");
  }
  int lines_before_body(const Step&, std::string_view, bool) override { return kLinesBefore; }

  long long insert_running(const Step& step) override {
    fail_if("insert_running");
    attempts.push_back(attempt(step, Outcome::kRunning, std::max(step.resume_from, 0)));
    running_from.push_back(attempts.back().statements_done);
    trace_.events.push_back("log: running " + step.migration->version.to_string() + " as " +
                            std::to_string(attempts.back().id));
    return attempts.back().id;
  }
  long long insert_running_fenced(const Step& step, std::string_view fence) override {
    fences.emplace_back(fence);
    return insert_running(step);
  }
  void set_progress(long long id, int done) override {
    fail_if("set_progress");
    find(id).statements_done = done;
    trace_.events.push_back(fmt("log: progress", id, done));
  }
  void run_with_progress(long long id, int done, std::string_view statement,
                         std::span<const std::string> copy_data) override {
    conn_.execute_with_copy(statement, copy_data);
    find(id).statements_done = done;
    trace_.events.push_back(fmt("log: progress with the statement", id, done));
  }
  void finish(long long id, Outcome outcome, int done, const DbError* error) override {
    fail_if("finish");
    auto& a = find(id);
    a.outcome = outcome;
    a.statements_done = done;
    if (error != nullptr) a.sqlstate = error->sqlstate();
    trace_.events.push_back(fmt("log: finish " + std::string(to_string(outcome)), id, done));
  }
  void insert_finished(const Step& step, Outcome outcome, double, int done,
                       const DbError* error) override {
    fail_if("insert_finished");
    attempts.push_back(attempt(step, outcome, done));
    if (error != nullptr) attempts.back().sqlstate = error->sqlstate();
    trace_.events.push_back("log: " + std::string(to_string(outcome)) + " " +
                            step.migration->version.to_string());
  }
  void mark_abandoned(long long id) override {
    trace_.events.push_back("log: abandoned " + std::to_string(id));
  }
  void refresh_summary() override {
    refreshes_under_lock.push_back(lock != nullptr && lock->acquired > lock->released);
  }
  const FakeLock* lock = nullptr;          // the test's lock: held when the summary is refreshed
  std::vector<bool> refreshes_under_lock;  // one entry per refresh_summary()

  [[nodiscard]] std::vector<Version> versions_with(Outcome outcome) const {
    std::vector<Version> out;
    for (const auto& a : attempts)
      if (a.outcome == outcome) out.push_back(a.version);
    return out;
  }

 private:
  Attempt attempt(const Step& step, Outcome outcome, int done) {
    Attempt a;
    a.id = next_id_++;
    a.version = step.migration->version;
    a.name = std::string(step.migration->name);
    a.direction = step.direction;
    a.outcome = outcome;
    a.checksum = std::string(step.script().checksum);
    a.statements_done = done;
    return a;
  }
  Attempt& find(long long id) {
    const auto it = std::find_if(attempts.begin(), attempts.end(),
                                 [&](const Attempt& a) { return a.id == id; });
    EXPECT_NE(it, attempts.end()) << "no attempt " << id;
    return it == attempts.end() ? scratch_ : *it;
  }
  void fail_if(const std::string& write) {
    if (const auto it = failing_writes.find(write); it != failing_writes.end()) throw it->second;
  }
  static std::string fmt(const std::string& what, long long id, int done) {
    return what + " " + std::to_string(id) + " " + std::to_string(done);
  }

  Trace& trace_;
  FakeConnection& conn_;
  TableName table_{"public", "stepwise_log"};
  long long next_id_ = 500;
  Attempt scratch_;
};

// ------------------------------------------------------------------ helpers

MigrationFile file(std::string name, std::string bytes) {
  MigrationFile f;
  f.name = std::move(name);
  f.bytes = std::move(bytes);
  return f;
}

Attempt row(long long id, Version v, std::string name, Direction d, Outcome o, std::string checksum,
            int done = 1) {
  Attempt a;
  a.id = id;
  a.version = v;
  a.name = std::move(name);
  a.direction = d;
  a.outcome = o;
  a.checksum = std::move(checksum);
  a.statements_done = done;
  a.started_at = "2024-01-01T00:00:00.000Z";
  if (o != Outcome::kRunning) a.finished_at = "2024-01-01T00:00:01.000Z";
  return a;
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

std::vector<Version> applied_versions(const RunResult& r) {
  std::vector<Version> out;
  for (const auto& a : r.applied) out.push_back(a.version);
  return out;
}

class RunnerTest : public ::testing::Test {
 protected:
  Trace trace;
  FakeConnection conn{trace};
  FakeAttemptLog log{trace, conn};
  FakeLock lock{trace};
  RecordingReporter reporter;
  Runner runner{conn, log, lock, reporter};

  MigrationSet set = build_migration_set(
      std::vector<MigrationFile>{file("1_a.up.sql", kSqlA), file("1_a.down.sql", "DROP TABLE a;\n"),
                                 file("2_b.up.sql", kSqlB), file("3_c.up.sql", kSqlC)});

  Attempt applied(long long id, Version v) {
    const auto* m = set.find(v);
    return row(id, v, std::string(m->name), Direction::kUp, Outcome::kSucceeded,
               std::string(m->up.checksum));
  }
  std::vector<Attempt> all_applied() { return {applied(1, 1), applied(2, 2), applied(3, 3)}; }
  // Options with the digest asked for whatever the set's size.
  static RunOptions with_digest() {
    RunOptions o;
    o.digest_from = 1;
    return o;
  }
  [[nodiscard]] std::size_t steps_sent(std::string_view needle) const {
    return conn.count_if([&](const std::string& s) { return contains(s, needle); });
  }
};

// ------------------------------------------------------------------ the no-op path

TEST_F(RunnerTest, NoOpWhenTheLogMatchesTheSetAsksOneQuestionAndNothingElse) {
  log.digest_of_the_log = set.log_digest();
  const auto result = runner.run(set, with_digest());
  EXPECT_EQ(trace.events, (std::vector<std::string>{"log: matches"})) << trace.dump();
  EXPECT_EQ(log.reads_done, 0);
  EXPECT_EQ(lock.attempts, 0);
  EXPECT_FALSE(result.took_lock);
  EXPECT_TRUE(result.plan.empty());
  EXPECT_TRUE(result.plan.warnings.empty());
  EXPECT_EQ(result.plan.from, 3);
  EXPECT_EQ(result.plan.to, 3);
  EXPECT_EQ(result.version_after, 3);
}

TEST_F(RunnerTest, ALogOfAnotherSetIsReadInFull) {
  // One file more in the set than in the log: the digests differ, and the read plans the rest.
  const auto fewer = build_migration_set(
      std::vector<MigrationFile>{file("1_a.up.sql", kSqlA), file("2_b.up.sql", kSqlB)});
  log.digest_of_the_log = fewer.log_digest();
  EXPECT_NE(fewer.log_digest(), set.log_digest());
  log.reads = {std::vector<Attempt>{applied(1, 1), applied(2, 2)}};
  const auto result = runner.run(set, with_digest());
  EXPECT_EQ(trace.events[0], "log: does not match") << trace.dump();
  EXPECT_EQ(trace.events[1], "log: read") << trace.dump();
  EXPECT_EQ(applied_versions(result), (std::vector<Version>{3}));
}

TEST_F(RunnerTest, AnExplicitTargetAlwaysReadsTheLog) {
  log.digest_of_the_log = set.log_digest();
  log.reads = {all_applied()};
  auto o = with_digest();
  o.target = Target::at(3);
  (void)runner.run(set, o);
  EXPECT_EQ(trace.events, (std::vector<std::string>{"log: read"})) << trace.dump();
}

TEST_F(RunnerTest, ASmallSetReadsTheLogWithoutAskingForTheDigest) {
  log.digest_of_the_log = set.log_digest();
  log.reads = {all_applied()};
  (void)runner.run(set, RunOptions{});  // 3 migrations, below digest_from
  EXPECT_EQ(trace.events, (std::vector<std::string>{"log: read"})) << trace.dump();
}

TEST_F(RunnerTest, NoOpReadsTheLogOnceAndNeverTouchesTheLock) {
  log.reads = {all_applied()};
  const auto result = runner.run(set, RunOptions{});
  EXPECT_EQ(trace.events, (std::vector<std::string>{"log: read"})) << trace.dump();
  EXPECT_EQ(lock.attempts, 0);
  EXPECT_FALSE(result.took_lock);
  EXPECT_FALSE(result.done_by_other);
  EXPECT_TRUE(result.plan.empty());
  EXPECT_TRUE(result.applied.empty());
  EXPECT_EQ(result.version_after, 3);
  EXPECT_EQ(reporter.locks, 0);
  EXPECT_TRUE(reporter.started.empty());
}

TEST_F(RunnerTest, NoOpReportsPlanWarnings) {
  auto rows = all_applied();  // the database is ahead: nothing to do, a warning, no lock
  rows.push_back(row(4, 99, "future", Direction::kUp, Outcome::kSucceeded, "x"));
  log.reads = {rows};
  const auto result = runner.run(set, RunOptions{});
  EXPECT_EQ(trace.events.size(), 1u) << trace.dump();
  EXPECT_TRUE(result.plan.ahead);
  ASSERT_EQ(reporter.warnings.size(), 1u);
  EXPECT_TRUE(contains(reporter.warnings[0], "99")) << reporter.warnings[0];
}

TEST_F(RunnerTest, EmptySetOnFreshDatabaseIsANoOp) {
  log.reads = {MissingLog{}};
  const auto result = runner.run(MigrationSet(), RunOptions{});
  EXPECT_EQ(trace.events.size(), 1u) << trace.dump();
  EXPECT_EQ(lock.attempts, 0);
  EXPECT_EQ(result.version_after, 0);
}

TEST_F(RunnerTest, ReadErrorPropagatesWithoutTheLock) {
  log.reads = {DbError("permission denied for table stepwise_log", "42501")};
  try {
    (void)runner.run(set, RunOptions{});
    FAIL() << "no error";
  } catch (const DbError& e) {
    EXPECT_EQ(e.sqlstate(), "42501");
  }
  EXPECT_EQ(lock.attempts, 0);
  EXPECT_EQ(trace.events.size(), 1u) << trace.dump();
}

TEST_F(RunnerTest, DryRunPlansWithoutTheLockOrWrites) {
  log.reads = {MissingLog{}};
  RunOptions o;
  o.dry_run = true;
  const auto result = runner.run(set, o);
  EXPECT_EQ(trace.events.size(), 1u) << trace.dump();
  EXPECT_FALSE(result.took_lock);
  EXPECT_EQ(result.plan.steps.size(), 3u);
  EXPECT_TRUE(result.applied.empty());
  EXPECT_EQ(reporter.plans, (std::vector<std::size_t>{3}));
}

TEST_F(RunnerTest, PlanRefusedBeforeTakingTheLock) {
  log.reads = {std::vector<Attempt>{applied(1, 1), applied(2, 3)}};  // 2 pending below 3
  EXPECT_THROW((void)runner.run(set, RunOptions{}), PlanRefused);
  EXPECT_EQ(lock.attempts, 0);
  EXPECT_TRUE(log.attempts.empty());
}

// ------------------------------------------------------------------ with work

TEST_F(RunnerTest, FreshDatabaseAppliesEveryStepUnderTheLockInOrder) {
  log.reads = {MissingLog{}, std::vector<Attempt>{}};
  const auto result = runner.run(set, RunOptions{});
  EXPECT_TRUE(result.took_lock);
  EXPECT_FALSE(result.done_by_other);
  EXPECT_EQ(applied_versions(result), (std::vector<Version>{1, 2, 3}));
  EXPECT_EQ(result.version_after, 3);
  // Read, lock, read again, the log (asking for other tools' tables: the log is empty), each
  // step with its attempt in one transaction, release.
  const std::vector<std::string> expected_events = {"log: read",
                                                    "lock: acquire",
                                                    "log: read",
                                                    "log: ensure, refusing foreign",
                                                    "sql: \n\n" + std::string(kSqlA),
                                                    "log: step 1 committed",
                                                    "sql: \n\n" + std::string(kSqlB),
                                                    "log: step 2 committed",
                                                    "sql: \n\n" + std::string(kSqlC),
                                                    "log: step 3 committed",
                                                    "lock: release"};
  EXPECT_EQ(trace.events, expected_events) << trace.dump();
  EXPECT_EQ(log.versions_with(Outcome::kSucceeded), (std::vector<Version>{1, 2, 3}));
  for (std::size_t i = 0; i < 3; ++i)
    EXPECT_EQ(log.attempts[i].checksum, set.all()[i].up.checksum) << i;
  EXPECT_EQ(reporter.started, (std::vector<Version>{1, 2, 3}));
  EXPECT_EQ(reporter.finished, (std::vector<Version>{1, 2, 3}));
  EXPECT_EQ(reporter.indexes.back(), (std::pair<std::size_t, std::size_t>{3, 3}));
  EXPECT_EQ(reporter.locks, 1);
}

TEST_F(RunnerTest, ForeignHistoryIsLookedForOnlyWhenTheLogIsEmpty) {
  log.reads = {std::vector<Attempt>{applied(1, 1)}};
  (void)runner.run(set, RunOptions{});
  EXPECT_EQ(trace.count("log: ensure"), 1u) << trace.dump();
  EXPECT_EQ(trace.count("log: ensure, refusing foreign"), 0u) << trace.dump();
}

TEST_F(RunnerTest, OnlyTheLastCommitIsSynchronous) {
  log.reads = {std::vector<Attempt>{}};
  (void)runner.run(set, RunOptions{});
  ASSERT_EQ(log.setups.size(), 3u);
  EXPECT_TRUE(contains(log.setups[0], "SET LOCAL synchronous_commit = off;")) << log.setups[0];
  EXPECT_TRUE(contains(log.setups[1], "SET LOCAL synchronous_commit = off;")) << log.setups[1];
  EXPECT_FALSE(contains(log.setups[2], "synchronous_commit")) << log.setups[2];
}

TEST_F(RunnerTest, StatementTimeoutIsTransactionLocalInEachStep) {
  log.reads = {std::vector<Attempt>{applied(1, 1), applied(2, 2)}};
  RunOptions o;
  o.statement_timeout = std::chrono::milliseconds(5000);
  (void)runner.run(set, o);
  ASSERT_EQ(log.setups.size(), 1u);
  EXPECT_TRUE(contains(log.setups[0], "SET LOCAL statement_timeout = 5000;")) << log.setups[0];
  EXPECT_EQ(steps_sent("SET statement_timeout"), 0u) << "not session-wide\n" << trace.dump();
}

TEST_F(RunnerTest, RereadUnderTheLockShowingNothingPendingRunsNoStep) {
  log.reads = {MissingLog{}, all_applied()};  // another runner did it all meanwhile
  const auto result = runner.run(set, RunOptions{});
  EXPECT_EQ(trace.events,
            (std::vector<std::string>{"log: read", "lock: acquire", "log: read", "lock: release"}))
      << trace.dump();
  EXPECT_TRUE(result.took_lock);
  EXPECT_TRUE(result.done_by_other);
  EXPECT_TRUE(result.applied.empty());
  EXPECT_TRUE(log.attempts.empty());
  EXPECT_EQ(result.version_after, 3);
}

TEST_F(RunnerTest, RereadUnderTheLockRunsOnlyWhatIsStillPending) {
  log.reads = {std::vector<Attempt>{}, std::vector<Attempt>{applied(1, 1), applied(2, 2)}};
  const auto result = runner.run(set, RunOptions{});
  EXPECT_EQ(applied_versions(result), (std::vector<Version>{3}));
  EXPECT_EQ(steps_sent(kSqlA) + steps_sent(kSqlB), 0u) << trace.dump();
  EXPECT_EQ(steps_sent(kSqlC), 1u);
}

TEST_F(RunnerTest, LogRowsInAnyOrderAreTakenInIdOrder) {
  // 2 was applied (id 2) and later rolled back (id 7), whatever order the rows come in.
  const auto down = row(7, 2, "b", Direction::kDown, Outcome::kSucceeded, "down-sum");
  log.reads = {std::vector<Attempt>{down, applied(1, 1), applied(2, 2)}};
  const auto result = runner.run(set, RunOptions{});
  EXPECT_EQ(applied_versions(result), (std::vector<Version>{2, 3}));
  EXPECT_EQ(result.plan.from, 1);
}

TEST_F(RunnerTest, CommentOnlyStepIsLoggedButSendsNoScript) {
  const auto placeholder = build_migration_set(
      std::vector<MigrationFile>{file("1_reserved.up.sql", "-- reserved for a hotfix\n")});
  log.reads = {std::vector<Attempt>{}};
  const auto result = runner.run(placeholder, RunOptions{});
  EXPECT_EQ(applied_versions(result), (std::vector<Version>{1}));
  EXPECT_EQ(log.versions_with(Outcome::kSucceeded), (std::vector<Version>{1}));
  EXPECT_TRUE(conn.sent.empty()) << trace.dump();
}

TEST_F(RunnerTest, RetryOfARunningAttemptMarksItAbandonedFirst) {
  const auto* m = set.find(3);
  log.reads = {std::vector<Attempt>{
      applied(1, 1), applied(2, 2),
      row(3, 3, "c", Direction::kUp, Outcome::kRunning, std::string(m->up.checksum), 0)}};
  (void)runner.run(set, RunOptions{});
  const auto abandon = trace.index_of("log: abandoned 3");
  ASSERT_NE(abandon, std::string::npos) << trace.dump();
  EXPECT_LT(abandon, trace.index_of("log: step 3 committed")) << trace.dump();
}

TEST_F(RunnerTest, FencedStepsCarryTheLatestAttemptThisRunPlannedFrom) {
  Runner fenced(
      conn, log,
      [&] {
        ExecutionProfile p{&lock, false, ""};
        p.fence_steps = true;
        return p;
      },
      reporter);
  log.reads = {std::vector<Attempt>{applied(1, 1),
                                    row(4, 2, "b", Direction::kUp, Outcome::kFailed, "old", 0)}};
  (void)fenced.run(set, RunOptions{});
  EXPECT_EQ(log.fences, (std::vector<std::string>{"fence 2 latest 4 held held?",
                                                  "fence 3 latest none held held?"}));
}

TEST_F(RunnerTest, AFenceThatFailsIsLockLostWithNothingRecorded) {
  Runner fenced(
      conn, log,
      [&] {
        ExecutionProfile p{&lock, false, ""};
        p.fence_steps = true;
        return p;
      },
      reporter);
  log.reads = {std::vector<Attempt>{applied(1, 1)}};
  conn.failures.push_back({kSqlB, "the migration lock is not held", std::string(kFenceSqlstate)});
  EXPECT_THROW((void)fenced.run(set, RunOptions{}), LockLost);
  EXPECT_TRUE(log.attempts.empty()) << trace.dump();
  EXPECT_EQ(steps_sent(kSqlC), 0u);
  EXPECT_EQ(lock.released, 1);
}

TEST_F(RunnerTest, SessionSetupRunsOnceUnderTheLockBeforeTheSteps) {
  Runner with_setup(
      conn, log,
      [&] {
        return ExecutionProfile{&lock, false, "SET application_name = 'x'"};
      },
      reporter);
  log.reads = {std::vector<Attempt>{applied(1, 1)}};
  (void)with_setup.run(set, RunOptions{});
  const auto setup = trace.index_of("sql: SET application_name = 'x'");
  ASSERT_NE(setup, std::string::npos) << trace.dump();
  EXPECT_EQ(trace.count("sql: SET application_name = 'x'"), 1u);
  EXPECT_GT(setup, trace.index_of("lock: acquire"));
  EXPECT_LT(setup, trace.index_of("log: step 2 committed"));
}

// ------------------------------------------------------------------ waiting for the lock

TEST_F(RunnerTest, WaitsForABusyLockAndRereadsWhileWaiting) {
  lock.answers = {false, false, true};
  log.reads = {std::vector<Attempt>{}};
  RunOptions o;
  o.lock_wait_reread = std::chrono::milliseconds(0);  // read after every busy attempt
  const auto result = runner.run(set, o);
  EXPECT_EQ(lock.attempts, 3);
  EXPECT_TRUE(result.took_lock);
  EXPECT_EQ(applied_versions(result), (std::vector<Version>{1, 2, 3}));
  EXPECT_EQ(log.reads_done, 4) << trace.dump();  // first, after each busy try, under the lock
  const auto first_busy = trace.index_of("lock: busy");
  ASSERT_NE(first_busy, std::string::npos);
  EXPECT_EQ(trace.events[first_busy + 1], "log: read") << trace.dump();
}

TEST_F(RunnerTest, GivesUpWaitingWhenAnotherRunnerDidTheWork) {
  lock.answers = {false};
  log.reads = {std::vector<Attempt>{}, all_applied()};
  RunOptions o;
  o.lock_wait_reread = std::chrono::milliseconds(0);
  const auto result = runner.run(set, o);
  EXPECT_TRUE(result.done_by_other);
  EXPECT_FALSE(result.took_lock);
  EXPECT_EQ(lock.released, 0);
  EXPECT_TRUE(result.plan.empty());
  EXPECT_EQ(result.version_after, 3);
  EXPECT_TRUE(log.attempts.empty());
  EXPECT_TRUE(conn.sent.empty()) << trace.dump();
}

TEST_F(RunnerTest, WaiterThatGetsTheLockAfterTheWorkIsDoneReleasesAtOnce) {
  lock.answers = {false, false, true};
  log.reads = {std::vector<Attempt>{}, all_applied()};
  RunOptions o;
  o.lock_wait_reread = std::chrono::hours(1);  // polls only the lock while waiting
  const auto result = runner.run(set, o);
  EXPECT_EQ(lock.attempts, 3);
  EXPECT_EQ(log.reads_done, 2) << trace.dump();
  EXPECT_TRUE(result.took_lock);
  EXPECT_TRUE(result.done_by_other);
  EXPECT_EQ(lock.released, 1);
  // Nothing but the read under the lock: no log set-up, no session setup, no step.
  EXPECT_EQ(trace.events.back(), "lock: release") << trace.dump();
  EXPECT_EQ(trace.events[trace.events.size() - 2], "log: read") << trace.dump();
  EXPECT_TRUE(conn.sent.empty()) << trace.dump();
}

TEST_F(RunnerTest, WithASharedModeWaitersPollForTheWriterAndCheckSideBySide) {
  lock.shared_mode = true;
  lock.answers = {false};                      // the writer holds the lock at first
  lock.shared_answers = {false, false, true};  // then it is gone
  log.reads = {std::vector<Attempt>{}, all_applied()};
  const auto result = runner.run(set, RunOptions{});
  EXPECT_EQ(lock.attempts, 1) << trace.dump();  // never competed once the work was done
  EXPECT_EQ(lock.shared_attempts, 3) << trace.dump();
  EXPECT_EQ(lock.shared_held, 0) << "shared lock not released";
  EXPECT_TRUE(result.done_by_other);
  EXPECT_FALSE(result.took_lock);
  const auto shared = trace.index_of("lock: shared");
  ASSERT_NE(shared, std::string::npos) << trace.dump();
  EXPECT_EQ(trace.events[shared + 1], "log: read") << trace.dump();
  EXPECT_EQ(trace.events[shared + 2], "lock: shared release") << trace.dump();
}

TEST_F(RunnerTest, WithASharedModeAWaiterTakesOverWorkTheWriterLeft) {
  lock.shared_mode = true;
  lock.answers = {false, true};
  lock.shared_answers = {true};
  log.reads = {std::vector<Attempt>{}};  // the writer died before applying anything
  const auto result = runner.run(set, RunOptions{});
  EXPECT_EQ(lock.shared_held, 0);
  EXPECT_TRUE(result.took_lock);
  EXPECT_EQ(applied_versions(result), (std::vector<Version>{1, 2, 3}));
  EXPECT_LT(trace.index_of("lock: shared release"), trace.index_of("lock: acquire"))
      << trace.dump();
}

TEST_F(RunnerTest, LockTimeoutNamesTheHolderAndRunsNothing) {
  lock.answers = std::deque<bool>(100000, false);
  log.reads = {std::vector<Attempt>{}};
  RunOptions o;
  o.lock_timeout = std::chrono::milliseconds(60);
  try {
    (void)runner.run(set, o);
    FAIL() << "no LockTimeout";
  } catch (const LockTimeout& e) {
    EXPECT_EQ(e.code(), ExitCode::kLockTimeout);
    EXPECT_TRUE(contains(e.what(), "backend pid 99")) << e.what();
  }
  EXPECT_GE(lock.attempts, 2);
  EXPECT_EQ(lock.acquired, 0);
  EXPECT_EQ(lock.released, 0);
  EXPECT_TRUE(conn.sent.empty());
  EXPECT_TRUE(log.attempts.empty());
}

TEST_F(RunnerTest, ZeroLockTimeoutFailsAtOnceWhenBusy) {
  lock.answers = {false};
  log.reads = {std::vector<Attempt>{}};
  RunOptions o;
  o.lock_timeout = std::chrono::milliseconds(0);
  EXPECT_THROW((void)runner.run(set, o), LockTimeout);
  EXPECT_EQ(lock.attempts, 1);
  EXPECT_EQ(log.reads_done, 1) << trace.dump();
}

TEST_F(RunnerTest, StopRequestedWhileWaitingForTheLock) {
  lock.answers = std::deque<bool>(100000, false);
  log.reads = {std::vector<Attempt>{}};
  std::atomic<bool> stop{true};
  RunOptions o;
  o.stop = &stop;
  EXPECT_THROW((void)runner.run(set, o), Interrupted);
  EXPECT_EQ(lock.acquired, 0);
  EXPECT_EQ(lock.released, 0);
}

// ------------------------------------------------------------------ failures

TEST_F(RunnerTest, AFailedStepIsRolledBackRecordedAsFailedAndNamesFileAndLine) {
  log.reads = {std::vector<Attempt>{applied(1, 1)}};
  // The error is on line 2 of 2_b.up.sql ("INSERT INTO b ...").
  conn.failures.push_back({"INSERT INTO b", "relation \"a\" does not exist", "42P01", 1});
  try {
    (void)runner.run(set, RunOptions{});
    FAIL() << "no StepFailed\n" << trace.dump();
  } catch (const StepFailed& e) {
    EXPECT_EQ(e.sqlstate(), "42P01");
    EXPECT_EQ(e.code(), ExitCode::kFailed);
    const std::string msg = e.what();
    EXPECT_TRUE(msg.starts_with("2_b.up.sql:2: ")) << msg;
    EXPECT_TRUE(contains(msg, "relation \"a\" does not exist")) << msg;
    EXPECT_TRUE(contains(msg, "42P01")) << msg;
  }
  const auto rolled_back = trace.index_of("log: step 2 rolled back");
  ASSERT_NE(rolled_back, std::string::npos) << trace.dump();
  EXPECT_EQ(trace.events[rolled_back + 1], "log: failed 2") << trace.dump();
  ASSERT_EQ(log.attempts.size(), 1u);
  EXPECT_EQ(log.attempts[0].outcome, Outcome::kFailed);
  EXPECT_EQ(log.attempts[0].sqlstate, "42P01");
  EXPECT_EQ(steps_sent(kSqlC), 0u) << trace.dump();
  EXPECT_EQ(trace.events.back(), "lock: release") << trace.dump();
  EXPECT_EQ(reporter.started, (std::vector<Version>{2}));
  EXPECT_TRUE(reporter.finished.empty());
}

TEST_F(RunnerTest, FailedLineIsRelativeToTheFileWithATimeoutPrelude) {
  log.reads = {std::vector<Attempt>{applied(1, 1), applied(2, 2)}};
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

TEST_F(RunnerTest, FailureOfALaterStepKeepsEarlierStepsCommitted) {
  log.reads = {std::vector<Attempt>{}};
  conn.failures.push_back({kSqlC, "syntax error", "42601", 0});
  EXPECT_THROW((void)runner.run(set, RunOptions{}), StepFailed);
  EXPECT_EQ(log.versions_with(Outcome::kSucceeded), (std::vector<Version>{1, 2}));
  EXPECT_EQ(log.versions_with(Outcome::kFailed), (std::vector<Version>{3}));
}

// The no-op summary answers for the log only when refreshed after the last step, under the
// lock; a failed run leaves it as it was (the log then has a failed attempt to plan from).
TEST_F(RunnerTest, TheSummaryIsRefreshedOnceUnderTheLockAfterTheLastStepOnly) {
  log.lock = &lock;
  log.reads = {std::vector<Attempt>{}};
  (void)runner.run(set, RunOptions{});
  EXPECT_EQ(log.refreshes_under_lock, (std::vector<bool>{true}));
  EXPECT_EQ(lock.released, lock.acquired);

  log.refreshes_under_lock.clear();
  log.digest_of_the_log = set.log_digest();
  (void)runner.run(set, with_digest());  // the no-op: nothing to answer for
  EXPECT_TRUE(log.refreshes_under_lock.empty());
}

TEST_F(RunnerTest, AFailedRunDoesNotRefreshTheSummary) {
  log.lock = &lock;
  log.reads = {std::vector<Attempt>{}};
  conn.failures.push_back({kSqlC, "syntax error", "42601", 0});
  EXPECT_THROW((void)runner.run(set, RunOptions{}), StepFailed);
  EXPECT_TRUE(log.refreshes_under_lock.empty());
}

TEST_F(RunnerTest, FailedStepWithoutLineNamesJustTheFile) {
  log.reads = {std::vector<Attempt>{applied(1, 1), applied(2, 2)}};
  conn.failures.push_back({kSqlC, "permission denied for schema public", "42501", 0});
  try {
    (void)runner.run(set, RunOptions{});
    FAIL() << "no StepFailed";
  } catch (const StepFailed& e) {
    EXPECT_TRUE(std::string(e.what()).starts_with("3_c.up.sql: permission denied")) << e.what();
  }
}

TEST_F(RunnerTest, AFailureThatCannotBeRecordedIsAWarningAndTheStepsErrorStands) {
  log.reads = {std::vector<Attempt>{applied(1, 1), applied(2, 2)}};
  conn.failures.push_back({kSqlC, "syntax error", "42601", 0});
  log.failing_writes.emplace("insert_finished",
                             DbError("permission denied for table stepwise_log", "42501"));
  try {
    (void)runner.run(set, RunOptions{});
    FAIL() << "no StepFailed";
  } catch (const StepFailed& e) {
    EXPECT_EQ(e.sqlstate(), "42601");
  }
  ASSERT_FALSE(reporter.warnings.empty());
  EXPECT_TRUE(contains(reporter.warnings.back(), "could not record the failed attempt"));
}

// 25006 (read_only_sql_transaction) is the server's state, not the file's fault: exit 16.
TEST_F(RunnerTest, ReadOnlyTransactionErrorIsTheServersNotTheFiles) {
  log.reads = {std::vector<Attempt>{applied(1, 1), applied(2, 2)}};
  conn.failures.push_back({kSqlC, "cannot execute INSERT in a read-only transaction", "25006", 0});
  try {
    (void)runner.run(set, RunOptions{});
    FAIL() << "no error";
  } catch (const StepFailed& e) {
    FAIL() << "blamed the file: " << e.what();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::kReadOnly) << e.what();
    EXPECT_TRUE(std::string(e.what()).starts_with("the session is read-only")) << e.what();
    EXPECT_NE(std::string(e.what()).find("3_c.up.sql"), std::string::npos) << e.what();
    EXPECT_NE(e.hint().find("primary"), std::string::npos) << e.hint();
  }
}

TEST_F(RunnerTest, ASerializationFailureIsRetriedThenTheFailureIsRecordedOnce) {
  log.reads = {std::vector<Attempt>{applied(1, 1), applied(2, 2)}};
  conn.failures.push_back({kSqlC, "could not serialize access", "40001", 0});
  struct Retries final : Reporter {
    int count = 0;
    void retrying(const Step&, int, int, std::chrono::milliseconds, std::string_view) override {
      ++count;
    }
  } retries;
  Runner retrying(conn, log, lock, retries);
  RunOptions o;
  o.serialization_retries = 2;                           // jittered waits of at most 100 ms
  EXPECT_THROW((void)retrying.run(set, o), StepFailed);  // the needle fails every try
  EXPECT_EQ(retries.count, 2) << trace.dump();
  EXPECT_EQ(steps_sent(kSqlC), 3u) << trace.dump();
  EXPECT_EQ(log.versions_with(Outcome::kFailed), (std::vector<Version>{3}));
}

TEST_F(RunnerTest, StopRequestedInterruptsBeforeTheNextStepAndReleases) {
  log.reads = {std::vector<Attempt>{}};
  std::atomic<bool> stop{true};
  RunOptions o;
  o.stop = &stop;
  EXPECT_THROW((void)runner.run(set, o), Interrupted);
  EXPECT_TRUE(conn.sent.empty()) << trace.dump();
  EXPECT_TRUE(log.attempts.empty());
  EXPECT_EQ(lock.acquired, 1);
  EXPECT_EQ(lock.released, 1);
}

// ------------------------------------------------------------------ statement by statement

class NoTxRunnerTest : public RunnerTest {
 protected:
  MigrationSet notx = build_migration_set(std::vector<MigrationFile>{file("5_idx.up.sql", kNoTx)});
  const Migration& m() const { return notx.all()[0]; }
};

TEST_F(NoTxRunnerTest, RunsStatementsOneAtATimeWithProgressAfterEach) {
  log.reads = {std::vector<Attempt>{}};
  const auto result = runner.run(notx, RunOptions{});
  EXPECT_EQ(applied_versions(result), (std::vector<Version>{5}));
  const auto first = trace.index_of("log: running 5 as 500");
  ASSERT_NE(first, std::string::npos) << trace.dump();
  const std::vector<std::string> expected = {
      "log: running 5 as 500",
      "sql: SET lock_timeout = 5000;\n",  // --ddl-lock-timeout, for the session's statements
      // A statement keeps its leading comment lines, as psql sends them.
      "sql: -- stepwise:no-transaction\nCREATE INDEX CONCURRENTLY i1 ON a (id)",
      "log: progress 500 1", "sql: CREATE INDEX CONCURRENTLY i2 ON b (id)", "log: progress 500 2",
      "sql: CREATE INDEX CONCURRENTLY i3 ON c (id)", "log: progress 500 3",
      "sql: RESET statement_timeout; RESET lock_timeout", "log: finish succeeded 500 3",
      "lock: release"};
  EXPECT_EQ(std::vector<std::string>(trace.events.begin() + static_cast<std::ptrdiff_t>(first),
                                     trace.events.end()),
            expected)
      << trace.dump();
}

TEST_F(NoTxRunnerTest, ResumesAfterConfirmedStatements) {
  log.reads = {std::vector<Attempt>{
      row(41, 5, "idx", Direction::kUp, Outcome::kRunning, std::string(m().up.checksum), 2)}};
  (void)runner.run(notx, RunOptions{});
  EXPECT_EQ(steps_sent("i1 ON") + steps_sent("i2 ON"), 0u) << trace.dump();
  EXPECT_EQ(steps_sent("CREATE INDEX CONCURRENTLY i3 ON c (id)"), 1u) << trace.dump();
  EXPECT_NE(trace.index_of("log: abandoned 41"), std::string::npos) << trace.dump();
  EXPECT_NE(trace.index_of("log: finish succeeded 500 3"), std::string::npos) << trace.dump();
  // The new attempt starts where the last one stopped.
  EXPECT_EQ(log.running_from, (std::vector<int>{2}));
  ASSERT_EQ(reporter.skipped.size(), 1u);
  EXPECT_TRUE(contains(reporter.skipped[0], "2")) << reporter.skipped[0];
}

TEST_F(NoTxRunnerTest, ChangedFileStartsOver) {
  log.reads = {std::vector<Attempt>{
      row(41, 5, "idx", Direction::kUp, Outcome::kRunning, "an-older-checksum", 2)}};
  (void)runner.run(notx, RunOptions{});
  EXPECT_EQ(steps_sent("CREATE INDEX CONCURRENTLY"), 3u) << trace.dump();
  EXPECT_TRUE(reporter.skipped.empty());
}

TEST_F(NoTxRunnerTest, FailedStatementRecordsProgressAndLine) {
  log.reads = {std::vector<Attempt>{}};
  conn.failures.push_back(
      {"CREATE INDEX CONCURRENTLY i2 ON b (id)", "relation \"b\" does not exist", "42P01", 0});
  try {
    (void)runner.run(notx, RunOptions{});
    FAIL() << "no StepFailed";
  } catch (const StepFailed& e) {
    EXPECT_EQ(e.sqlstate(), "42P01");
    EXPECT_TRUE(std::string(e.what()).starts_with("5_idx.up.sql:3: ")) << e.what();  // line 3
  }
  EXPECT_NE(trace.index_of("log: finish failed 500 1"), std::string::npos) << trace.dump();
  ASSERT_EQ(log.attempts.size(), 1u);
  EXPECT_EQ(log.attempts[0].sqlstate, "42P01");
  EXPECT_EQ(steps_sent("i3 ON"), 0u) << trace.dump();
  EXPECT_EQ(lock.released, 1);
}

TEST_F(NoTxRunnerTest, StepErrorReportedEvenWhenRecordingItFails) {
  log.reads = {std::vector<Attempt>{}};
  conn.failures.push_back(
      {"CREATE INDEX CONCURRENTLY i2 ON b (id)", "relation \"b\" does not exist", "42P01", 0});
  log.failing_writes.emplace("finish",
                             DbError("permission denied for table stepwise_log", "42501"));
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

TEST_F(NoTxRunnerTest, DdlStatementsAreNotRecordedTogetherWithTheirProgress) {
  log.reads = {std::vector<Attempt>{}};
  (void)runner.run(notx, RunOptions{});
  EXPECT_EQ(trace.count("log: progress 500 1"), 1u) << trace.dump();
  EXPECT_EQ(std::count_if(trace.events.begin(), trace.events.end(),
                          [](const std::string& e) { return contains(e, "with the statement"); }),
            0)
      << trace.dump();
}

TEST_F(NoTxRunnerTest, StatementTimeoutSetForTheSessionAndReset) {
  log.reads = {std::vector<Attempt>{}};
  RunOptions o;
  o.statement_timeout = std::chrono::milliseconds(2500);
  (void)runner.run(notx, o);
  const auto find = [&](std::string_view needle) {
    return std::find_if(conn.sent.begin(), conn.sent.end(),
                        [&](const std::string& s) { return contains(s, needle); });
  };
  const auto set_it = find("SET statement_timeout = 2500;");
  ASSERT_NE(set_it, conn.sent.end()) << trace.dump();
  EXPECT_FALSE(contains(*set_it, "SET LOCAL")) << *set_it;
  const auto first = find("CREATE INDEX CONCURRENTLY i1 ON a (id)");
  ASSERT_NE(first, conn.sent.end()) << trace.dump();
  EXPECT_LT(set_it, first);
  const auto reset = find("RESET statement_timeout");
  ASSERT_NE(reset, conn.sent.end()) << trace.dump();
  EXPECT_GT(reset, find("CREATE INDEX CONCURRENTLY i3 ON c (id)"));
}

// COPY ... FROM STDIN data: cut out of the text and handed over as COPY data, in both kinds.
constexpr const char* kCopyFile =
    "CREATE TABLE p (a int);\nCOPY p (a) FROM stdin;\n1\n2\n\\.\nSELECT 1;\n";

TEST_F(RunnerTest, TransactionalCopyDataGoesThroughTheCopyProtocol) {
  const auto copy =
      build_migration_set(std::vector<MigrationFile>{file("7_copy.up.sql", kCopyFile)});
  log.reads = {std::vector<Attempt>{}};
  (void)runner.run(copy, RunOptions{});
  ASSERT_EQ(conn.sent.size(), 1u) << trace.dump();  // one text for the whole step
  EXPECT_EQ(conn.copy_blocks[0], (std::vector<std::string>{"1\n2\n"}));
  EXPECT_FALSE(contains(conn.sent[0], "\\.")) << conn.sent[0];
  EXPECT_TRUE(contains(conn.sent[0], "COPY p (a) FROM stdin;\n\n\n\nSELECT 1;")) << conn.sent[0];
}

TEST_F(RunnerTest, NoTransactionDataStatementsCommitWithTheirProgress) {
  const auto copy = build_migration_set(std::vector<MigrationFile>{
      file("7_copy.up.sql", std::string("-- stepwise:no-transaction\n") + kCopyFile)});
  log.reads = {std::vector<Attempt>{}};
  (void)runner.run(copy, RunOptions{});
  std::size_t blocks = 0;
  for (const auto& b : conn.copy_blocks) {
    if (b.empty()) continue;
    ++blocks;
    EXPECT_EQ(b, (std::vector<std::string>{"1\n2\n"}));
  }
  EXPECT_EQ(blocks, 1u) << trace.dump();
  // CREATE TABLE is DDL: progress on its own. COPY and SELECT: progress with the statement, so
  // that a kill between the two cannot make the next run load the rows again.
  EXPECT_EQ(trace.count("log: progress 500 1"), 1u) << trace.dump();
  EXPECT_EQ(trace.count("log: progress with the statement 500 2"), 1u) << trace.dump();
  EXPECT_EQ(trace.count("log: progress with the statement 500 3"), 1u) << trace.dump();
}

}  // namespace
}  // namespace stepwise
