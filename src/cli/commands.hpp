#pragma once
// One function per command: parse-time options struct + run function returning the exit code.
#include <optional>
#include <string>
#include <vector>

#include "context.hpp"

namespace stepwise::cli {

struct UpOptions {
  bool allow_out_of_order = false;
};
int run_up(Context& ctx, const UpOptions& options);

int run_status(Context& ctx);

struct DescribeCommandOptions {
  std::vector<std::string> schemas;
};
int run_describe(Context& ctx, const DescribeCommandOptions& options);

struct ValidateOptions {
  std::optional<std::string> release;
  bool wait = false;
  std::string timeout = "10m";
  std::vector<std::string> ignore;
  std::vector<std::string> schemas;
  bool skip_drift = false;
};
int run_validate(Context& ctx, const ValidateOptions& options);

struct GenerateExpectedOptions {
  std::string out;
};
int run_generate_expected(Context& ctx, const GenerateExpectedOptions& options);

}  // namespace stepwise::cli
