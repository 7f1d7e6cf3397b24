#include "stepwise/runner.hpp"

#include "stepwise/adopt.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <thread>

#include "stepwise/duration.hpp"
#include "stepwise/engine.hpp"

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

bool is_state(const DbError& e, std::string_view state) {
  return e.sqlstate() == state;  // every server error keeps its SQLSTATE (src/pqxx on libpq)
}

// Session (no-transaction steps) or transaction-local (SET LOCAL) settings for a step.
std::string prelude(const RunOptions& options, bool local) {
  std::string out;
  const auto scope = local ? "LOCAL " : "";
  if (options.statement_timeout.count() > 0)
    out += fmt::format("SET {}statement_timeout = {};\n", scope, options.statement_timeout.count());
  if (local && options.ddl_lock_timeout.count() > 0)
    out += fmt::format("SET {}lock_timeout = {};\n", scope, options.ddl_lock_timeout.count());
  return out;
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

bool Runner::nothing_left(const MigrationSet& set, const RunOptions& options) {
  plan_while_waiting_ = make_plan(set, store_.read(), options.target, options.policy);
  return plan_while_waiting_.empty();
}

void Runner::nap(milliseconds& length, milliseconds waited, const RunOptions& options) const {
  const auto until = Clock::now() + std::min(length, options.lock_timeout - waited);
  while (Clock::now() < until) {
    if (stopping(options)) throw Interrupted("interrupted while waiting for the migration lock");
    std::this_thread::sleep_for(std::min(milliseconds(5), length));
  }
  length = std::min(length * 2, milliseconds(40));
}

bool Runner::wait_for_lock(const MigrationSet& set, const RunOptions& options) {
  auto& lock = *profile_.lock;
  const auto start = Clock::now();
  auto next_report = start + milliseconds(2000);
  auto next_read = start + options.lock_wait_reread;
  milliseconds length{5};
  // Each poll is one cheap query: dozens of waiters (replicas started together) must not slow
  // the holder down.
  for (bool first = true;; first = false) {
    // With a shared mode, a waiter polls for the writer to be gone; it then reads the log under
    // the shared lock, alongside the other waiters rather than one after another, and only
    // competes for the lock itself when work is left.
    bool writer_gone = false;
    if (!first && lock.has_shared_mode() && lock.try_acquire_shared()) {
      writer_gone = true;
      bool done = false;
      try {
        done = nothing_left(set, options);
      } catch (...) {
        lock.release_shared();
        throw;
      }
      lock.release_shared();
      if (done) return false;
    }
    if ((first || writer_gone || !lock.has_shared_mode()) && lock.try_acquire()) return true;

    const auto waited = since(start);
    if (waited >= options.lock_timeout)
      throw LockTimeout(
          fmt::format("could not take the migration lock within {}: held by {}",
                      format_duration(options.lock_timeout), lock.holder()),
          "another stepwise run is applying migrations; wait for it, or raise --lock-timeout");
    // The holder may finish the very work this run came for while keeping the lock (a lease
    // has no shared mode): then there is nothing to wait for.
    if (!lock.has_shared_mode() && Clock::now() >= next_read) {
      if (nothing_left(set, options)) return false;
      next_read = Clock::now() + options.lock_wait_reread;
    }
    if (Clock::now() >= next_report) {
      reporter_.lock_waiting(waited, lock.holder());
      next_report = Clock::now() + milliseconds(5000);
    }
    nap(length, waited, options);
  }
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

  profile_ = resolve_();
  // There is work: from here on the set is the fully validated one.
  const MigrationSet& work = profile_.migrations != nullptr ? *profile_.migrations : set;
  const auto lock_start = Clock::now();
  bool got_lock = false;
  try {
    got_lock = wait_for_lock(work, options);
  } catch (const DbError& e) {
    // Only a lease lock has a table to create (next to the log table); advisory locks need
    // no privilege.
    if (is_state(e, "42501"))
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
    if (is_state(e, "42501")) explain_log_table_denied(e, store_.table(), "log table");
    if (is_state(e, "25006")) throw_read_only(store_.table().display(), e);
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
  for (std::size_t i = 0; i < total; ++i) {
    if (stopping(options)) throw Interrupted("interrupted between steps; the lock is released");
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
      apply(step, options, /*durable=*/i + 1 == total);
    }
    const auto took = since(start);
    reporter_.step_finished(step, i + 1, total, took);
    result.applied.push_back(
        {step.migration->version, std::string(step.migration->name), step.direction, took});
  }
  result.version_after = result.plan.to;
  release();
  return result;
}

void Runner::apply(const Step& step, const RunOptions& options, bool durable) {
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
    with_retries(step, options, [&] { store_.mark_abandoned(step.retries->id); });
  if (by_statement) {
    // The planner resumes only no-transaction files; under statement-by-statement rules a
    // transactional file's confirmed statements are committed too: resume after them.
    Step resumed = step;
    if (step.script().tx == TxMode::kTransaction && step.retries &&
        step.retries->direction == step.direction &&
        step.retries->checksum == step.script().checksum)
      resumed.resume_from = std::max(step.resume_from, step.retries->statements_done);
    apply_statements(resumed, options);
  } else
    apply_transactional(step, options, durable);
}

bool Runner::back_off(const Step& step, int attempt, const RunOptions& options, const DbError& e) {
  if (stopping(options)) return false;
  milliseconds wait{0};
  int max = 0;
  switch (classify_retry(e.sqlstate())) {
    case Retry::kLockTimeout:
      // 1 s, 2 s, 4 s ... capped at 30 s, with jitter so that retries do not line up.
      if (options.ddl_lock_timeout.count() <= 0) return false;
      max = options.ddl_lock_retries;
      wait = std::min(milliseconds(1000LL << std::min(attempt, 5)), milliseconds(30'000)) +
             milliseconds(std::rand() % 250);
      break;
    case Retry::kSerialization:
      // 50 ms, 100 ms ... capped at 2 s, fully jittered: contention clears fast or not at all.
      max = options.serialization_retries;
      wait = milliseconds(std::rand() % (std::min(50LL << std::min(attempt, 6), 2000LL) + 1));
      break;
    case Retry::kNo:
      return false;
  }
  if (attempt >= max) return false;
  reporter_.retrying(step, attempt + 1, max, wait, e.what());
  const auto until = Clock::now() + wait;
  while (Clock::now() < until && !stopping(options)) std::this_thread::sleep_for(milliseconds(10));
  return !stopping(options);
}

std::string Runner::fence_for(const Step& step) {
  if (!profile_.fence_steps || profile_.lock == nullptr) return {};
  const auto found = latest_attempt_.find(step.migration->version);
  return store_.step_fence(
      step, found == latest_attempt_.end() ? std::nullopt : std::optional<long long>(found->second),
      profile_.lock->held_check_sql());
}

namespace {
[[noreturn]] void lock_lost(const Step& step, const DbError& e) {
  throw LockLost(
      fmt::format("{}: not applied: {}; nothing of the step ran", step.script().file, e.what()));
}
}  // namespace

void Runner::apply_transactional(const Step& step, const RunOptions& options, bool durable) {
  const auto& script = step.script();
  auto setup = prelude(options, true);
  if (!durable) setup += "SET LOCAL synchronous_commit = off;\n";
  // One round trip opens the transaction, records the attempt, runs the script, marks the
  // attempt finished and commits; an error anywhere skips the rest and leaves the transaction
  // to roll back. A placeholder file (comments only) changes nothing: nothing of it is sent.
  auto prefix = store_.transactional_prefix(step, setup);
  // The fence opens the transaction in a round trip of its own, so that the statement the
  // server shows in pg_stat_activity (cut at 1 kB) is the step's script, not the fence.
  constexpr std::string_view kBegin = "BEGIN;\n";
  const auto fence = fence_for(step);
  if (!fence.empty() && prefix.starts_with(kBegin)) prefix.erase(0, kBegin.size());
  const auto opening = fence.empty() ? std::string() : std::string(kBegin) + fence;
  const auto prefix_lines = static_cast<int>(std::count(prefix.begin(), prefix.end(), '\n'));
  // COPY ... FROM STDIN data goes through the COPY protocol, not as SQL text.
  const auto body = strip_copy_data(script.sql);
  const auto sql =
      (is_comment_only(script.sql) ? prefix : prefix + body.sql) + store_.transactional_suffix();
  const auto start = Clock::now();
  for (int attempt = 0;; ++attempt) {
    try {
      if (!opening.empty()) conn_.execute(opening);
      conn_.execute_with_copy(sql, body.copy_data);
      return;
    } catch (const DbError& e) {
      try {
        conn_.execute("ROLLBACK");
      } catch (const DbError&) {
      }
      // Recording a failed attempt would itself change what the lock holder planned from.
      if (e.sqlstate() == kFenceSqlstate) lock_lost(step, e);
      if (back_off(step, attempt, options, e)) continue;
      const double seconds = static_cast<double>(since(start).count()) / 1000.0;
      try {
        store_.insert_finished(step, stopping(options) ? Outcome::kInterrupted : Outcome::kFailed,
                               seconds, 0, &e);
      } catch (const DbError& not_recorded) {
        // E.g. a role that may not write the log: report the step's own error, and this one
        // (a read-only session refuses both: its one line says so).
        if (!is_state(not_recorded, "25006") || !is_state(e, "25006"))
          reporter_.warning(
              fmt::format("could not record the failed attempt: {}", not_recorded.what()));
      }
      const int line = server_line(e.detail()) - prefix_lines;
      fail(step, e, line > 0 ? line : 0, options);
    }
  }
}

namespace {
// Whether an interrupted DDL statement took effect before the interruption (statement by
// statement execution records progress after each statement, so one may be in doubt).
bool took_effect(Connection& conn, const DdlEffect& e) {
  using A = DdlEffect::Action;
  Rows rows;
  if (e.action == A::kAddColumn || e.action == A::kDropColumn) {
    rows = conn.query(
        "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute WHERE attrelid = to_regclass($1) AND "
        "attname = $2"
        " AND attnum > 0 AND NOT attisdropped)",
        {e.name, e.column});
  } else if (e.kind == "type") {
    rows = conn.query("SELECT to_regtype($1) IS NOT NULL", {e.name});
  } else if (e.kind == "schema") {
    rows = conn.query("SELECT to_regnamespace($1) IS NOT NULL", {e.name});
  } else {
    rows = conn.query("SELECT to_regclass($1) IS NOT NULL", {e.name});
  }
  const bool exists = rows.at(0).at(0).value_or("f") == "t";
  return (e.action == A::kCreate || e.action == A::kAddColumn) ? exists : !exists;
}
}  // namespace

namespace {
// Statements that change data only, and may run inside a transaction block.
bool is_data_statement(std::string_view statement) {
  const auto words = leading_keywords(statement, 1);
  if (words.empty()) return false;
  for (const char* kw :
       {"INSERT", "UPDATE", "DELETE", "MERGE", "COPY", "TRUNCATE", "SELECT", "WITH", "VALUES"})
    if (words[0] == kw) return true;
  return false;
}
}  // namespace

bool Runner::run_statement(const Step& step, const Statement& st, bool retry,
                           std::string_view progress) {
  const auto statement = st.text;
  // An interrupted CREATE INDEX CONCURRENTLY leaves an INVALID index behind: drop it and build
  // again. A valid one means the statement finished before the interruption was recorded.
  if (retry) {
    if (const auto index = parse_create_index(statement)) {
      const auto rows = conn_.query(
          "SELECT i.indisvalid FROM pg_catalog.pg_index i WHERE i.indexrelid = to_regclass($1)",
          {index->index});
      if (!rows.empty() && rows[0][0].value_or("f") == "f") {
        reporter_.statement_skipped(
            step, fmt::format("dropping the invalid index {} left by an interrupted "
                              "build, then building it again",
                              index->index));
        conn_.execute(fmt::format("DROP INDEX {}IF EXISTS {}",
                                  index->concurrently ? "CONCURRENTLY " : "", index->index));
      } else if (!rows.empty() && !index->if_not_exists) {
        reporter_.statement_skipped(
            step, fmt::format("index {} already exists and is valid: the statement "
                              "completed before the interruption",
                              index->index));
        return false;
      }
    }
  }
  if (retry) {
    if (const auto effect = parse_ddl_effect(statement); effect && took_effect(conn_, *effect)) {
      reporter_.statement_skipped(
          step,
          fmt::format("{} already took effect before the interruption", first_line(statement)));
      return false;
    }
  }
  std::vector<std::string> data;
  if (st.copy_data) data.emplace_back(*st.copy_data);
  if (progress.empty() || !is_data_statement(statement)) {
    conn_.execute_with_copy(statement, data);
    return false;
  }
  // "BEGIN; " on the statement's first line keeps the server's LINE n right.
  try {
    conn_.execute_with_copy(fmt::format("BEGIN; {}\n;\n{};\nCOMMIT", statement, progress), data);
  } catch (const DbError&) {
    try {
      conn_.execute("ROLLBACK");
    } catch (const DbError&) {
    }
    throw;
  }
  return true;
}

template <typename F>
auto Runner::with_retries(const Step& step, const RunOptions& options, F&& f) -> decltype(f()) {
  for (int attempt = 0;; ++attempt) {
    try {
      return f();
    } catch (const DbError& e) {
      if (classify_retry(e.sqlstate()) != Retry::kSerialization ||
          !back_off(step, attempt, options, e))
        throw;
    }
  }
}

void Runner::apply_statements(const Step& step, const RunOptions& options) {
  const auto& script = step.script();
  const auto statements = split_sql(script.sql);
  const auto total = static_cast<int>(statements.size());
  // Recorded before and after, each write its own (retried) transaction, so that an
  // interruption is found and resumed by the next run.
  const auto fence = fence_for(step);
  const auto id = with_retries(step, options, [&] {
    try {
      return fence.empty() ? store_.insert_running(step)
                           : store_.insert_running_fenced(step, fence);
    } catch (const DbError& e) {
      if (e.sqlstate() == kFenceSqlstate) lock_lost(step, e);
      if (is_state(e, "25006")) throw_read_only(std::string(script.file), e);
      throw;
    }
  });
  int done = std::min(step.resume_from, total);
  if (done > 0)
    reporter_.statement_skipped(step,
                                fmt::format("resuming after {} statement(s) already done", done));
  std::string settings = prelude(options, false);
  if (options.ddl_lock_timeout.count() > 0)
    settings += fmt::format("SET lock_timeout = {};\n", options.ddl_lock_timeout.count());
  // Through a pooler a session SET would land on some server session, maybe another client's.
  if (profile_.pooled && !settings.empty()) {
    reporter_.warning(fmt::format(
        "{}: through a connection pooler, --statement-timeout and --ddl-lock-timeout do not "
        "apply to the statements of a no-transaction step",
        script.file));
    settings.clear();
  }
  try {
    if (!settings.empty()) conn_.execute(settings);
    // Statements up to the one the previous attempt was running may have run already.
    const int maybe_ran = step.retries ? step.retries->statements_done : -1;
    for (; done < total; ++done) {
      bool retry = done <= maybe_ran;
      if (stopping(options)) {
        with_retries(step, options,
                     [&] { store_.finish(id, Outcome::kInterrupted, done, nullptr); });
        throw Interrupted(
            fmt::format("{}: interrupted after {} of {} statements", script.file, done, total));
      }
      const auto& statement = statements[static_cast<std::size_t>(done)];
      const auto progress = store_.progress_sql(id, done + 1);
      bool recorded = false;
      for (int attempt = 0;; ++attempt) {
        try {
          recorded = run_statement(step, statement, retry, progress);
          break;
        } catch (const DbError& e) {
          if (!back_off(step, attempt, options, e)) throw;
          retry = true;
        }
      }
      if (!recorded) with_retries(step, options, [&] { store_.set_progress(id, done + 1); });
    }
    if (!settings.empty()) conn_.execute("RESET statement_timeout; RESET lock_timeout");
    with_retries(step, options, [&] { store_.finish(id, Outcome::kSucceeded, done, nullptr); });
  } catch (const DbError& e) {
    const auto record = [&] {
      with_retries(step, options, [&] {
        store_.finish(id, stopping(options) ? Outcome::kInterrupted : Outcome::kFailed, done, &e);
      });
    };
    // The step's own error is the one reported, even when recording it fails: a session left in
    // a failed transaction block (25P02) is rolled back first and the record tried again.
    try {
      try {
        record();
      } catch (const DbError& in_block) {
        if (in_block.sqlstate() != "25P02") throw;
        conn_.execute("ROLLBACK");
        record();
      }
    } catch (const DbError& not_recorded) {
      // A session turned read-only refuses this write too: its one line below says why.
      if (!is_state(not_recorded, "25006") || !is_state(e, "25006"))
        reporter_.warning(
            fmt::format("could not record the failed attempt: {}", not_recorded.what()));
    }
    const int line = done < total ? statements[static_cast<std::size_t>(done)].line +
                                        std::max(server_line(e.detail()), 1) - 1
                                  : 0;
    fail(step, e, line, options);
  }
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

void Runner::throw_read_only(const std::string& where, const DbError& e) {
  throw Error(ExitCode::kReadOnly,
              fmt::format("the session is read-only (a hot standby, or "
                          "default_transaction_read_only on): {} failed with SQLSTATE 25006 ({})",
                          where, e.what()),
              "migrations must run against the primary, on a read-write session "
              "(default_transaction_read_only off); validate and status work on a standby");
}

void Runner::fail(const Step& step, const DbError& e, int line, const RunOptions& options) {
  const auto& file = step.script().file;
  const auto where = line > 0 ? fmt::format("{}:{}", file, line) : std::string(file);
  if (stopping(options))
    throw Interrupted(
        fmt::format("{}: statement cancelled; the attempt is recorded as interrupted", where));
  // A read-only session (a standby reached through a pooler or after a failover, or
  // SET default_transaction_read_only): the server refused every write, the file is innocent.
  if (is_state(e, "25006")) throw_read_only(where, e);
  throw StepFailed(fmt::format("{}: {} (SQLSTATE {})", where, e.what(), e.sqlstate()), e.sqlstate(),
                   e.sqlstate() == "42501"
                       ? "the role needs INSERT and UPDATE on the log table and the rights the "
                         "migration needs; validate and status only read"
                       : "");
}

}  // namespace stepwise
