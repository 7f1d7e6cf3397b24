#pragma once
// One function per command: parse-time options struct + run function returning the exit code.
#include <optional>
#include <string>
#include <vector>

#include "context.hpp"
#include "stepwise/runner.hpp"
#include "stepwise/upgrade.hpp"
#include "stepwise/validation.hpp"

namespace stepwise::cli {

// Shared by the commands that apply migrations (cmd_up.cpp).
[[nodiscard]] RunOptions run_options(Context& ctx);
[[nodiscard]] RunResult apply(Context& ctx, const RunOptions& run, Reporter& reporter);
[[nodiscard]] nlohmann::json steps_json(const Plan& plan, bool with_sql);
[[nodiscard]] nlohmann::json applied_json(const RunResult& result);
void print_plan_text(const Plan& plan, bool with_sql);

struct UpOptions {
  bool allow_out_of_order = false;
};
int run_up(Context& ctx, const UpOptions& options);

int run_status(Context& ctx);

struct MigrateToOptions {
  std::string version;
  bool allow_out_of_order = false;
};
int run_migrate_to(Context& ctx, const MigrateToOptions& options);

struct UpgradeOptions {
  std::string from;
  std::string to;
  bool offline = false;
  bool skip_drift_check = false;
  std::vector<std::string> ignore;  // --ignore, as validate's (for the drift checks)
  std::string backup;
  std::string pg_dump = "pg_dump";
};
int run_upgrade(Context& ctx, const UpgradeOptions& options);
// upgrade's parts that `serve` shares (cmd_upgrade.cpp): the --backup path check (UsageError),
// the pg_dump backup recorded in the log, and the plan as JSON.
void check_backup_path(const std::string& file);
void backup(Context& ctx, const UpgradeOptions& options, Version version);
[[nodiscard]] nlohmann::json plan_json(const UpgradePlan& plan, const MigrationSet& set);

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
  bool ignore_extensions = false;  // --ignore-extensions: same as --ignore kind:extension
  std::string fix_script;          // --fix-script FILE: one script for all drift findings
  // Not a flag: a one-shot validate frees the expected JSON text once it is parsed.
  bool release_expected_text = false;
};
int run_validate(Context& ctx, const ValidateOptions& options);
// validate's checks against an expectation, and their rendering (cmd_validate.cpp).
[[nodiscard]] Validation check_database(Context& ctx, const ValidateOptions& options,
                                        const Expectation& exp);
void print_validation(const Context& ctx, const Validation& v);
// validate's JSON document for `v` (what --output json prints).
[[nodiscard]] nlohmann::json validation_json(const Validation& v);

struct RepairOptions {
  std::string version;
  bool applied = false;
  bool rolled_back = false;
};
int run_repair(Context& ctx, const RepairOptions& options);

struct AdoptOptions {
  std::string from;      // --from TOOL
  std::string table;     // --table SCHEMA.TABLE (default: the tool's)
  std::string mapping;   // --mapping FILE
  std::string baseline;  // --baseline VERSION
  bool allow_out_of_order = false;
  bool accept_drift = false;
  bool skip_verify = false;  // --skip-verify: adopt where no expected schema applies
  std::vector<std::string> ignore;
  std::vector<std::string> schemas;
};
int run_adopt(Context& ctx, const AdoptOptions& options);

struct ImportOptions {
  std::string from;
  std::string src;
  std::string dest;
};
int run_import(Context& ctx, const ImportOptions& options);

struct BundleOptions {
  std::string out;
};
int run_bundle(Context& ctx, const BundleOptions& options);

struct GenerateExpectedOptions {
  std::string out;
};
int run_generate_expected(Context& ctx, const GenerateExpectedOptions& options);

// stepwise serve: the upgrades API and the maintenance page (cmd_serve.cpp,
// docs/commands/serve.md).
struct ServeOptions {
  std::string listen = "127.0.0.1:8080";
  std::string token_file;  // else STEPWISE_TOKEN
  bool public_read = false;
  std::string read_database_url;
  std::size_t max_body = 64 * 1024;
  std::string read_timeout = "10s";
  std::string write_timeout = "30s";
  std::vector<std::string> ignore;  // drift the checks ignore, as validate --ignore
  std::string pg_dump = "pg_dump";
};
int run_serve(Context& ctx, const ServeOptions& options);

struct CheckOptions {
  std::string output;       // --output on the command: text, json or sarif ("" = the global one)
  std::string scratch_url;  // a server where check creates and drops its own databases
  bool strict = false;      // warnings fail too
  bool require_down = false;
  bool lint_only = false;  // no database checks
};
int run_check(Context& ctx, const CheckOptions& options);

}  // namespace stepwise::cli
