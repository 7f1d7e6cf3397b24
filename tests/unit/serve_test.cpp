// serve's parts without HTTP or a database: the event log (order, replay, waiting, closing,
// redaction), the bearer-token check, the Prometheus text and the page's self-containment.
#include <gtest/gtest.h>

#include <future>
#include <thread>

#include "stepwise/migration.hpp"
#include "stepwise/serve.hpp"

namespace stepwise {
namespace {

using std::chrono::milliseconds;

MigrationSet two_files() {
  std::vector<MigrationFile> files(2);
  files[0].name = "1_a.up.sql";
  files[0].bytes = "CREATE TABLE a (id int);";
  files[1].name = "2_b.up.sql";
  files[1].bytes = "CREATE TABLE b (id int);";
  return build_migration_set(files);
}

TEST(ServeEventLog, NumbersEventsAndReplaysThemToALateSubscriber) {
  const auto set = two_files();
  EventLog log;
  log.track_overall(2, {{set.all()[0].version, "1.1"}, {set.all()[1].version, "2.0"}});
  log.emit("started", {{"to", "2.0"}});
  Step a;
  a.migration = &set.all()[0];
  Step b;
  b.migration = &set.all()[1];
  log.step_started(a, 1, 1);
  log.step_finished(a, 1, 1, milliseconds(40));
  log.step_started(b, 1, 1);
  EXPECT_EQ(log.current()["state"], "running");
  EXPECT_EQ(log.current_file(), "2_b.up.sql");
  log.step_finished(b, 1, 1, milliseconds(60));
  log.emit("finished", {{"reached", "2.0"}});
  log.emit("warning", {{"message", "dropped: the log is closed"}});
  EXPECT_TRUE(log.closed());
  const auto all = log.after(0, milliseconds(0));
  ASSERT_EQ(all.size(), 6u);
  std::vector<std::string> types;
  for (std::size_t i = 0; i < all.size(); ++i) {
    EXPECT_EQ(all[i].id, i + 1);
    EXPECT_EQ(all[i].data["id"], i + 1);
    EXPECT_EQ(all[i].data["type"], all[i].type);
    EXPECT_TRUE(all[i].data.contains("time"));
    types.push_back(all[i].type);
  }
  EXPECT_EQ(types, (std::vector<std::string>{"started", "step_started", "step_finished",
                                             "step_started", "step_finished", "finished"}));
  // Overall numbering across runner calls, with the release of each step.
  EXPECT_EQ(all[2].data["step"], 1);
  EXPECT_EQ(all[2].data["steps"], 2);
  EXPECT_EQ(all[2].data["release"], "1.1");
  EXPECT_EQ(all[2].data["duration_ms"], 40);
  EXPECT_EQ(all[4].data["step"], 2);
  EXPECT_EQ(all[4].data["release"], "2.0");
  EXPECT_EQ(all[4].data["remaining_ms"], 0);
  // From an id on: only what came after it.
  const auto tail = log.after(4, milliseconds(0));
  ASSERT_EQ(tail.size(), 2u);
  EXPECT_EQ(tail[0].type, "step_finished");
  EXPECT_EQ(sse_frame(tail[1]).rfind("id: 6\nevent: finished\ndata: {", 0), 0u);
  EXPECT_TRUE(sse_frame(tail[1]).ends_with("}\n\n"));
}

TEST(ServeEventLog, AWaitingSubscriberWakesForTheNextEvent) {
  EventLog log;
  auto waiter = std::async(std::launch::async, [&] { return log.after(0, milliseconds(5000)); });
  std::this_thread::sleep_for(milliseconds(50));
  const auto t0 = std::chrono::steady_clock::now();
  log.emit("started");
  const auto got = waiter.get();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, milliseconds(1000));
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].type, "started");
  // Nothing new: the wait runs out empty.
  EXPECT_TRUE(log.after(1, milliseconds(20)).empty());
}

