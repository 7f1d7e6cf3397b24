#include <fmt/format.h>

#include <random>
#include <thread>

#include "stepwise/duration.hpp"
#include "stepwise/errors.hpp"
#include "stepwise/lock.hpp"

namespace stepwise {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

AdvisoryLock::AdvisoryLock(Connection& conn, const TableName& log_table)
    : conn_(conn), table_(log_table), key_(lock_key(log_table)) {}

std::string AdvisoryLock::describe() const {
  return fmt::format("advisory lock {} (log table {})", key_, table_.display());
}

std::string AdvisoryLock::holder() {
  // A bigint advisory key shows in pg_locks as classid = high 32 bits, objid = low 32 bits.
  const auto k = static_cast<unsigned long long>(key_);
  try {
    const auto rows = conn_.query(
        "SELECT a.pid, coalesce(a.application_name, ''), coalesce(host(a.client_addr), 'local'),"
        " coalesce(to_char(now() - a.backend_start, 'HH24:MI:SS'), '')"
        " FROM pg_catalog.pg_locks l JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid"
        " WHERE l.locktype = 'advisory' AND l.granted AND l.database ="
        " (SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database())"
        " AND l.classid = $1::bigint::oid AND l.objid = $2::bigint::oid AND l.objsubid = 1",
        {std::to_string(k >> 32), std::to_string(k & 0xffffffffull)});
    if (rows.empty()) return "unknown session";
    const auto& r = rows[0];
    return fmt::format("backend pid {} ({} from {}, connected {})", r[0].value_or("?"),
                       r[1].value_or("").empty() ? "no application_name" : *r[1],
                       r[2].value_or("?"), r[3].value_or("?"));
  } catch (const DbError&) {
    return "unknown session";
  }
}

void AdvisoryLock::acquire(const LockWait& wait) {
  const auto start = Clock::now();
  auto next_report = start + milliseconds(2000);
  std::minstd_rand jitter(static_cast<unsigned>(conn_.backend_pid()));
  milliseconds sleep{10};
  const Params key{std::to_string(key_)};
  while (true) {
    const auto rows = conn_.query("SELECT pg_try_advisory_lock($1::bigint)", key);
    if (rows.at(0).at(0).value_or("f") == "t") return;
    const auto now = Clock::now();
    const auto waited = std::chrono::duration_cast<milliseconds>(now - start);
    if (waited >= wait.timeout)
      throw LockTimeout(
          fmt::format("could not take the migration lock within {}: held by {}",
                      format_duration(wait.timeout), holder()),
          "another stepwise run is applying migrations; wait for it, or raise --lock-timeout");
    if (now >= next_report) {
      if (wait.on_wait) wait.on_wait(waited, holder());
      next_report = now + milliseconds(5000);
    }
    // Short sleeps: a waiter should notice a released lock within ~100 ms.
    const auto nap = std::min(sleep + milliseconds(jitter() % 10), wait.timeout - waited);
    for (auto slept = milliseconds(0); slept < nap; slept += milliseconds(5)) {
      if (wait.stop && wait.stop->load()) throw Interrupted("interrupted while waiting for the migration lock");
      std::this_thread::sleep_for(milliseconds(5));
    }
    sleep = std::min(sleep * 2, milliseconds(100));
  }
}

void AdvisoryLock::release() {
  const auto rows = conn_.query("SELECT pg_advisory_unlock($1::bigint)", {std::to_string(key_)});
  if (rows.at(0).at(0).value_or("f") != "t")
    throw Error(ExitCode::kFailed,
                fmt::format("the {} was not held at release; another runner may have run concurrently",
                            describe()));
}

LockGuard::~LockGuard() {
  if (!held_) return;
  try {
    lock_.release();
  } catch (...) {
    // Unwinding already; a broken connection releases a session lock on the server anyway.
  }
}

void LockGuard::release() {
  if (!held_) return;
  held_ = false;
  lock_.release();
}

}  // namespace stepwise
