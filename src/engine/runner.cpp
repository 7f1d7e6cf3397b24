#include "stepwise/runner.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <thread>

#include "stepwise/duration.hpp"

#include "stepwise/sql_split.hpp"
#include "stepwise/text.hpp"

namespace stepwise {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

namespace {

milliseconds since(Clock::time_point t) {
  return std::chrono::duration_cast<milliseconds>(Clock::now() - t);
}

// "LINE 3: ..." in a server message is the line within the statement text that was sent.
int server_line(std::string_view detail) {
  const auto pos = detail.find("\nLINE ");
  if (pos == std::string_view::npos) return 0;
  int line = 0;
  const auto begin = detail.data() + pos + 6;
  std::from_chars(begin, detail.data() + detail.size(), line);
  return line;
}

std::string prelude(const RunOptions& options, bool local) {
  if (options.statement_timeout.count() <= 0) return {};
  return fmt::format("SET {}statement_timeout = {};\n", local ? "LOCAL " : "",
                     options.statement_timeout.count());
}

}  // namespace

bool Runner::stopping(const RunOptions& options) const {
  return options.stop != nullptr && options.stop->load();
}

namespace {
// Releases the lock when a run unwinds; an explicit release() reports a failed unlock.
class HeldLock {
 public:
  explicit HeldLock(Lock& lock) : lock_(lock) {}
  ~HeldLock() {
    if (!held_) return;
    try {
      lock_.release();
    } catch (...) {
      // Unwinding already. A lost connection releases a session lock on the server anyway.
    }
  }
  void release() {
    held_ = false;
    lock_.release();
  }
  HeldLock(const HeldLock&) = delete;
  HeldLock& operator=(const HeldLock&) = delete;

