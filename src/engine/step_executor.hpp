#pragma once
// Inside the engine library only: the runner's step executors. One step, with its attempt
// recorded: in one transaction (transactional_step.cpp), or statement by statement with
// progress after each statement (statement_step.cpp); shared here: retries with backoff,
// the step fence, and the translation of a failed statement into StepFailed.
#include <map>
#include <string>

#include "stepwise/attempt_log.hpp"
#include "stepwise/database.hpp"
#include "stepwise/engine.hpp"
#include "stepwise/runner.hpp"
#include "stepwise/sql_split.hpp"

namespace stepwise::detail {

// 25006 (read_only_sql_transaction): Error(kReadOnly), not the migration's fault.
[[noreturn]] void throw_read_only(const std::string& where, const DbError& e);

// The session settings of a step: statement_timeout and lock_timeout (--ddl-lock-timeout),
// transaction-local (SET LOCAL) for a step's transaction, else for the session. Empty: none.
[[nodiscard]] std::string step_settings(const RunOptions& options, bool local);

class StepExecutor {
 public:
  StepExecutor(Connection& conn, AttemptLog& store, Reporter& reporter,
               const ExecutionProfile& profile, const RunOptions& options,
               const std::map<Version, long long>& latest_attempt)
      : conn_(conn),
        store_(store),
        reporter_(reporter),
        profile_(profile),
        options_(options),
        latest_attempt_(latest_attempt) {}

  // Applies `step` and records its attempt; `durable`: its commit waits for the WAL flush.
  // Throws StepFailed, LockLost, Interrupted, Error(kReadOnly / kFailedAttempt).
  void apply(const Step& step, bool durable);

 private:
  // transactional_step.cpp: one round trip (fence apart), the attempt row inside.
  void apply_transactional(const Step& step, bool durable);
  // statement_step.cpp: one implicit transaction per statement, progress recorded after each.
  void apply_statements(const Step& step);
  // Runs one statement of a step run statement by statement; `retry` when it may have run
  // before. A statement that only reads or writes data commits in one transaction with the
  // progress of attempt `id` (AttemptLog::run_with_progress): then a kill between the two
  // cannot make the next run apply it again. Returns whether the progress was recorded with it.
  bool run_statement(const Step& step, const Statement& statement, bool retry, long long id,
                     int statements_done);

  // Sleeps before the next try of a retriable error (next_backoff); false when no try is left.
  [[nodiscard]] bool back_off(const Step& step, int attempt, const DbError& e);
  // Runs a log write (or any idempotent-to-retry action) again on serialization failures.
  template <typename F>
  auto with_retries(const Step& step, F&& f) -> decltype(f()) {
    for (int attempt = 0;; ++attempt) {
      try {
        return f();
      } catch (const DbError& e) {
        if (rules().classify(e.sqlstate()) != Retry::kSerialization || !back_off(step, attempt, e))
          throw;
      }
    }
  }
  [[noreturn]] void fail(const Step& step, const DbError& e, int statement_line);
  // The step's fence (AttemptLog::step_fence), or empty when steps are not fenced.
  [[nodiscard]] std::string fence_for(const Step& step);
  [[nodiscard]] bool stopping() const { return options_.stop != nullptr && options_.stop->load(); }
  [[nodiscard]] const EngineRules& rules() const {
    return profile_.rules != nullptr ? *profile_.rules : postgres_rules();
  }
  // The attempt could not be recorded: a warning, unless a read-only session refused both
  // (the step's own error says so).
  void warn_not_recorded(const DbError& not_recorded, const DbError& e);

  Connection& conn_;
  AttemptLog& store_;
  Reporter& reporter_;
  const ExecutionProfile& profile_;
  const RunOptions& options_;
  const std::map<Version, long long>& latest_attempt_;
};

// "LINE 3: ..." in a server message is the line within the statement text that was sent.
[[nodiscard]] int server_line(std::string_view detail);
// A step fence failed: LockLost naming the file.
[[noreturn]] void lock_lost(const Step& step, const DbError& e);

}  // namespace stepwise::detail
