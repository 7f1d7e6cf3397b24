// The lock a run takes and its lease, over both engines' rules, without a server: the pooler
// probe is a callback, the lease's connection a fake.
#include "stepwise/lock_policy.hpp"

#include <gtest/gtest.h>

#include "stepwise/errors.hpp"

namespace stepwise {
namespace {

using std::chrono::milliseconds;

constexpr const char* kAutoChoseLease =
    "a connection pooler is between stepwise and the server (the backend pid differs from the "
    "server session's): using the lease lock";
constexpr const char* kAdvisoryThroughPooler =
    "a connection pooler is between stepwise and the server: --lock-strategy advisory is safe "
    "only in session pooling mode; a step that lands on another server session stops with exit "
    "code 9, unapplied";

class CancelCountingConnection final : public Connection {
 public:
  Rows execute(std::string_view) override { return {}; }
  Rows query(std::string_view, const Params&) override { return {}; }
  std::string quote_identifier(std::string_view n) override { return std::string(n); }
  std::string quote_literal(std::string_view v) override { return std::string(v); }
  void cancel() noexcept override { ++cancels; }
  int backend_pid() const override { return 1; }
  void on_notice(std::function<void(std::string_view)>) override {}
  int cancels = 0;
};

// A probe answering `pooled`, counting how often it is asked.
struct Probe {
  bool pooled = false;
  int asked = 0;
  std::function<bool()> fn() {
    return [this] {
      ++asked;
      return pooled;
    };
  }
};

TEST(LockPolicy, PostgresWithoutAPoolerTakesTheAdvisoryLockAndSaysNothing) {
  const PostgresRules pg;
  Probe probe;
  const auto d = decide_lock(pg, LockStrategy::kAuto, probe.fn());
  EXPECT_EQ(probe.asked, 1);
  EXPECT_EQ(d.kind, LockKind::kAdvisory);
  EXPECT_FALSE(d.pooled);
  EXPECT_EQ(d.level, LockDecision::Level::kNone);
  EXPECT_EQ(d.message, "");
  const auto lease = decide_lock(pg, LockStrategy::kLease, probe.fn());
  EXPECT_EQ(lease.kind, LockKind::kLease);
  EXPECT_EQ(lease.level, LockDecision::Level::kNone);
}

TEST(LockPolicy, PostgresBehindAPoolerTakesTheLeaseOnAutoAndSaysWhy) {
  const PostgresRules pg;
  Probe probe{true};
  const auto d = decide_lock(pg, LockStrategy::kAuto, probe.fn());
  EXPECT_EQ(d.kind, LockKind::kLease);
  EXPECT_TRUE(d.pooled);
  EXPECT_EQ(d.level, LockDecision::Level::kInfo);
  EXPECT_EQ(d.message, kAutoChoseLease);
}

TEST(LockPolicy, AdvisoryAskedForThroughAPoolerIsKeptWithAWarning) {
  const PostgresRules pg;
  Probe probe{true};
  const auto d = decide_lock(pg, LockStrategy::kAdvisory, probe.fn());
  EXPECT_EQ(d.kind, LockKind::kAdvisory);
  EXPECT_TRUE(d.pooled);
  EXPECT_EQ(d.level, LockDecision::Level::kWarn);
  EXPECT_EQ(d.message, kAdvisoryThroughPooler);
  // The lease asked for through a pooler: what works there, nothing to say.
  const auto lease = decide_lock(pg, LockStrategy::kLease, probe.fn());
  EXPECT_EQ(lease.kind, LockKind::kLease);
  EXPECT_TRUE(lease.pooled);
  EXPECT_EQ(lease.level, LockDecision::Level::kNone);
  EXPECT_EQ(lease.message, "");
}

TEST(LockPolicy, CockroachTakesTheLeaseWithoutAskingAboutAPooler) {
  for (const bool on_server : {true, false}) {
    const CockroachRules crdb(on_server);
    Probe probe{true};
    for (const auto strategy : {LockStrategy::kAuto, LockStrategy::kLease}) {
      const auto d = decide_lock(crdb, strategy, probe.fn());
      EXPECT_EQ(d.kind, LockKind::kLease);
      EXPECT_FALSE(d.pooled);
      EXPECT_EQ(d.level, LockDecision::Level::kNone);
    }
    EXPECT_THROW((void)decide_lock(crdb, LockStrategy::kAdvisory, probe.fn()), UsageError);
    EXPECT_EQ(probe.asked, 0);
  }
}

TEST(LockPolicy, TheLeaseNamesItsHolderAndStopsTheRunWhenLost) {
  CancelCountingConnection running;
  std::atomic<bool> stop{false};
  std::atomic<Connection*> active{&running};
  std::vector<std::string> logged;
  int opened = 0;
  LeaseSetup setup;
  setup.log_table = TableName{"ops", "migrations"};
  setup.ttl = milliseconds(45'000);
  setup.host = "pod-7";
  setup.pid = 4242;
  setup.nonce = 0xabcd;
  setup.open_connection = [&opened]() -> std::unique_ptr<Connection> {
    ++opened;
    return std::make_unique<CancelCountingConnection>();
  };
  setup.stop = &stop;
  setup.active = &active;
  setup.log_error = [&logged](const std::string& m) { logged.push_back(m); };
  const auto o = lease_options(std::move(setup));
  EXPECT_EQ(o.holder_id, "pod-7:4242:0000abcd");
  EXPECT_EQ(o.ttl, milliseconds(45'000));
  EXPECT_EQ(o.log_table, (TableName{"ops", "migrations"}));
  ASSERT_TRUE(o.open_connection);
  EXPECT_NE(o.open_connection(), nullptr);
  EXPECT_EQ(opened, 1);
  EXPECT_FALSE(stop.load());
  ASSERT_TRUE(o.on_lost);
  o.on_lost("taken over by pod-8:1:00000001");
  EXPECT_TRUE(stop.load());
  EXPECT_EQ(running.cancels, 1);
  EXPECT_EQ(logged, std::vector<std::string>{
                        "lost the migration lease: taken over by pod-8:1:00000001; stopping"});
  // Nothing running (between statements): nothing to cancel.
  active.store(nullptr);
  o.on_lost("expired");
  EXPECT_EQ(running.cancels, 1);
}

TEST(LockPolicy, ALeaseWithoutCallbacksStillHasAHolderAndASafeOnLost) {
  LeaseSetup setup;
  setup.host = "h";
  setup.pid = 1;
  const auto o = lease_options(std::move(setup));
  EXPECT_EQ(o.holder_id, "h:1:00000000");
  EXPECT_EQ(o.ttl, milliseconds(30'000));
  EXPECT_NO_THROW(o.on_lost("expired"));
}

}  // namespace
}  // namespace stepwise
