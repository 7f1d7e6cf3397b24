#pragma once
// The one-writer lock. PostgreSQL: a session advisory lock polled with pg_try_advisory_lock.
#include <atomic>
#include <chrono>
#include <functional>
#include <string>

#include "stepwise/database.hpp"
#include "stepwise/table_name.hpp"

namespace stepwise {

struct LockWait {
  std::chrono::milliseconds timeout{600'000};
  // Called every few seconds while waiting, with the time waited and who holds the lock.
  std::function<void(std::chrono::milliseconds waited, const std::string& holder)> on_wait;
  const std::atomic<bool>* stop = nullptr;  // set by a signal: give up waiting
};

class Lock {
 public:
  virtual ~Lock() = default;
  // Returns once held; throws LockTimeout or Interrupted.
  virtual void acquire(const LockWait& wait) = 0;
  // Releases and verifies the server agreed it was held; throws Error otherwise.
  virtual void release() = 0;
  [[nodiscard]] virtual std::string describe() const = 0;
};

// Never blocks inside pg_advisory_lock: a waiter blocked there holds a snapshot that makes the
// holder's CREATE INDEX CONCURRENTLY wait for it, forever. Polling leaves nothing behind on
// timeout, either.
class AdvisoryLock final : public Lock {
 public:
  AdvisoryLock(Connection& conn, const TableName& log_table);
  void acquire(const LockWait& wait) override;
  void release() override;
  [[nodiscard]] std::string describe() const override;
  [[nodiscard]] long long key() const noexcept { return key_; }

 private:
  [[nodiscard]] std::string holder();
  Connection& conn_;
  TableName table_;
  long long key_;
};

// Holds a lock for a scope; releases (best effort) when unwinding.
class LockGuard {
 public:
  LockGuard(Lock& lock, const LockWait& wait) : lock_(lock) { lock_.acquire(wait); }
  ~LockGuard();
  void release();  // explicit release that reports failure
  LockGuard(const LockGuard&) = delete;
  LockGuard& operator=(const LockGuard&) = delete;

 private:
  Lock& lock_;
  bool held_ = true;
};

}  // namespace stepwise