 private:
  Lock& lock_;
  bool held_ = true;
};
}  // namespace

bool Runner::wait_for_lock(const MigrationSet& set, const RunOptions& options) {
  const auto start = Clock::now();
  auto next_report = start + milliseconds(2000);
  milliseconds nap{5};
  while (!lock_.try_acquire()) {
    const auto waited = since(start);
    if (waited >= options.lock_timeout)
      throw LockTimeout(fmt::format("could not take the migration lock within {}: held by {}",
                                    format_duration(options.lock_timeout), lock_.holder()),
                        "another stepwise run is applying migrations; wait for it, or raise --lock-timeout");
    // The holder may finish the very work this run came for: then there is nothing to wait for.
    if (make_plan(set, store_.read(), options.target, options.policy).empty()) return false;
    if (Clock::now() >= next_report) {
      reporter_.lock_waiting(waited, lock_.holder());
      next_report = Clock::now() + milliseconds(5000);
    }
    const auto until = Clock::now() + std::min(nap, options.lock_timeout - waited);
    while (Clock::now() < until) {
      if (stopping(options)) throw Interrupted("interrupted while waiting for the migration lock");
      std::this_thread::sleep_for(milliseconds(5));
    }
    nap = std::min(nap * 2, milliseconds(80));
  }
  return true;
}

RunResult Runner::run(const MigrationSet& set, const RunOptions& options) {
  RunResult result;
  // The no-op path: one read, no lock. This is what every pod start pays.
  auto history = store_.read();
  result.plan = make_plan(set, history, options.target, options.policy);
  result.version_after = result.plan.from;
  if (result.plan.empty() || options.dry_run) {
    for (const auto& w : result.plan.warnings) reporter_.warning(w);
    if (options.dry_run) reporter_.plan_ready(result.plan);
    return result;
  }

  const auto lock_start = Clock::now();
  if (!wait_for_lock(set, options)) {
    result.done_by_other = true;
    history = store_.read();
    result.plan = make_plan(set, history, options.target, options.policy);
    result.version_after = result.plan.from;
    reporter_.plan_ready(result.plan);
    return result;
  }
  HeldLock held(lock_);
  result.took_lock = true;
  reporter_.lock_acquired(since(lock_start));

  // Another runner may have done the work while we waited: read and plan again.
  store_.ensure_table();
  history = store_.read();
  result.plan = make_plan(set, history, options.target, options.policy);
  for (const auto& w : result.plan.warnings) reporter_.warning(w);
  reporter_.plan_ready(result.plan);

  const auto total = result.plan.steps.size();
  for (std::size_t i = 0; i < total; ++i) {
    if (stopping(options)) throw Interrupted("interrupted between steps; the lock is released");
    const auto& step = result.plan.steps[i];
    reporter_.step_started(step, i + 1, total);
    const auto start = Clock::now();
    // Commits before the last one need not wait for the WAL flush: the last, synchronous
    // commit flushes them all before this run reports success (see docs/design.md).
    apply(step, options, /*durable=*/i + 1 == total);
    const auto took = since(start);
    reporter_.step_finished(step, i + 1, total, took);
    result.applied.push_back({step.migration->version, step.migration->name, step.direction, took});
  }
  result.version_after = result.plan.to;
  held.release();
  return result;
}

void Runner::apply(const Step& step, const RunOptions& options, bool durable) {
  if (step.retries && step.retries->outcome == Outcome::kRunning) store_.mark_abandoned(step.retries->id);
  if (step.script().tx == TxMode::kNoTransaction)
    apply_statements(step, options);
  else
    apply_transactional(step, options, durable);
}

void Runner::apply_transactional(const Step& step, const RunOptions& options, bool durable) {
  const auto& script = step.script();
  const auto start = Clock::now();
  auto setup = prelude(options, true);
  if (!durable) setup += "SET LOCAL synchronous_commit = off;\n";
  // One round trip opens the transaction, records the attempt and runs the script. A
  // placeholder file (comments only) changes nothing: nothing of it is sent.
  const auto prefix = store_.transactional_prefix(step, setup);
  const auto prefix_lines = static_cast<int>(std::count(prefix.begin(), prefix.end(), '\n'));
  try {
    conn_.execute(is_comment_only(script.sql) ? prefix : prefix + script.sql);
    store_.commit_transactional();
  } catch (const DbError& e) {
    try {
      conn_.execute("ROLLBACK");
    } catch (const DbError&) {
    }
    const double seconds = static_cast<double>(since(start).count()) / 1000.0;
    const auto outcome = stopping(options) ? Outcome::kInterrupted : Outcome::kFailed;
    store_.insert_finished(step, outcome, seconds, 0, &e);
    const int line = server_line(e.detail()) - prefix_lines;
    fail(step, e, line > 0 ? line : 0, options);
  }
}

void Runner::apply_statements(const Step& step, const RunOptions& options) {
  const auto& script = step.script();
  const auto statements = split_sql(script.sql);
  const auto id = store_.insert_running(step);
  int done = std::min<int>(step.resume_from, static_cast<int>(statements.size()));
  if (done > 0)
    reporter_.statement_skipped(step, fmt::format("resuming after {} statement(s) already done", done));
  try {
    if (!prelude(options, false).empty()) conn_.execute(prelude(options, false));
    for (; done < static_cast<int>(statements.size()); ++done) {
      if (stopping(options)) {
        store_.finish(id, Outcome::kInterrupted, done, nullptr);
        throw Interrupted(fmt::format("{}: interrupted after {} of {} statements", script.file, done,
                                      statements.size()));
      }
      conn_.execute(statements[static_cast<std::size_t>(done)].text);
      store_.set_progress(id, done + 1);
    }
    if (options.statement_timeout.count() > 0) conn_.execute("RESET statement_timeout");
    store_.finish(id, Outcome::kSucceeded, done, nullptr);
  } catch (const DbError& e) {
    const auto outcome = stopping(options) ? Outcome::kInterrupted : Outcome::kFailed;
    store_.finish(id, outcome, done, &e);
    const int line = done < static_cast<int>(statements.size())
                         ? statements[static_cast<std::size_t>(done)].line + std::max(server_line(e.detail()), 1) - 1
                         : 0;
    fail(step, e, line, options);
  }
}

void Runner::fail(const Step& step, const DbError& e, int line, const RunOptions& options) {
  const auto& file = step.script().file;
  const auto where = line > 0 ? fmt::format("{}:{}", file, line) : file;
  if (stopping(options))
    throw Interrupted(fmt::format("{}: statement cancelled; the attempt is recorded as interrupted", where));
  throw StepFailed(fmt::format("{}: {} (SQLSTATE {})", where, e.what(), e.sqlstate()), e.sqlstate());
}

}  // namespace stepwise
