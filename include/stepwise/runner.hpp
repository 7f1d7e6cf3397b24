#pragma once
// The runner: applies a plan under the lock and writes the attempt log. It never prints; it
// reports events to a Reporter, which the CLI renders as text or JSON.
#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "stepwise/attempt_log.hpp"
#include "stepwise/lock.hpp"
#include "stepwise/plan.hpp"
#include "stepwise/progress.hpp"
#include "stepwise/sql_split.hpp"

namespace stepwise {

class EngineRules;

class Reporter {
 public:
  virtual ~Reporter() = default;
  virtual void warning(std::string_view /*message*/) {}
  virtual void lock_waiting(std::chrono::milliseconds /*waited*/, const std::string& /*holder*/) {}
  virtual void lock_acquired(std::chrono::milliseconds /*waited*/) {}
  virtual void plan_ready(const Plan& /*plan*/) {}
  virtual void step_started(const Step& /*step*/, std::size_t /*index*/, std::size_t /*total*/) {}
  virtual void step_finished(const Step& /*step*/, std::size_t /*index*/, std::size_t /*total*/,
                             std::chrono::milliseconds /*took*/) {}
  virtual void statement_skipped(const Step& /*step*/, std::string_view /*why*/) {}
  // A step has run longer than the progress interval: what it is doing now. Called from the
  // progress monitor's thread, every interval until the step ends.
  virtual void step_progress(const Step& /*step*/, std::size_t /*index*/, std::size_t /*total*/,
                             const StepProgress& /*progress*/) {}
  // A step (or one statement of it) hit lock_timeout and will be tried again after `wait`.
  virtual void retrying(const Step& /*step*/, int /*attempt*/, int /*max_attempts*/,
                        std::chrono::milliseconds /*wait*/, std::string_view /*reason*/) {}
};

// What the runner needs from the engine, asked for only once there is work to do: the no-op
// path never pays for engine detection or lock set-up.
struct ExecutionProfile {
  Lock* lock = nullptr;
  bool statement_by_statement = false;  // CockroachDB: every step one statement per transaction
  std::string session_setup;            // run once after taking the lock
  // Each step's transaction first proves that its server session holds the lock and that no
  // other runner logged the version since this run planned (AttemptLog::step_fence).
  bool fence_steps = false;
  // A connection pooler is between stepwise and the server: session settings do not stick.
  bool pooled = false;
  // Reports what a long step is doing; null: no progress reports.
  ProgressMonitor* progress = nullptr;
  // The fully validated set to lock, re-plan and apply from, when run() was given a planning
  // view (build_planning_set) that is good for the no-op read only; null: run()'s own set.
  const MigrationSet* migrations = nullptr;
  // The engine's rules (retry classification); null: PostgreSQL's.
  const EngineRules* rules = nullptr;
};
using ProfileResolver = std::function<ExecutionProfile()>;

struct RunOptions {
  Target target = Target::latest();
  PlanPolicy policy;
  std::chrono::milliseconds lock_timeout{600'000};
  // While waiting for the lock, read the log at most this often to see whether the holder
  // already did this run's work. The lock itself is polled every 5 ms, backing off to 50 ms.
  std::chrono::milliseconds lock_wait_reread{250};
  std::chrono::milliseconds statement_timeout{0};  // 0: the server's setting
  // Each step waits at most this long for a table lock, so that a migration queued behind a
  // long query never holds up all traffic behind its ACCESS EXCLUSIVE request; then it backs
  // off and tries again, up to ddl_lock_retries times. 0: wait forever, no retries.
  std::chrono::milliseconds ddl_lock_timeout{5'000};
  int ddl_lock_retries = 10;
  // 40001 / 40P01 (serialization failure, CockroachDB restart, deadlock): jittered backoff.
  int serialization_retries = 10;
  bool dry_run = false;
  // From this many migrations on, the no-op check asks the log for its one-row digest
  // (AttemptLog::matches) before reading it: measured on PostgreSQL 15 from a fresh backend,
  // 10 rows read in 1.0 ms and digest in 2.1 ms; 5000 rows read in ~5 ms plus ~8 ms to build the
  // history on the client, digest in ~9 ms.
  std::size_t digest_from = 500;
  // With stepwise's log empty, refuse (PlanRefused) when another tool's history table has rows
  // (find_foreign_history): `stepwise adopt` must record it first. Checked under the lock.
  bool refuse_foreign_history = true;
  const std::atomic<bool>* stop = nullptr;  // set on SIGINT/SIGTERM
};

struct AppliedStep {
  Version version = 0;
  std::string name;
  Direction direction = Direction::kUp;
  std::chrono::milliseconds took{0};
};

struct RunResult {
  Plan plan;  // the plan that was (or, with dry_run, would be) executed
  std::vector<AppliedStep> applied;
  bool took_lock = false;
  bool done_by_other = false;  // another runner did the work while this one waited
  Version version_after = 0;
};

// A step failed: the attempt is recorded; what() names the file, line, SQLSTATE and message.
class StepFailed : public Error {
 public:
  StepFailed(std::string message, std::string sqlstate, std::string hint = {})
      : Error(ExitCode::kFailed, std::move(message), std::move(hint)),
        sqlstate_(std::move(sqlstate)) {}
  [[nodiscard]] const std::string& sqlstate() const noexcept { return sqlstate_; }

 private:
  std::string sqlstate_;
};

// A step's transaction ran on a server session that does not hold the migration lock (a
// connection pooler in transaction mode), or another runner logged the version meanwhile: the
// step was rolled back, nothing of it applied, nothing recorded.
struct LockLost : Error {
  explicit LockLost(std::string message)
      : Error(ExitCode::kLockLost, std::move(message),
              "connect to the server directly, or through a pooler in session mode, or use "
              "--lock-strategy lease (chosen by default when a pooler is detected)") {}
};

class Runner {
 public:
  Runner(Connection& conn, AttemptLog& store, ProfileResolver resolve, Reporter& reporter)
      : conn_(conn), store_(store), resolve_(std::move(resolve)), reporter_(reporter) {}
  // PostgreSQL defaults with this lock (tests, tools).
  Runner(Connection& conn, AttemptLog& store, Lock& lock, Reporter& reporter)
      : Runner(
            conn, store,
            [&lock] {
              return ExecutionProfile{&lock, false, ""};
            },
            reporter) {}

  // Reads the log without the lock; when there is work, takes the lock, re-reads, re-plans and
  // applies. Throws StepFailed, PlanRefused, LockTimeout, Interrupted, ConnectionLost.
  [[nodiscard]] RunResult run(const MigrationSet& set, const RunOptions& options);

 private:
  // Re-reads the log and plans again (while waiting for the lock): true when nothing is left.
  [[nodiscard]] bool nothing_left(const MigrationSet& set, const RunOptions& options);
  // 42501 while creating the log (or lease lock) table `t`: one line naming the table, schema,
  // role and privilege, and the remedy.
  [[noreturn]] void explain_log_table_denied(const DbError& e, const TableName& t,
                                             std::string_view what);

  Connection& conn_;
  AttemptLog& store_;
  ProfileResolver resolve_;
  ExecutionProfile profile_;
  Plan plan_while_waiting_;  // the last plan read while waiting for the lock
  // Under the lock: the newest attempt id per version, which each step's fence expects.
  std::map<Version, long long> latest_attempt_;
  Reporter& reporter_;
};

}  // namespace stepwise
