#pragma once
// The one-writer lock. The waiting policy (poll, re-read the log, time out) lives in the
// runner; a Lock only knows how to try, release, and say who holds it.
#include <string>

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
  [[nodiscard]] long long key() const noexcept { return key_; }

 private:
  Connection& conn_;
  TableName table_;
  long long key_;
};

}  // namespace stepwise
