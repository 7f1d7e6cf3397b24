// The statement-by-statement step executor: each statement in an implicit transaction of its
// own, the attempt recorded before and its progress after each statement, so that an
// interruption is found and resumed by the next run (no-transaction files; every file under
// CockroachDB's rules).
#include <fmt/format.h>

#include <algorithm>

#include "resume_probe.hpp"
#include "step_executor.hpp"
#include "stepwise/sql_split.hpp"

namespace stepwise::detail {

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

bool StepExecutor::run_statement(const Step& step, const Statement& st, bool retry, long long id,
                                 int statements_done) {
  const auto statement = st.text;
  if (retry && already_took_effect(conn_, statement, [&](const std::string& why) {
        reporter_.statement_skipped(step, why);
      }))
    return false;
  std::vector<std::string> data;
  if (st.copy_data) data.emplace_back(*st.copy_data);
  if (!is_data_statement(statement)) {
    conn_.execute_with_copy(statement, data);
    return false;
  }
  store_.run_with_progress(id, statements_done, statement, data);
  return true;
}

void StepExecutor::apply_statements(const Step& step) {
  const auto& script = step.script();
  const auto statements = split_sql(script.sql);
  const auto total = static_cast<int>(statements.size());
  // Recorded before and after, each write its own (retried) transaction, so that an
  // interruption is found and resumed by the next run.
  const auto fence = fence_for(step);
  const auto id = with_retries(step, [&] {
    try {
      return fence.empty() ? store_.insert_running(step)
                           : store_.insert_running_fenced(step, fence);
    } catch (const DbError& e) {
      if (e.sqlstate() == kFenceSqlstate) lock_lost(step, e);
      if (e.sqlstate() == "25006") throw_read_only(std::string(script.file), e);
      throw;
    }
  });
  int done = std::min(step.resume_from, total);
  if (done > 0)
    reporter_.statement_skipped(step,
                                fmt::format("resuming after {} statement(s) already done", done));
  std::string settings = step_settings(options_, /*local=*/false);
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
      if (stopping()) {
        with_retries(step, [&] { store_.finish(id, Outcome::kInterrupted, done, nullptr); });
        throw Interrupted(
            fmt::format("{}: interrupted after {} of {} statements", script.file, done, total));
      }
      const auto& statement = statements[static_cast<std::size_t>(done)];
      bool recorded = false;
      for (int attempt = 0;; ++attempt) {
        try {
          recorded = run_statement(step, statement, retry, id, done + 1);
          break;
        } catch (const DbError& e) {
          if (!back_off(step, attempt, e)) throw;
          retry = true;
        }
      }
      if (!recorded) with_retries(step, [&] { store_.set_progress(id, done + 1); });
    }
    if (!settings.empty()) conn_.execute("RESET statement_timeout; RESET lock_timeout");
    with_retries(step, [&] { store_.finish(id, Outcome::kSucceeded, done, nullptr); });
  } catch (const DbError& e) {
    const auto record = [&] {
      with_retries(step, [&] {
        store_.finish(id, stopping() ? Outcome::kInterrupted : Outcome::kFailed, done, &e);
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
      warn_not_recorded(not_recorded, e);
    }
    const int line = done < total ? statements[static_cast<std::size_t>(done)].line +
                                        std::max(server_line(e.detail()), 1) - 1
                                  : 0;
    fail(step, e, line);
  }
}

}  // namespace stepwise::detail