TEST(ServeEventLog, SecretsAreMaskedInEveryEvent) {
  EventLog log({"hunter2-secret"});
  log.emit("failed", {{"error", "cannot connect to postgres://app:pw@db/x: hunter2-secret"},
                      {"nested", {{"holder", "hunter2-secret"}}}});
  const auto e = log.after(0, milliseconds(0)).at(0);
  const auto text = sse_frame(e);
  EXPECT_EQ(text.find("hunter2-secret"), std::string::npos) << text;
  EXPECT_EQ(text.find(":pw@"), std::string::npos) << text;
  EXPECT_NE(text.find("***"), std::string::npos) << text;
}

TEST(ServeEventLog, CountsLockWaits) {
  EventLog log;
  log.lock_waiting(milliseconds(1000), "pid 1");
  log.lock_waiting(milliseconds(3000), "pid 1");
  log.lock_acquired(milliseconds(3500));
  log.lock_waiting(milliseconds(500), "pid 2");
  EXPECT_EQ(log.lock_waits(), 2u);
  EXPECT_EQ(log.lock_waited(), milliseconds(3500));
}

TEST(ServeAuth, BearerTokensAreComparedExactly) {
  const std::string token = "s3cret-token-value";
  EXPECT_EQ(check_bearer("Bearer s3cret-token-value", token), AuthResult::kOk);
  EXPECT_EQ(check_bearer("bearer s3cret-token-value", token), AuthResult::kOk);
  EXPECT_EQ(check_bearer("Bearer s3cret-token-valu", token), AuthResult::kWrong);
  EXPECT_EQ(check_bearer("Bearer s3cret-token-value2", token), AuthResult::kWrong);
  EXPECT_EQ(check_bearer("Bearer S3cret-token-value", token), AuthResult::kWrong);
  EXPECT_EQ(check_bearer("", token), AuthResult::kMissing);
  EXPECT_EQ(check_bearer("Bearer ", token), AuthResult::kMissing);
  EXPECT_EQ(check_bearer("Basic czNjcmV0", token), AuthResult::kMissing);
  EXPECT_EQ(check_bearer("s3cret-token-value", token), AuthResult::kMissing);
  EXPECT_TRUE(equal_constant_time("abc", "abc"));
  EXPECT_FALSE(equal_constant_time("abc", "abd"));
  EXPECT_FALSE(equal_constant_time("abc", ""));
}

TEST(ServeMetrics, PrometheusTextDeclaresEachNameOnce) {
  Metrics m;
  m.gauge("stepwise_schema_version", "version", 20240315100000.0);
  m.counter("stepwise_upgrades_total", "upgrades", 2, "outcome=\"succeeded\"");
  m.counter("stepwise_upgrades_total", "upgrades", 0, "outcome=\"failed\"");
  m.gauge("stepwise_last_upgrade_duration_seconds", "took", 1.25);
  EXPECT_EQ(m.text(),
            "# HELP stepwise_schema_version version\n# TYPE stepwise_schema_version gauge\n"
            "stepwise_schema_version 20240315100000\n"
            "# HELP stepwise_upgrades_total upgrades\n# TYPE stepwise_upgrades_total counter\n"
            "stepwise_upgrades_total{outcome=\"succeeded\"} 2\n"
            "stepwise_upgrades_total{outcome=\"failed\"} 0\n"
            "# HELP stepwise_last_upgrade_duration_seconds took\n"
            "# TYPE stepwise_last_upgrade_duration_seconds gauge\n"
            "stepwise_last_upgrade_duration_seconds 1.25\n");
}

TEST(ServePage, IsOneSelfContainedDocument) {
  const auto page = maintenance_page();
  EXPECT_TRUE(page.starts_with("<!doctype html>"));
  EXPECT_NE(page.find("name=\"viewport\""), std::string_view::npos);
  // No external assets: nothing loaded from another origin or file.
  for (const auto* bad : {"http://", "https://", "src=\"", "<link", "@import", "url("})
    EXPECT_EQ(page.find(bad), std::string_view::npos) << bad;
  // No cookies, no storage of the token.
  for (const auto* bad : {"document.cookie", "localStorage", "sessionStorage"})
    EXPECT_EQ(page.find(bad), std::string_view::npos) << bad;
  for (const auto* id : {"id=\"overall\"", "id=\"current-step\"", "id=\"final\"", "id=\"token\""})
    EXPECT_NE(page.find(id), std::string_view::npos) << id;
}

}  // namespace
}  // namespace stepwise
