#pragma once
// One function per command: parse-time options struct + run function returning the exit code.
#include <string>

#include "context.hpp"

namespace stepwise::cli {

struct UpOptions {
  bool allow_out_of_order = false;
};
int run_up(Context& ctx, const UpOptions& options);

int run_status(Context& ctx);

}  // namespace stepwise::cli
