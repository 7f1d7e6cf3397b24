#pragma once
// Fleets: `up`, `migrate-to`, `validate` and `status` over many databases (--targets FILE) or
// tenant schemas of one database (--tenant-schemas / --tenant-query), in bounded parallel, one
// ordinary locked stepwise run per target, a result line per target and a summary.
#include <string>

#include "commands.hpp"
#include "context.hpp"

namespace stepwise::cli {

struct FleetOptions {
  std::string targets_file;    // --targets FILE
  std::string tenant_schemas;  // --tenant-schemas GLOB
  std::string tenant_query;    // --tenant-query SQL
  int parallel = 4;            // --parallel N: at most N targets (and sessions) at once
  bool fail_fast = false;      // --fail-fast: start no target after the first failure
  std::string shard;           // --shard I/N or auto/N (JOB_COMPLETION_INDEX)
  [[nodiscard]] bool requested() const {
    return !targets_file.empty() || !tenant_schemas.empty() || !tenant_query.empty();
  }
};

enum class FleetCommand { kUp, kMigrateTo, kValidate, kStatus };

struct FleetCommandOptions {
  FleetCommand command = FleetCommand::kUp;
  UpOptions up;
  MigrateToOptions migrate_to;
  ValidateOptions validate;
};

// Exit code: 0 when every target succeeded; 18 (kFleetIncomplete) when any did not (each
// result names its own code); 7 when interrupted. Errors before any target runs (a bad
// targets file, the tenant query failing) throw as any command's.
int run_fleet(Context& ctx, const FleetOptions& fleet, const FleetCommandOptions& command);

// Throws UsageError when fleet-only options (--parallel, --fail-fast, --shard) are given
// without a fleet, or a fleet with a command other than the four.
void check_fleet_options(const FleetOptions& fleet, bool fleet_flags_given, bool fleet_command);

}  // namespace stepwise::cli
