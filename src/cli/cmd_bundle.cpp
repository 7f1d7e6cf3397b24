#include <fmt/format.h>

#include "commands.hpp"
#include "stepwise/bundle.hpp"

namespace stepwise::cli {

// Validates the folder exactly as the loader does, then writes a copy of this executable with
// the folder's set (migrations, releases.json, expected/, checks/, check-allow.txt) appended.
int run_bundle(Context& ctx, const BundleOptions& options) {
  if (ctx.options().source_dir.empty())
    throw UsageError("bundle: --source DIR is required (the folder whose migrations to embed)");
  const auto files = load_directory(ctx.options().source_dir);
  auto source = validate_source(files);
  write_bundle("/proc/self/exe", files, options.out);
  source.origin = "bundled";
  if (ctx.output() == OutputFormat::kJson)
    ctx.print_json({{"command", "bundle"},
                    {"ok", true},
                    {"file", options.out},
                    {"migrations", source.migrations.size()},
                    {"newest", source.migrations.latest()},
                    {"digest", source.migrations.digest()}});
  else
    fmt::print("wrote {}: {}\n", options.out, describe_set(source));
  std::fflush(stdout);
  return 0;
}

}  // namespace stepwise::cli
