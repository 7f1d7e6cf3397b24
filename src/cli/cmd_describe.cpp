#include <fmt/format.h>

#include <cstdio>

#include "commands.hpp"
#include "stepwise/describe.hpp"

namespace stepwise::cli {

// Read-only: catalog queries only.
int run_describe(Context& ctx, const DescribeCommandOptions& options) {
  auto& conn = ctx.connect();
  const auto description = ctx.describe(conn, ctx.describe_options(options.schemas));
  const auto text =
      ctx.output() == OutputFormat::kJson ? to_json(description) : to_sql_text(description);
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fflush(stdout);
  return 0;
}

}  // namespace stepwise::cli
