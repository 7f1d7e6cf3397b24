// The transactional step executor: the attempt row, the script and the attempt's end in one
// transaction and one round trip (the fence, when there is one, in a round trip of its own).
#include <fmt/format.h>

#include <algorithm>

#include "step_executor.hpp"
#include "stepwise/sql_split.hpp"

namespace stepwise::detail {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

void StepExecutor::apply_transactional(const Step& step, bool durable) {
  const auto& script = step.script();
  auto setup = step_settings(options_, /*local=*/true);
  if (!durable) setup += "SET LOCAL synchronous_commit = off;\n";
  // One round trip opens the transaction, records the attempt, runs the script, marks the
  // attempt finished and commits; an error anywhere skips the rest and leaves the transaction
  // to roll back. A placeholder file (comments only) changes nothing: nothing of it is sent.
  // The fence opens the transaction in a round trip of its own, so that the statement the
  // server shows in pg_stat_activity (cut at 1 kB) is the step's script, not the fence.
  const auto fence = fence_for(step);
  const auto opening = fence.empty() ? std::string() : store_.begin_fenced(fence);
  const auto prefix = fence.empty() ? store_.transactional_prefix(step, setup)
                                    : store_.attempt_row_sql(step, setup);
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
      if (back_off(step, attempt, e)) continue;
      const auto took = std::chrono::duration_cast<milliseconds>(Clock::now() - start);
      try {
        store_.insert_finished(step, stopping() ? Outcome::kInterrupted : Outcome::kFailed,
                               static_cast<double>(took.count()) / 1000.0, 0, &e);
      } catch (const DbError& not_recorded) {
        warn_not_recorded(not_recorded, e);
      }
      const int line = server_line(e.detail()) - prefix_lines;
      fail(step, e, line > 0 ? line : 0);
    }
  }
}

}  // namespace stepwise::detail
