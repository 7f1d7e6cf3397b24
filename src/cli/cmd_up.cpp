#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <cstdlib>

#include "commands.hpp"
#include "output.hpp"
#include "stepwise/duration.hpp"
#include "stepwise/lock.hpp"

namespace stepwise::cli {

RunOptions run_options(Context& ctx) {
  RunOptions run;
  run.lock_timeout = ctx.lock_timeout();
  run.statement_timeout = ctx.statement_timeout();
  run.ddl_lock_timeout = ctx.ddl_lock_timeout();
  run.ddl_lock_retries = ctx.options().ddl_lock_retries;
  run.dry_run = ctx.options().dry_run;
  run.stop = &ctx.stop;
  if (const char* v = std::getenv("STEPWISE_IGNORE_FOREIGN_HISTORY"); v && std::string(v) == "1")
    run.refuse_foreign_history = false;
  return run;
}

RunResult apply(Context& ctx, const RunOptions& run, Reporter& reporter) {
  // With --source the folder loads while the connection is made (a broken one is reported at
  // once, even with the server slow or away).
  auto& conn =
      ctx.connect_while_loading(run.dry_run ? Context::Load::kSource : Context::Load::kMigrations);
  HistoryStore store(conn, ctx.log_table(), runner_identity());
  Runner runner(
      conn, store, [&ctx] { return ctx.execution_profile(); }, reporter);
  // A dry run shows what would run: the fully validated set. Otherwise the start-up path's set,
  // which the runner trades for the validated one once there is work.
  return runner.run(run.dry_run ? ctx.source().migrations : ctx.migrations(), run);
}

nlohmann::json steps_json(const Plan& plan, bool with_sql) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& s : plan.steps) {
    nlohmann::json j{{"version", s.migration->version},
                     {"name", s.migration->name},
                     {"file", s.script().file},
                     {"direction", std::string(to_string(s.direction))},
                     {"transaction", s.script().tx == TxMode::kTransaction},
                     {"resume_from_statement", s.resume_from}};
    if (with_sql) j["sql"] = s.script().sql;
    out.push_back(std::move(j));
  }
  return out;
}

nlohmann::json applied_json(const RunResult& result) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& a : result.applied)
    out.push_back({{"version", a.version},
                   {"name", a.name},
                   {"direction", std::string(to_string(a.direction))},
                   {"duration_ms", a.took.count()}});
  return out;
}

void print_plan_text(const Plan& plan, bool with_sql) {
  if (plan.steps.empty()) fmt::print("nothing to do: database at version {}\n", plan.from);
  for (const auto& s : plan.steps) {
    fmt::print("would {} {}{}\n", s.direction == Direction::kUp ? "apply" : "revert",
               s.script().file, s.script().tx == TxMode::kNoTransaction ? " (no transaction)" : "");
    if (with_sql) fmt::print("{}\n", s.script().sql);
  }
}

int run_up(Context& ctx, const UpOptions& options) {
  auto run = run_options(ctx);
  run.policy.allow_out_of_order = options.allow_out_of_order;
  LogReporter reporter;
  const auto result = apply(ctx, run, reporter);

  if (ctx.output() == OutputFormat::kJson) {
    ctx.print_json({{"command", "up"},
                    {"ok", true},
                    {"dry_run", run.dry_run},
                    {"version_before", result.plan.from},
                    {"version_after", run.dry_run ? result.plan.to : result.version_after},
                    {"ahead", result.plan.ahead},
                    {"planned", steps_json(result.plan, false)},
                    {"applied", applied_json(result)},
                    {"warnings", result.plan.warnings}});
    return 0;
  }
  if (run.dry_run) {
    print_plan_text(result.plan, false);
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
