// The progress monitor: reading progress rows, estimating time left, the text line, and when
// the monitor opens its connection (never before a step has run for one interval).
#include <gtest/gtest.h>

#include <atomic>
#include <mutex>

#include "stepwise/progress.hpp"

namespace stepwise {
namespace {

using namespace std::chrono_literals;

// kProgressQuery's 21 columns: state, wait type, wait event, then the views' counters.
Row progress_row(std::map<std::size_t, std::string> values) {
  Row row(21);
  for (auto& [i, v] : values) row[i] = std::move(v);
  return row;
}

TEST(ProgressRow, AnIndexScanCountsBlocks) {
  const auto p = progress_from_row(progress_row({{0, "active"},
                                                 {3,
                                                  "CREATE INDEX CONCURRENTLY: building index: "
                                                  "scanning table"},
                                                 {4, "1200"},
                                                 {5, "2667"},
                                                 {6, "0"},
                                                 {7, "0"}}));
  EXPECT_EQ(p.activity, "CREATE INDEX CONCURRENTLY: building index: scanning table");
  EXPECT_EQ(p.unit, "blocks");
  EXPECT_EQ(p.done, 1200);
  EXPECT_EQ(p.total, 2667);
  EXPECT_TRUE(p.wait_event.empty());
}

TEST(ProgressRow, LoadingTheTreeCountsTuples) {
  const auto p = progress_from_row(progress_row({{0, "active"},
                                                 {3,
                                                  "CREATE INDEX: building index: loading "
                                                  "tuples in tree"},
                                                 {4, "0"},
                                                 {5, "0"},
                                                 {6, "500"},
                                                 {7, "1000"}}));
  EXPECT_EQ(p.unit, "tuples");
  EXPECT_EQ(p.done, 500);
  EXPECT_EQ(p.total, 1000);
}

TEST(ProgressRow, CopyFromStdinHasTuplesButNoTotal) {
  const auto p = progress_from_row(
      progress_row({{0, "active"}, {8, "COPY FROM"}, {9, "4096"}, {10, "0"}, {11, "77"}}));
  EXPECT_EQ(p.activity, "COPY FROM");
  EXPECT_EQ(p.unit, "tuples");
  EXPECT_EQ(p.done, 77);
  EXPECT_FALSE(p.total);
  EXPECT_NE(describe_progress(p).find("77 tuples so far"), std::string::npos)
      << describe_progress(p);
}

TEST(ProgressRow, ALockWaitIsReportedOnlyWhileTheStatementIsActive) {
  auto p = progress_from_row(progress_row({{0, "active"}, {1, "Lock"}, {2, "relation"}}));
  EXPECT_EQ(p.wait_event, "Lock/relation");
  p = progress_from_row(progress_row({{0, "idle"}, {1, "Client"}, {2, "ClientRead"}}));
  EXPECT_TRUE(p.wait_event.empty());
}

TEST(ProgressRow, AShortRowFromAnOldServerStillReadsTheWait) {
  const auto p =
      progress_from_row(Row{std::string("active"), std::string("Lock"), std::string("relation")});
  EXPECT_EQ(p.wait_event, "Lock/relation");
  EXPECT_TRUE(p.activity.empty());
}

TEST(PhaseRate, EstimatesFromTheRateSinceThePhaseWasFirstSeen) {
  PhaseRate rate;
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_FALSE(rate.observe("scan", 100, 1100, t0));           // first sight: no rate yet
  const auto left = rate.observe("scan", 300, 1100, t0 + 2s);  // 100 per second, 800 to go
  ASSERT_TRUE(left);
  EXPECT_NEAR(static_cast<double>(left->count()), 8000.0, 5.0);
  EXPECT_FALSE(rate.observe("sort", 10, 1000, t0 + 3s)) << "a new phase starts over";
  EXPECT_FALSE(rate.observe("sort", 10, 1000, t0 + 4s)) << "no progress: no estimate";
}

TEST(DescribeProgress, NamesTheBlockerWithoutItsQueryUnlessGiven) {
  StepProgress p;
  p.elapsed = 12s;
  p.wait_event = "Lock/relation";
  Blocker b;
  b.pid = 4242;
  b.application_name = "psql";
  b.state = "idle in transaction";
  b.transaction_age = 130s;
  p.blockers.push_back(b);
  auto line = describe_progress(p);
  EXPECT_NE(line.find("12.0s elapsed"), std::string::npos) << line;
  EXPECT_NE(line.find("waiting for Lock/relation"), std::string::npos) << line;
  EXPECT_NE(line.find("blocked by pid 4242 (psql, idle in transaction, transaction open 2m10s)"),
            std::string::npos)
      << line;
  EXPECT_EQ(line.find(": "), std::string::npos) << "no query text: " << line;
  p.blockers[0].query = "UPDATE accounts\nSET balance = 0";
  line = describe_progress(p);
  EXPECT_NE(line.find(": UPDATE accounts SET balance = 0"), std::string::npos) << line;
  EXPECT_EQ(line.find('\n'), std::string::npos);
}

// Serves the monitor's queries with canned rows and counts what it is asked.
class FakeMonitorConnection final : public Connection {
 public:
  explicit FakeMonitorConnection(std::atomic<int>& queries) : queries_(queries) {}
  Rows execute(std::string_view) override { return {}; }
  Rows query(std::string_view sql, const Params&) override {
    ++queries_;
    if (sql.find("pg_blocking_pids") != std::string_view::npos)
      return {Row{std::string("99"), std::string("app"), std::string("idle in transaction"),
                  std::string("5000"), std::string("")}};
    return {progress_row({{0, "active"}, {1, "Lock"}, {2, "relation"}})};
  }
  std::string quote_identifier(std::string_view n) override { return std::string(n); }
  std::string quote_literal(std::string_view v) override { return std::string(v); }
  void cancel() noexcept override {}
  int backend_pid() const override { return 1; }
  void on_notice(std::function<void(std::string_view)>) override {}

