#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "commands.hpp"
#include "output.hpp"
#include "stepwise/duration.hpp"
#include "stepwise/lock.hpp"
#include "stepwise/runner.hpp"

namespace stepwise::cli {

namespace {
nlohmann::json step_json(const Step& s) {
  return {{"version", s.migration->version},
          {"name", s.migration->name},
          {"file", s.script().file},
          {"direction", std::string(to_string(s.direction))},
          {"transaction", s.script().tx == TxMode::kTransaction},
          {"resume_from_statement", s.resume_from}};
}
}  // namespace

int run_up(Context& ctx, const UpOptions& options) {
  const auto& source = ctx.source();
  auto& conn = ctx.connect();
  HistoryStore store(conn, ctx.log_table(), runner_identity());
  const auto lock = ctx.make_lock();
  LogReporter reporter;
  Runner runner(conn, store, *lock, reporter);

  RunOptions run;
  run.policy.allow_out_of_order = options.allow_out_of_order;
  run.lock_timeout = ctx.lock_timeout();
  run.statement_timeout = ctx.statement_timeout();
  run.ddl_lock_timeout = ctx.ddl_lock_timeout();
  run.ddl_lock_retries = ctx.options().ddl_lock_retries;
  run.dry_run = ctx.options().dry_run;
  run.stop = &ctx.stop;
  const auto result = runner.run(source.migrations, run);

  if (ctx.output() == OutputFormat::kJson) {
    nlohmann::json applied = nlohmann::json::array();
    for (const auto& a : result.applied)
      applied.push_back({{"version", a.version},
                         {"name", a.name},
                         {"direction", std::string(to_string(a.direction))},
                         {"duration_ms", a.took.count()}});
    nlohmann::json planned = nlohmann::json::array();
    for (const auto& s : result.plan.steps) planned.push_back(step_json(s));
    ctx.print_json({{"command", "up"},
                    {"ok", true},
                    {"dry_run", run.dry_run},
                    {"version_before", result.plan.from},
                    {"version_after", run.dry_run ? result.plan.to : result.version_after},
                    {"ahead", result.plan.ahead},
                    {"planned", planned},
                    {"applied", applied},
                    {"warnings", result.plan.warnings}});
    return 0;
  }
  if (run.dry_run) {
    if (result.plan.steps.empty()) fmt::print("nothing to do: database at version {}\n", result.plan.from);
    for (const auto& s : result.plan.steps)
      fmt::print("would {} {}{}\n", s.direction == Direction::kUp ? "apply" : "revert", s.script().file,
                 s.script().tx == TxMode::kNoTransaction ? " (no transaction)" : "");
  } else if (result.applied.empty()) {
    fmt::print("nothing to do: database at version {}{}\n", result.version_after,
               result.plan.ahead ? " (ahead of this build)" : "");
  } else {
    std::chrono::milliseconds total{0};
    for (const auto& a : result.applied) total += a.took;
    fmt::print("applied {} migration(s) in {}: version {} -> {}\n", result.applied.size(),
               format_duration(total), result.plan.from, result.version_after);
  }
  std::fflush(stdout);
  return 0;
}

}  // namespace stepwise::cli
