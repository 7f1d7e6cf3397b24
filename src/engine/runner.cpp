// The runner's orchestration: the no-op read, the lock, the re-plan under it, the log table,
// then each step through its executor (step_executor.hpp). Lock waiting: lock_wait.cpp; the
// executors: transactional_step.cpp, statement_step.cpp; resume probes: resume_probe.cpp;
// retry classification and backoff: core/retry.cpp.
#include "stepwise/runner.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "step_executor.hpp"
#include "stepwise/adopt.hpp"
#include "stepwise/engine.hpp"

namespace stepwise {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

namespace {
milliseconds since(Clock::time_point t) {
  return std::chrono::duration_cast<milliseconds>(Clock::now() - t);
}
}  // namespace

bool Runner::nothing_left(const MigrationSet& set, const RunOptions& options) {
  plan_while_waiting_ = make_plan(set, store_.read(), options.target, options.policy);
  return plan_while_waiting_.empty();
}

RunResult Runner::run(const MigrationSet& set, const RunOptions& options) {
  RunResult result;
  // The no-op path: one read, no lock. This is what every pod start pays: first one row that
  // says whether exactly this set is applied, then, when it is not, the whole log.
  if (options.target.kind == Target::Kind::kLatest && set.size() >= options.digest_from &&
      store_.matches(set.log_digest())) {
    result.plan.from = result.plan.to = result.version_after = set.latest();
    if (options.dry_run) reporter_.plan_ready(result.plan);
    return result;
  }
  auto history = store_.read();
  result.plan = make_plan(set, history, options.target, options.policy);
  result.version_after = result.plan.from;
  if (result.plan.empty() || options.dry_run) {
    for (const auto& w : result.plan.warnings) reporter_.warning(w);
    if (options.dry_run) reporter_.plan_ready(result.plan);
    return result;
  }

  profile_ = resolve_();
  // There is work: from here on the set is the fully validated one.
  const MigrationSet& work = profile_.migrations != nullptr ? *profile_.migrations : set;
  const auto lock_start = Clock::now();
  bool got_lock = false;
  try {
    LockWait wait;
    wait.timeout = options.lock_timeout;
    wait.reread = options.lock_wait_reread;
    wait.stop = options.stop;
    wait.nothing_left = [&] { return nothing_left(work, options); };
    wait.on_waiting = [this](milliseconds waited, const std::string& holder) {
      reporter_.lock_waiting(waited, holder);
    };
    got_lock = wait_for_lock(*profile_.lock, wait);
  } catch (const DbError& e) {
    // Only a lease lock has a table to create (next to the log table); advisory locks need
    // no privilege.
    if (e.sqlstate() == "42501")
      explain_log_table_denied(e, lock_table_for(store_.table()), "lease lock table");
    throw;
  }
  if (!got_lock) {
    result.done_by_other = true;
    result.plan = std::move(plan_while_waiting_);
    result.version_after = result.plan.from;
    reporter_.plan_ready(result.plan);
    return result;
  }
  HeldLock held(*profile_.lock);
  result.took_lock = true;
  reporter_.lock_acquired(since(lock_start));

  // Another runner may have done the work while we waited: read and plan again, and when
  // nothing is left, let go at once (the next waiter is queued behind us).
  history = store_.read();
  result.plan = make_plan(work, history, options.target, options.policy);
  result.version_after = result.plan.from;
  // Through a pooler the unlock may reach another server session than the lock's; every step
  // proved in its own transaction that it ran under the lock, so a failed unlock is a warning.
  const auto release = [&] {
    try {
      held.release();
    } catch (const Error& e) {
      if (!profile_.fence_steps && !profile_.pooled) throw;
      reporter_.warning(e.what());
    }
  };
  if (result.plan.empty()) {
    result.done_by_other = true;
    release();
    for (const auto& w : result.plan.warnings) reporter_.warning(w);
    reporter_.plan_ready(result.plan);
    return result;
  }
  if (!profile_.session_setup.empty()) conn_.execute(profile_.session_setup);
  // Before anything is reported: a role that may not create the log fails with one line.
  try {
    // Nothing in stepwise's log, but another tool's history: running every file over that
    // tool's schema would fail on the first CREATE or, worse, succeed on idempotent files.
    // The catalog is asked in ensure_table's own query; a table found is read for one row.
    std::vector<TableName> foreign;
    if (options.refuse_foreign_history && history.attempts().empty())
      foreign = foreign_history_tables();
    if (const auto present = store_.ensure_table(foreign)) {
      if (const auto found = foreign_history_with_rows(conn_, *present))
        throw PlanRefused(
            fmt::format("stepwise's log {} is empty, but {}'s history table {} has entries: this "
                        "database is migrated by {}",
                        store_.table().display(), to_string(found->tool), found->table.display(),
                        to_string(found->tool)),
            fmt::format("run `stepwise adopt --from {}` first (docs/commands/adopt.md); if that "
                        "table is not this application's, set STEPWISE_IGNORE_FOREIGN_HISTORY=1",
                        to_string(found->tool)));
      (void)store_.ensure_table();
    }
  } catch (const DbError& e) {
    if (e.sqlstate() == "42501") explain_log_table_denied(e, store_.table(), "log table");
    if (e.sqlstate() == "25006") detail::throw_read_only(store_.table().display(), e);
    throw;
  }
  latest_attempt_.clear();
  for (const auto& a : history.attempts()) {
    auto& id = latest_attempt_[a.version];
    id = std::max(id, a.id);
  }
  for (const auto& w : result.plan.warnings) reporter_.warning(w);
  reporter_.plan_ready(result.plan);

  const auto total = result.plan.steps.size();
  detail::StepExecutor executor(conn_, store_, reporter_, profile_, options, latest_attempt_);
  for (std::size_t i = 0; i < total; ++i) {
    if (options.stop != nullptr && options.stop->load())
      throw Interrupted("interrupted between steps; the lock is released");
    const auto& step = result.plan.steps[i];
    reporter_.step_started(step, i + 1, total);
    const auto start = Clock::now();
    {
      std::optional<ProgressMonitor::Watch> watch;
      if (profile_.progress != nullptr)
        watch.emplace(*profile_.progress, [this, &step, i, total](const StepProgress& p) {
          reporter_.step_progress(step, i + 1, total, p);
        });
      // Commits before the last one need not wait for the WAL flush: the last, synchronous
      // commit flushes them all before this run reports success (see docs/design.md).
      executor.apply(step, /*durable=*/i + 1 == total);
    }
    const auto took = since(start);
    reporter_.step_finished(step, i + 1, total, took);
    result.applied.push_back(
        {step.migration->version, std::string(step.migration->name), step.direction, took});
  }
  result.version_after = result.plan.to;
  store_.refresh_summary();  // still under the lock: the next no-op reads one row
  release();
  return result;
}

void Runner::explain_log_table_denied(const DbError& e, const TableName& t, std::string_view what) {
  std::string role = "the role";
  bool has_schema = true;
  bool may_create = true;
  try {
    const auto rows = conn_.query(
        "SELECT current_user, n.oid IS NOT NULL,"
        " n.oid IS NULL OR has_schema_privilege(n.oid, 'CREATE')"
        " FROM (SELECT 1) one LEFT JOIN pg_catalog.pg_namespace n ON n.nspname = $1",
        {t.schema});
    role = rows.at(0).at(0).value_or(role);
    has_schema = rows.at(0).at(1).value_or("t") == "t";
    may_create = rows.at(0).at(2).value_or("t") == "t";
  } catch (const DbError&) {
    // Keep the server's own words below.
  }
  // For the advice only (never sent): double quotes only where SQL needs them.
  const auto sql_name = [this](const std::string& name) {
    bool plain = !name.empty() && !(name[0] >= '0' && name[0] <= '9');
    for (char c : name)
      plain = plain && ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_');
    return plain ? name : conn_.quote_identifier(name);
  };
  const auto quoted_role = sql_name(role);
  const auto quoted_schema = sql_name(t.schema);
  if (!has_schema)
    throw Error(ExitCode::kFailed,
                fmt::format("cannot create the {} {}: role {} lacks the CREATE privilege on "
                            "the database, which creating schema {} needs ({})",
                            what, t.display(), role, t.schema, e.what()),
                fmt::format("create the schema first (CREATE SCHEMA {} AUTHORIZATION {}), or pass "
                            "--log-table with a schema the role may create tables in",
                            quoted_schema, quoted_role));
  if (!may_create)
    throw Error(ExitCode::kFailed,
                fmt::format("cannot create the {} {}: role {} lacks the CREATE privilege on "
                            "schema {} ({})",
                            what, t.display(), role, t.schema, e.what()),
                fmt::format("GRANT CREATE ON SCHEMA {} TO {}; or pass --log-table "
                            "other_schema.{} for a schema the role may create tables in",
                            quoted_schema, quoted_role, store_.table().table));
  throw Error(
      ExitCode::kFailed,
      fmt::format("cannot set up the {} {} as role {} ({})", what, t.display(), role, e.what()),
      "the role needs CREATE on the log table's schema and INSERT, UPDATE and SELECT on "
      "the log table");
}

}  // namespace stepwise