 private:
  std::atomic<int>& queries_;
};

struct Recorded {
  std::mutex mutex;
  std::vector<StepProgress> reports;
  std::size_t size() {
    std::lock_guard<std::mutex> g(mutex);
    return reports.size();
  }
};

TEST(ProgressMonitor, AShortStepOpensNoConnectionAndReportsNothing) {
  std::atomic<int> opened{0}, queries{0};
  ProgressMonitor::Options o;
  o.interval = 200ms;
  o.backend_pid = 1234;
  o.open_connection = [&] {
    ++opened;
    return std::make_unique<FakeMonitorConnection>(queries);
  };
  ProgressMonitor monitor(o);
  Recorded seen;
  {
    ProgressMonitor::Watch watch(monitor, [&](const StepProgress& p) {
      std::lock_guard<std::mutex> g(seen.mutex);
      seen.reports.push_back(p);
    });
    std::this_thread::sleep_for(20ms);
  }
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(opened.load(), 0);
  EXPECT_EQ(seen.size(), 0u);
}

TEST(ProgressMonitor, ALongStepIsReportedEveryIntervalWithItsBlocker) {
  std::atomic<int> opened{0}, queries{0};
  ProgressMonitor::Options o;
  o.interval = 100ms;
  o.backend_pid = 1234;
  o.open_connection = [&] {
    ++opened;
    return std::make_unique<FakeMonitorConnection>(queries);
  };
  ProgressMonitor monitor(o);
  Recorded seen;
  {
    ProgressMonitor::Watch watch(monitor, [&](const StepProgress& p) {
      std::lock_guard<std::mutex> g(seen.mutex);
      seen.reports.push_back(p);
    });
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while (seen.size() < 3 && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(10ms);
  }
  ASSERT_GE(seen.size(), 3u);
  EXPECT_EQ(opened.load(), 1) << "one connection, reused";
  const auto& first = seen.reports[0];
  EXPECT_TRUE(first.detailed);
  EXPECT_GE(first.elapsed, 100ms);
  ASSERT_EQ(first.blockers.size(), 1u);
  EXPECT_EQ(first.blockers[0].pid, 99);
  EXPECT_EQ(first.blockers[0].transaction_age, 5000ms);
  EXPECT_LT(seen.reports[0].elapsed, seen.reports[2].elapsed);
}

TEST(ProgressMonitor, AnUnknownSessionDegradesToElapsedTimeWithOneWarning) {
  std::atomic<int> opened{0}, queries{0}, warnings{0};
  ProgressMonitor::Options o;
  o.interval = 50ms;
  o.backend_pid = 0;  // through a pooler
  o.open_connection = [&] {
    ++opened;
    return std::make_unique<FakeMonitorConnection>(queries);
  };
  o.on_degraded = [&](const std::string&) { ++warnings; };
  ProgressMonitor monitor(o);
  Recorded seen;
  {
    ProgressMonitor::Watch watch(monitor, [&](const StepProgress& p) {
      std::lock_guard<std::mutex> g(seen.mutex);
      seen.reports.push_back(p);
    });
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while (seen.size() < 2 && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(10ms);
  }
  ASSERT_GE(seen.size(), 2u);
  EXPECT_FALSE(seen.reports[0].detailed);
  EXPECT_GT(seen.reports[1].elapsed.count(), 0);
  EXPECT_EQ(warnings.load(), 1);
  EXPECT_EQ(opened.load(), 0);
}

TEST(ProgressMonitor, AConnectionThatCannotOpenDegradesInsteadOfFailing) {
  std::atomic<int> warnings{0};
  ProgressMonitor::Options o;
  o.interval = 50ms;
  o.backend_pid = 1234;
  o.open_connection = []() -> std::unique_ptr<Connection> {
    throw ConnectError("too many connections for role \"app\"");
  };
  o.on_degraded = [&](const std::string& why) {
    EXPECT_NE(why.find("too many connections"), std::string::npos) << why;
    ++warnings;
  };
  ProgressMonitor monitor(o);
  Recorded seen;
  {
    ProgressMonitor::Watch watch(monitor, [&](const StepProgress& p) {
      std::lock_guard<std::mutex> g(seen.mutex);
      seen.reports.push_back(p);
    });
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while (seen.size() < 2 && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(10ms);
  }
  ASSERT_GE(seen.size(), 2u);
  EXPECT_FALSE(seen.reports[1].detailed);
  EXPECT_EQ(warnings.load(), 1);
}

}  // namespace
}  // namespace stepwise
