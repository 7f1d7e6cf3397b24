#pragma once
// Which lock a run takes, what it tells the user about a connection pooler in between, and what
// its lease is made of: Context::make_lock's decisions without a connection. Asks the engine's
// rules (stepwise/engine.hpp); the lock itself is make_lock's.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "stepwise/database.hpp"
#include "stepwise/engine.hpp"
#include "stepwise/lock.hpp"
#include "stepwise/table_name.hpp"

namespace stepwise {

struct LockDecision {
  LockKind kind = LockKind::kAdvisory;
  bool pooled = false;  // a connection pooler is in between (asked only where it matters)
  enum class Level { kNone, kInfo, kWarn };
  Level level = Level::kNone;  // kNone: nothing to say
  std::string message;
};

// The lock `rules` choose for `requested`. `is_pooled` (behind_connection_pooler on the run's
// connection) is asked only when rules.pooler_matters(). A pooler found says so: at info level
// when auto chose the lease for it, as a warning when --lock-strategy advisory keeps a session
// lock that a pooler may strand. Throws UsageError as EngineRules::choose_lock.
[[nodiscard]] LockDecision decide_lock(const EngineRules& rules, LockStrategy requested,
                                       const std::function<bool()>& is_pooled);

// What a run's lease is made of (the advisory lock uses log_table only).
struct LeaseSetup {
  TableName log_table;
  std::chrono::milliseconds ttl{30'000};  // --lease-ttl
  std::string host;                       // the runner's host name and pid, in the holder id
  int pid = 0;
  std::uint32_t nonce = 0;  // tells runs with the same host and pid apart (pid reuse)
  // Opens the heartbeat's own connection.
  std::function<std::unique_ptr<Connection>()> open_connection;
  // When the lease is lost: `stop` is set, `active`'s running statement cancelled, and
  // "lost the migration lease: why; stopping" goes to `log_error`.
  std::atomic<bool>* stop = nullptr;
  std::atomic<Connection*>* active = nullptr;
  std::function<void(const std::string& message)> log_error;
};

// LeaseLock's options for `setup`: holder id "host:pid:nonce" (nonce in 8 hex digits), the ttl,
// the heartbeat's connection, and an on_lost that stops the run as LeaseSetup says.
[[nodiscard]] LeaseLock::Options lease_options(LeaseSetup setup);

}  // namespace stepwise
