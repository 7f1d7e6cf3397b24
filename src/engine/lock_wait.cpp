// Waiting for the migration lock, and holding it (stepwise/lock.hpp).
#include <fmt/format.h>

#include <algorithm>
#include <thread>

#include "stepwise/duration.hpp"
#include "stepwise/errors.hpp"
#include "stepwise/lock.hpp"

namespace stepwise {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

namespace {

bool stopping(const LockWait& w) {
  return w.stop != nullptr && w.stop->load();
}

// Sleeps `length` (at most until the timeout), watching for a stop; then doubles it up to 40 ms.
void nap(milliseconds& length, milliseconds waited, const LockWait& w) {
  const auto until = Clock::now() + std::min(length, w.timeout - waited);
  while (Clock::now() < until) {
    if (stopping(w))
      throw Interrupted(fmt::format("{}interrupted while waiting for the migration lock", w.who));
    std::this_thread::sleep_for(std::min(milliseconds(5), length));
  }
  length = std::min(length * 2, milliseconds(40));
}

}  // namespace

bool wait_for_lock(Lock& lock, const LockWait& w) {
  const auto start = Clock::now();
  auto next_report = start + milliseconds(2000);
  auto next_read = start + w.reread;
  milliseconds length{5};
  const bool shared = lock.has_shared_mode();
  for (bool first = true;; first = false) {
    // With a shared mode, a waiter polls for the writer to be gone; it then reads the log under
    // the shared lock, alongside the other waiters rather than one after another, and only
    // competes for the lock itself when work is left.
    bool writer_gone = false;
    if (!first && shared && lock.try_acquire_shared()) {
      writer_gone = true;
      bool done = false;
      try {
        done = w.nothing_left && w.nothing_left();
      } catch (...) {
        lock.release_shared();
        throw;
      }
      lock.release_shared();
      if (done) return false;
    }
    if ((first || writer_gone || !shared) && lock.try_acquire()) return true;

    const auto waited = std::chrono::duration_cast<milliseconds>(Clock::now() - start);
    if (waited >= w.timeout)
      throw LockTimeout(
          fmt::format("{}could not take the migration lock within {}: held by {}", w.who,
                      format_duration(w.timeout), lock.holder()),
          "another stepwise run is applying migrations; wait for it, or raise --lock-timeout");
    // The holder may finish the very work this run came for while keeping the lock (a lease
    // has no shared mode): then there is nothing to wait for.
    if (!shared && w.nothing_left && Clock::now() >= next_read) {
      if (w.nothing_left()) return false;
      next_read = Clock::now() + w.reread;
    }
    if (w.on_waiting && Clock::now() >= next_report) {
      w.on_waiting(waited, lock.holder());
      next_report = Clock::now() + milliseconds(5000);
    }
    nap(length, waited, w);
  }
}

HeldLock::~HeldLock() {
  if (lock_ == nullptr) return;
  try {
    lock_->release();
  } catch (...) {
    // Unwinding already. A lost connection releases a session lock on the server anyway.
  }
}

void HeldLock::release() {
  if (lock_ == nullptr) return;
  auto* l = lock_;
  lock_ = nullptr;
  l->release();
}

}  // namespace stepwise
