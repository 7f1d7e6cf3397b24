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
  // The log runs the step with its attempt in one transaction (AttemptLog::run_transactional).
  // A placeholder file (comments only) changes nothing: nothing of it is sent.
  const auto fence = fence_for(step);
  // COPY ... FROM STDIN data goes through the COPY protocol, not as SQL text.
  const auto body = strip_copy_data(script.sql);
  const std::string_view text = is_comment_only(script.sql) ? std::string_view() : body.sql;
  const auto start = Clock::now();
  for (int attempt = 0;; ++attempt) {
    try {
      store_.run_transactional(step, setup, fence, text, body.copy_data);
      return;
    } catch (const DbError& e) {
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
      const int line =
          server_line(e.detail()) - store_.lines_before_body(step, setup, !fence.empty());
      fail(step, e, line > 0 ? line : 0);
    }
  }
}

}  // namespace stepwise::detail
