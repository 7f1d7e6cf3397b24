#pragma once
// The one-writer lock. A Lock only knows how to try, release, and say who holds it; waiting
// for it (poll, re-read the log, time out) is wait_for_lock, holding it HeldLock: the runner
// and every command that writes the log (repair, adopt, upgrade's backup row) go through both.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "stepwise/database.hpp"
#include "stepwise/table_name.hpp"

namespace stepwise {

class Lock {
 public:
  virtual ~Lock() = default;
  // One non-blocking attempt.
  [[nodiscard]] virtual bool try_acquire() = 0;
  // Releases and verifies the server agreed it was held; throws Error otherwise.
  virtual void release() = 0;
  // Who holds it now, for "waiting for ..." messages.
  [[nodiscard]] virtual std::string holder() = 0;
  [[nodiscard]] virtual std::string describe() const = 0;

  // An optional shared mode that excludes only the writer: many waiters can then check at
  // once, each in a single query per poll, whether the writer left anything for them.
  [[nodiscard]] virtual bool has_shared_mode() const { return false; }
  // A SQL boolean expression that is true only in a session holding this lock. Each step's
  // transaction evaluates it first, so that a step sent through a connection pooler to a
  // server session other than the lock's aborts instead of applying. Empty: no check.
  [[nodiscard]] virtual std::string held_check_sql() { return {}; }
  [[nodiscard]] virtual bool try_acquire_shared() { return false; }
  virtual void release_shared() {}
};

// PostgreSQL session advisory lock, taken with pg_try_advisory_lock and never by blocking in
// pg_advisory_lock: a waiter blocked there holds a snapshot that makes the holder's CREATE
// INDEX CONCURRENTLY wait for it, forever; polling also leaves nothing behind on timeout.
class AdvisoryLock final : public Lock {
 public:
  AdvisoryLock(Connection& conn, const TableName& log_table);
  [[nodiscard]] bool try_acquire() override;
  void release() override;
  [[nodiscard]] std::string holder() override;
  [[nodiscard]] std::string describe() const override;
  [[nodiscard]] bool has_shared_mode() const override { return true; }
  [[nodiscard]] bool try_acquire_shared() override;
  void release_shared() override;
  [[nodiscard]] std::string held_check_sql() override;

 private:
  Connection& conn_;
  TableName table_;
  long long key_;
};

// A lease row in a lock table next to the log: holder id, acquired, expires (by the database
// clock), renewed by a heartbeat on its own connection, taken over only after expiry, deleted
// at release. For PgBouncer transaction pooling (where session advisory locks get stranded)
// and for CockroachDB (where advisory locks are no-ops).
class LeaseLock final : public Lock {
 public:
  struct Options {
    TableName log_table;
    std::string holder_id;  // unique per run: host:pid:random
    std::chrono::milliseconds ttl{30'000};
    // Opens the heartbeat's own connection (the main one is busy running statements).
    std::function<std::unique_ptr<Connection>()> open_connection;
    // Called from the heartbeat thread when the lease is lost (taken over, or not renewable).
    std::function<void(const std::string& why)> on_lost;
  };
  LeaseLock(Connection& conn, Options options);
  ~LeaseLock() override;
  [[nodiscard]] bool try_acquire() override;
  void release() override;
  [[nodiscard]] std::string holder() override;
  [[nodiscard]] std::string describe() const override;
  [[nodiscard]] std::string held_check_sql() override;

 private:
  void ensure_table();
  void heartbeat_loop();
  void stop_heartbeat();

  Connection& conn_;
  Options options_;
  TableName table_;
  std::string qualified_;
  bool table_checked_ = false;
  std::thread heartbeat_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
};

// How to wait for a lock (wait_for_lock).
struct LockWait {
  std::chrono::milliseconds timeout{600'000};
  // With `nothing_left`: while waiting, ask it at most this often whether the holder already
  // did this run's work. The lock itself is polled every 5 ms, backing off to 40 ms.
  std::chrono::milliseconds reread{250};
  const std::atomic<bool>* stop = nullptr;  // set on SIGINT/SIGTERM: throw Interrupted
  // True when there is nothing left to wait for (the holder did the work): the wait then ends
  // without the lock. Asked under the shared mode where the lock has one. Null: never.
  std::function<bool()> nothing_left;
  // Called after 2 s of waiting, then every 5 s.
  std::function<void(std::chrono::milliseconds waited, const std::string& holder)> on_waiting;
  // Prefixes the messages ("repair: "), empty for `up`.
  std::string who;
};

// Polls `lock` until it is taken (true) or `nothing_left` says there is nothing to wait for
// (false, without the lock). Each poll is one cheap query: dozens of waiters (replicas started
// together) must not slow the holder down. Throws LockTimeout or Interrupted.
[[nodiscard]] bool wait_for_lock(Lock& lock, const LockWait& wait);

// A lock that is held: released when the holder goes, on every path (a failure to release
// while unwinding is swallowed: a lost connection releases a session lock on the server
// anyway, a lease expires). An explicit release() reports a failed unlock.
class HeldLock {
 public:
  explicit HeldLock(Lock& lock) : lock_(&lock) {}
  ~HeldLock();
  HeldLock(HeldLock&& other) noexcept : lock_(other.lock_) { other.lock_ = nullptr; }
  HeldLock& operator=(HeldLock&&) = delete;
  HeldLock(const HeldLock&) = delete;
  HeldLock& operator=(const HeldLock&) = delete;
  // Releases now; throws Error when the server says it was not held.
  void release();
  [[nodiscard]] bool held() const noexcept { return lock_ != nullptr; }

 private:
  Lock* lock_;
};

}  // namespace stepwise
