// The step executors' shared part: which executor a step gets, retries with backoff, the step
// fence, and how a failed statement is reported (step_executor.hpp).
#include "step_executor.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <thread>

namespace stepwise::detail {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

int server_line(std::string_view detail) {
  const auto pos = detail.find("\nLINE ");
  if (pos == std::string_view::npos) return 0;
  int line = 0;
  const auto begin = detail.data() + pos + 6;
  std::from_chars(begin, detail.data() + detail.size(), line);
  return line;
}

void lock_lost(const Step& step, const DbError& e) {
  throw LockLost(
      fmt::format("{}: not applied: {}; nothing of the step ran", step.script().file, e.what()));
}

std::string step_settings(const RunOptions& options, bool local) {
  std::string out;
  const auto scope = local ? "LOCAL " : "";
  if (options.statement_timeout.count() > 0)
    out += fmt::format("SET {}statement_timeout = {};\n", scope, options.statement_timeout.count());
  if (options.ddl_lock_timeout.count() > 0)
    out += fmt::format("SET {}lock_timeout = {};\n", scope, options.ddl_lock_timeout.count());
  return out;
}

void StepExecutor::apply(const Step& step, bool durable) {
  const bool by_statement =
      step.script().tx == TxMode::kNoTransaction || profile_.statement_by_statement;
  // A step its author marked not-resumable, interrupted part-way: only a person can tell what
  // of it took effect.
  if (by_statement && !step.script().resumable && step.retries &&
      (step.retries->outcome == Outcome::kRunning || step.retries->statements_done > 0)) {
    const auto total = split_sql(step.script().sql).size();
    throw Error(
        ExitCode::kFailedAttempt,
        fmt::format("{} was interrupted after {} of {} statement(s) (the next one may or may not "
                    "have taken "
                    "effect) and is marked not-resumable",
                    step.script().file, step.retries->statements_done, total),
        fmt::format(
            "check which of its statements took effect and complete or undo them by hand, then run "
            "`stepwise repair {} --applied` (it is complete now) or `stepwise repair {} "
            "--rolled-back` "
            "(nothing of it is left: run it again from the start)",
            step.migration->version, step.migration->version));
  }
  if (step.retries && step.retries->outcome == Outcome::kRunning)
    with_retries(step, [&] { store_.mark_abandoned(step.retries->id); });
  if (by_statement) {
    // The planner resumes only no-transaction files; under statement-by-statement rules a
    // transactional file's confirmed statements are committed too: resume after them.
    Step resumed = step;
    if (step.script().tx == TxMode::kTransaction && step.retries &&
        step.retries->direction == step.direction &&
        step.retries->checksum == step.script().checksum)
      resumed.resume_from = std::max(step.resume_from, step.retries->statements_done);
    apply_statements(resumed);
  } else {
    apply_transactional(step, durable);
  }
}

bool StepExecutor::back_off(const Step& step, int attempt, const DbError& e) {
  if (stopping()) return false;
  RetryLimits limits;
  limits.ddl_lock_timeout = options_.ddl_lock_timeout;
  limits.ddl_lock_retries = options_.ddl_lock_retries;
  limits.serialization_retries = options_.serialization_retries;
  const auto b = next_backoff(rules().classify(e.sqlstate()), attempt, limits,
                              static_cast<std::uint32_t>(std::rand()));
  if (!b) return false;
  reporter_.retrying(step, attempt + 1, b->max_attempts, b->wait, e.what());
  const auto until = Clock::now() + b->wait;
  while (Clock::now() < until && !stopping()) std::this_thread::sleep_for(milliseconds(10));
  return !stopping();
}

std::string StepExecutor::fence_for(const Step& step) {
  if (!profile_.fence_steps || profile_.lock == nullptr) return {};
  const auto found = latest_attempt_.find(step.migration->version);
  return store_.step_fence(
      step, found == latest_attempt_.end() ? std::nullopt : std::optional<long long>(found->second),
      profile_.lock->held_check_sql());
}

void StepExecutor::warn_not_recorded(const DbError& not_recorded, const DbError& e) {
  // E.g. a role that may not write the log: report the step's own error, and this one (a
  // read-only session refuses both: its one line says so).
  if (not_recorded.sqlstate() != "25006" || e.sqlstate() != "25006")
    reporter_.warning(fmt::format("could not record the failed attempt: {}", not_recorded.what()));
}

void throw_read_only(const std::string& where, const DbError& e) {
  throw Error(ExitCode::kReadOnly,
              fmt::format("the session is read-only (a hot standby, or "
                          "default_transaction_read_only on): {} failed with SQLSTATE 25006 ({})",
                          where, e.what()),
              "migrations must run against the primary, on a read-write session "
              "(default_transaction_read_only off); validate and status work on a standby");
}

void StepExecutor::fail(const Step& step, const DbError& e, int line) {
  const auto& file = step.script().file;
  const auto where = line > 0 ? fmt::format("{}:{}", file, line) : std::string(file);
  if (stopping())
    throw Interrupted(
        fmt::format("{}: statement cancelled; the attempt is recorded as interrupted", where));
  // A read-only session (a standby reached through a pooler or after a failover, or
  // SET default_transaction_read_only): the server refused every write, the file is innocent.
  if (e.sqlstate() == "25006") throw_read_only(where, e);
  throw StepFailed(fmt::format("{}: {} (SQLSTATE {})", where, e.what(), e.sqlstate()), e.sqlstate(),
                   e.sqlstate() == "42501"
                       ? "the role needs INSERT and UPDATE on the log table and the rights the "
                         "migration needs; validate and status only read"
                       : "");
}

}  // namespace stepwise::detail
