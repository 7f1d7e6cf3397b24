#include <fmt/format.h>

#include "commands.hpp"
#include "output.hpp"
#include "stepwise/duration.hpp"
#include "stepwise/text.hpp"

namespace stepwise::cli {

int run_migrate_to(Context& ctx, const MigrateToOptions& options) {
  const auto& t = options.version;
  const auto parsed = Version::parse(t);  // digits, any length; leading zeros ignored
  if (!parsed)
    throw UsageError(
        fmt::format("migrate-to: invalid version {} (expected a migration version, or 0 for none)",
                    printable(t, 40)));
  // Names, pairing and checksums checked before anything is applied: a --source folder while
  // connecting (apply), the embedded or bundled set before connecting. A folder is validated
  // through before anything is applied (Context::migrations).
  if (ctx.options().source_dir.empty()) {
    if (ctx.options().dry_run)
      (void)ctx.source();
    else
      (void)ctx.migrations();
  }
  auto run = run_options(ctx);
  const Version target = *parsed;
  run.target = Target::at(target);
  run.policy.allow_out_of_order = options.allow_out_of_order;
  LogReporter reporter;
  const auto result = apply(ctx, run, reporter);

  if (ctx.output() == OutputFormat::kJson) {
    ctx.print_json({{"command", "migrate-to"},
                    {"ok", true},
                    {"dry_run", run.dry_run},
                    {"target", target},
                    {"version_before", result.plan.from},
                    {"version_after", run.dry_run ? result.plan.to : result.version_after},
                    {"planned", steps_json(result.plan, run.dry_run)},
                    {"applied", applied_json(result)},
                    {"warnings", result.plan.warnings}});
    return 0;
  }
  if (run.dry_run) {
    print_plan_text(result.plan, true);
  } else if (result.applied.empty()) {
    fmt::print("nothing to do: database at version {}\n", result.version_after);
  } else {
    std::size_t downs = 0;
    for (const auto& a : result.applied) downs += a.direction == Direction::kDown ? 1 : 0;
    fmt::print("migrated to version {}: {} applied, {} reverted (version {} -> {})\n", target,
               result.applied.size() - downs, downs, result.plan.from, result.version_after);
  }
  std::fflush(stdout);
  return 0;
}

}  // namespace stepwise::cli
