#include "stepwise/runner.hpp"

#include <fmt/format.h>

#include <charconv>

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

  LockWait wait;
  wait.timeout = options.lock_timeout;
  wait.stop = options.stop;
  wait.on_wait = [this](milliseconds waited, const std::string& holder) {
    reporter_.lock_waiting(waited, holder);
  };
  const auto lock_start = Clock::now();
  LockGuard guard(lock_, wait);
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
    apply(step, options);
    const auto took = since(start);
    reporter_.step_finished(step, i + 1, total, took);
    result.applied.push_back({step.migration->version, step.migration->name, step.direction, took});
  }
  result.version_after = result.plan.to;
  guard.release();
  return result;
}

void Runner::apply(const Step& step, const RunOptions& options) {
  if (step.retries && step.retries->outcome == Outcome::kRunning) store_.mark_abandoned(step.retries->id);
  if (step.script().tx == TxMode::kNoTransaction)
    apply_statements(step, options);
  else
    apply_transactional(step, options);
}

void Runner::apply_transactional(const Step& step, const RunOptions& options) {
  const auto& script = step.script();
  const auto start = Clock::now();
  long long id = 0;
  try {
    id = store_.begin_transactional(step, prelude(options, true));
    // A placeholder file (comments only) is a step that changes nothing: nothing to send.
    if (!is_comment_only(script.sql)) conn_.execute(script.sql);
    store_.commit_transactional(id, 1);
  } catch (const DbError& e) {
    try {
      conn_.execute("ROLLBACK");
    } catch (const DbError&) {
    }
    const double seconds = static_cast<double>(since(start).count()) / 1000.0;
    const auto outcome = stopping(options) ? Outcome::kInterrupted : Outcome::kFailed;
    store_.insert_finished(step, outcome, seconds, 0, &e);
    fail(step, e, server_line(e.detail()), options);
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
