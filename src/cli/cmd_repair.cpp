#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "commands.hpp"
#include "stepwise/text.hpp"

namespace stepwise::cli {

// Records a person's decision about an interrupted not-resumable step, under the lock.
int run_repair(Context& ctx, const RepairOptions& options) {
  if (options.applied == options.rolled_back)
    throw UsageError(
        "repair: say what you found: --applied (the step is complete) or --rolled-back (nothing of "
        "it is left)");
  const auto& t = options.version;
  const auto parsed = Version::parse(t);  // digits, any length; leading zeros ignored
  const auto* m = parsed ? ctx.source().migrations.find(*parsed) : nullptr;
  if (m == nullptr)
    throw UsageError(
        fmt::format("repair: {} is not a migration version of this set", printable(t, 40)));
  auto& conn = ctx.connect();
  HistoryStore store(conn, ctx.log_table(), runner_identity());
  // Under the lock `up` takes, released on every way out (a throw included).
  auto held = ctx.hold_lock("repair: ");
  const auto history = store.read();
  const auto* st = history.find(m->version);
  if (st == nullptr || (st->state != State::kUnfinished && st->state != State::kFailed))
    throw PlanRefused(
        fmt::format("repair: {} has no failed or unfinished attempt to repair (state: {})",
                    m->up.file, st ? to_string(st->state) : "pending"));
  Step step{m, Direction::kUp, 0, st->latest};
  if (st->latest->outcome == Outcome::kRunning) store.mark_abandoned(st->latest->id);
  store.record_repair(step, options.applied);
  held.release();
  fmt::print("{}: recorded as {}\n", m->up.file,
             options.applied ? "applied" : "rolled back (the next up runs it from the start)");
  return 0;
}

}  // namespace stepwise::cli
