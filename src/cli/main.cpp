// stepwise: parse the command line, dispatch, and translate errors to exit codes in one place.
#include <fmt/format.h>
#include <signal.h>

#include <spdlog/spdlog.h>
#include <csignal>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>
#include <optional>

#include "commands.hpp"
#include "fleet.hpp"
#include "output.hpp"
#include "stepwise/errors.hpp"
#include "stepwise/redact.hpp"
#include "stepwise/text.hpp"
#include "stepwise/version.hpp"

namespace {

using stepwise::ExitCode;
using stepwise::cli::Context;

// The first word that is neither an option nor an option's value: what the user meant as the
// command when CLI11 only says that a command is required.
std::optional<std::string> unknown_command(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    if (a.starts_with("-")) {
      if (a.starts_with("--") && a.find('=') == std::string_view::npos && a != "--dry-run" &&
          a != "--fail-fast" && a != "--show-blocking-query" && a != "--help" && a != "--version")
        ++i;  // every other global option takes a value
      continue;
    }
    return std::string(a);
  }
  return std::nullopt;
}

// The version, the commit, and the migration set this binary carries.
std::string version_text() {
  auto text = fmt::format("stepwise {}", stepwise::kToolVersion);
  if (*stepwise::kGitCommit) text += fmt::format(" (commit {})", stepwise::kGitCommit);
  try {
    text += "\nmigrations: " + stepwise::cli::describe_set(stepwise::cli::load_source(""));
  } catch (const stepwise::Error& e) {
    text += "\nmigrations: unusable: " + stepwise::one_line(e.what(), 300);
  }
  return text;
}

int report(const Context& ctx, const stepwise::Error& e) {
  const auto& secrets = ctx.secrets();
  std::string msg = e.what();
  stepwise::cli::end_status_line();
  // One line per problem; every line says it comes from stepwise, and none is a dump.
  std::size_t start = 0;
  while (start <= msg.size()) {
    const auto nl = msg.find('\n', start);
    std::fprintf(
        stderr, "stepwise: error: %s\n",
        stepwise::one_line(stepwise::redact(msg.substr(start, nl - start), secrets), 2000).c_str());
    if (nl == std::string::npos) break;
    start = nl + 1;
  }
  if (!e.hint().empty())
    std::fprintf(stderr, "stepwise: hint: %s\n", stepwise::redact(e.hint(), secrets).c_str());
  if (ctx.output() == stepwise::cli::OutputFormat::kJson)
    ctx.print_json({{"ok", false},
                    {"exit_code", static_cast<int>(e.code())},
                    {"error", e.what()},
                    {"hint", e.hint()}});
  return static_cast<int>(e.code());
}

}  // namespace

int main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);
  stepwise::cli::GlobalOptions g;
  CLI::App app{
      "stepwise: schema migrations for PostgreSQL, safe to run from every replica at once"};
  app.set_version_flag("--version", std::function<std::string()>(version_text));
  app.require_subcommand(1);
  app.option_defaults()->always_capture_default();
  app.add_option("--database-url", g.database_url,
                 "connection URL or key=value string (else STEPWISE_DATABASE_URL, DATABASE_URL, "
                 "then libpq's PG* variables)");
  app.add_option("--source", g.source_dir,
                 "load migrations from this folder instead of the embedded set")
      ->envname("STEPWISE_SOURCE");
  app.add_option("--log-table", g.log_table, "attempt log table, [schema.]table")
      ->envname("STEPWISE_LOG_TABLE");
  app.add_option("--connect-timeout", g.connect_timeout, "keep retrying the connection this long")
      ->envname("STEPWISE_CONNECT_TIMEOUT");
  app.add_option("--lock-timeout", g.lock_timeout, "wait this long for another runner's lock")
      ->envname("STEPWISE_LOCK_TIMEOUT");
  app.add_option("--statement-timeout", g.statement_timeout,
                 "per-statement limit while applying; 0 = none")
      ->envname("STEPWISE_STATEMENT_TIMEOUT");
  app.add_option("--ddl-lock-timeout", g.ddl_lock_timeout,
                 "longest wait for a table lock in a step before backing off and retrying; 0 = "
                 "wait forever")
      ->envname("STEPWISE_DDL_LOCK_TIMEOUT");
  app.add_option("--ddl-lock-retries", g.ddl_lock_retries,
                 "retries after a lock timeout before the step fails")
      ->envname("STEPWISE_DDL_LOCK_RETRIES");
  app.add_option("--engine", g.engine, "auto (detected at connect), postgres or cockroachdb")
      ->envname("STEPWISE_ENGINE");
  app.add_option("--lock-strategy", g.lock_strategy,
                 "auto (the engine's: advisory on PostgreSQL, lease on CockroachDB), advisory, or "
                 "lease (a row "
                 "renewed by a heartbeat; for PgBouncer transaction pooling)")
      ->envname("STEPWISE_LOCK_STRATEGY");
  app.add_option("--lease-ttl", g.lease_ttl,
                 "lease strategy: a lease not renewed for this long can be taken over")
      ->envname("STEPWISE_LEASE_TTL");
  app.add_option("--output", g.output, "result format on stdout: text or json")
      ->envname("STEPWISE_OUTPUT");
  app.add_option("--log-level", g.log_level,
                 "trace, debug, info, warn, error or off (logs go to stderr)")
      ->envname("STEPWISE_LOG_LEVEL");
  app.add_option("--log-format", g.log_format,
                 "text, or json: one object per line (time, level, message, fields)")
      ->envname("STEPWISE_LOG_FORMAT");
  app.add_option("--progress-interval", g.progress_interval,
                 "report what a step does once it runs this long, then as often (0: never)");
  app.add_flag("--show-blocking-query", g.show_blocking_query,
               "in progress reports, include the query text of a session the step waits for");
  app.add_flag("--dry-run", g.dry_run, "print what would run; change nothing");

  // Fleets (fleet.cpp): up, migrate-to, validate or status over many targets.
  stepwise::cli::FleetOptions fleet;
  app.add_option("--targets", fleet.targets_file,
                 "fleet: run for every database in FILE (one connection string or service name "
                 "per line, or a JSON array of {\"name\", \"url\"})");
  app.add_option("--tenant-schemas", fleet.tenant_schemas,
                 "fleet: run for every schema of the database matching this glob (* and ?), "
                 "each with its own log table and search_path");
  app.add_option("--tenant-query", fleet.tenant_query,
                 "fleet: run for every schema this read-only query returns (first column)");
  auto* parallel_opt = app.add_option("--parallel", fleet.parallel,
                                      "fleet: at most this many targets (and sessions) at once")
                           ->envname("STEPWISE_PARALLEL");
  auto* fail_fast_opt = app.add_flag("--fail-fast", fleet.fail_fast,
                                     "fleet: start no more targets after the first failure");
  auto* shard_opt =
      app.add_option("--shard", fleet.shard,
                     "fleet: take only shard I of N (I/N; auto/N: I from JOB_COMPLETION_INDEX)")
          ->envname("STEPWISE_SHARD");

  stepwise::cli::UpOptions up;
  auto* cmd_up = app.add_subcommand("up", "apply all pending migrations");
  cmd_up->add_flag("--allow-out-of-order", up.allow_out_of_order,
                   "apply pending migrations older than the newest applied one");
  auto* cmd_status = app.add_subcommand("status", "applied and pending migrations, one line each");

  stepwise::cli::MigrateToOptions migrate_to;
  auto* cmd_migrate_to =
      app.add_subcommand("migrate-to", "go up or down to exactly VERSION (0: before the first)");
  cmd_migrate_to->add_option("VERSION", migrate_to.version, "target migration version")->required();
  cmd_migrate_to->add_flag("--allow-out-of-order", migrate_to.allow_out_of_order,
                           "apply pending migrations older than the newest applied one");

  stepwise::cli::UpgradeOptions upgrade;
  auto* cmd_upgrade = app.add_subcommand("upgrade",
                                         "multi-release upgrade: check the starting release, plan "
                                         "through the releases between, apply");
  cmd_upgrade->add_option("--from", upgrade.from,
                          "starting release (default: the one whose schema the database has)");
  cmd_upgrade->add_option("--to", upgrade.to, "release to reach")->required();
  cmd_upgrade->add_flag(
      "--offline", upgrade.offline,
      "no application instance is running: pass the roll-out stops and apply straight through");
  cmd_upgrade->add_flag("--skip-drift-check", upgrade.skip_drift_check,
                        "do not refuse on drift at the start");
  cmd_upgrade->add_option("--ignore", upgrade.ignore,
                          "drift the checks ignore, as validate --ignore (repeatable; e.g. "
                          "kind:grant where privileges legitimately differ)");
  cmd_upgrade->add_option("--backup", upgrade.backup,
                          "pg_dump --format=custom to this file before the first change");
  cmd_upgrade->add_option("--pg-dump", upgrade.pg_dump, "the pg_dump to use");

  stepwise::cli::DescribeCommandOptions describe;
  auto* cmd_describe = app.add_subcommand(
      "describe", "canonical dump of the live schema (--output json, or SQL text)");
  cmd_describe->add_option("--schema", describe.schemas,
                           "schema to describe (repeatable; default: all but system)");

  stepwise::cli::ValidateOptions validate;
  std::string validate_release;
  auto* cmd_validate = app.add_subcommand(
      "validate",
      "read-only: version, checksums, failed attempts and schema drift; the exit code says why");
  auto* release_opt = cmd_validate->add_option(
      "--release", validate_release, "accept any version in this release's compatibility range");
  cmd_validate->add_flag("--wait", validate.wait,
                         "poll until the database validates (another pod is migrating)");
  cmd_validate->add_option("--timeout", validate.timeout,
                           "with --wait: give up after this long (exit 15)");
  cmd_validate->add_option(
      "--ignore", validate.ignore,
      "objects not owned by the application, as a glob on schema.name or schema.table.name, or "
      "kind:KIND (a kind such as extension or index, or owner, grant, comment) (repeatable)");
  cmd_validate->add_flag("--ignore-extensions", validate.ignore_extensions,
                         "ignore extensions (installed by a DBA): --ignore kind:extension");
  cmd_validate->add_option("--fix-script", validate.fix_script,
                           "write one SQL script fixing every drift finding to FILE");
  cmd_validate->add_option("--schema", validate.schemas, "schemas to check for drift (repeatable)");
  cmd_validate->add_flag("--skip-drift", validate.skip_drift,
                         "check versions, checksums and attempts only");

  stepwise::cli::RepairOptions repair;
  auto* cmd_repair = app.add_subcommand(
      "repair",
      "record what you found of an interrupted not-resumable step (the only hand repair there is)");
  cmd_repair->add_option("VERSION", repair.version, "the interrupted migration's version")
      ->required();
  cmd_repair->add_flag("--applied", repair.applied, "the step is complete: record it as applied");
  cmd_repair->add_flag("--rolled-back", repair.rolled_back,
                       "nothing of it is left: the next up runs it again");

  stepwise::cli::AdoptOptions adopt;
  auto* cmd_adopt = app.add_subcommand(
      "adopt",
      "take over a database another tool migrated (--from TOOL) or nobody did (--baseline "
      "VERSION): record its history as adopted, after checking the schema");
  cmd_adopt->add_option("--from", adopt.from,
                        "golang-migrate, dbmate, goose, flyway, sqitch, node-pg-migrate, "
                        "postgrator or graphile-migrate: read its history table (never written)");
  cmd_adopt->add_option("--table", adopt.table,
                        "the tool's history table, SCHEMA.TABLE (default: the tool's own)");
  cmd_adopt->add_option("--mapping", adopt.mapping,
                        "file of other-id=stepwise-version lines (other-id=- leaves one out)");
  cmd_adopt->add_option("--baseline", adopt.baseline,
                        "no history: record every file up to VERSION as adopted");
  cmd_adopt->add_flag("--allow-out-of-order", adopt.allow_out_of_order,
                      "adopt a history with gaps; the files it never applied stay pending");
  cmd_adopt->add_flag("--accept-drift", adopt.accept_drift,
                      "record even when the schema differs from the expected one (the findings "
                      "go into the log rows)");
  cmd_adopt->add_flag("--skip-verify", adopt.skip_verify,
                      "record even when the set has expected schemas but none for the version "
                      "(it lies between releases): one warning, unverified");
  cmd_adopt->add_option("--ignore", adopt.ignore,
                        "objects not owned by the application, glob on schema.table[.name]");
  cmd_adopt->add_option("--schema", adopt.schemas, "schemas to verify (repeatable)");

  stepwise::cli::ImportOptions import;
  auto* cmd_import =
      app.add_subcommand("import",
                         "convert another tool's migration folder (dbmate, golang-migrate, goose, "
                         "node-pg-migrate, postgrator, flyway, sqitch, graphile-migrate) into "
                         "stepwise's layout, keeping the versions");
  cmd_import
      ->add_option("--from", import.from,
                   "dbmate, golang-migrate, goose, node-pg-migrate, postgrator, flyway, sqitch or "
                   "graphile-migrate")
      ->required();
  cmd_import->add_option("SRC", import.src, "the tool's migration folder")->required();
  cmd_import->add_option("DEST", import.dest, "a new (or empty) folder for stepwise's files")
      ->required();

  stepwise::cli::BundleOptions bundle;
  auto* cmd_bundle = app.add_subcommand(
      "bundle", "write a copy of this executable with the migration set of --source DIR embedded");
  cmd_bundle->add_option("-o,--out", bundle.out, "the file to write")->required();

  stepwise::cli::GenerateExpectedOptions generate;
  auto* cmd_generate = app.add_subcommand("generate-expected",
                                          "apply the set release by release on a scratch database "
                                          "and write the expected schema of each");
  cmd_generate->add_option("--out", generate.out,
                           "folder for <VERSION>.json (default: <--source>/expected)");
  stepwise::cli::ServeOptions serve;
  auto* cmd_serve = app.add_subcommand(
      "serve", "HTTP upgrades API and maintenance page: state, plan, live upgrade progress");
  cmd_serve->add_option("--listen", serve.listen, "HOST:PORT to listen on (port 0: any free port)")
      ->envname("STEPWISE_LISTEN");
  cmd_serve->add_option("--token-file", serve.token_file,
                        "file holding the bearer token for upgrades (else STEPWISE_TOKEN)");
  cmd_serve->add_flag("--public-read", serve.public_read,
                      "read endpoints (state, plan, progress, metrics) need no token");
  cmd_serve
      ->add_option("--read-database-url", serve.read_database_url,
                   "a separate (read-only) connection for the read endpoints")
      ->envname("STEPWISE_READ_DATABASE_URL");
  cmd_serve->add_option("--max-body", serve.max_body, "largest request body in bytes (else 413)");
  cmd_serve->add_option("--read-timeout", serve.read_timeout, "time limit to read a request");
  cmd_serve->add_option("--write-timeout", serve.write_timeout, "time limit to write a response");
  cmd_serve->add_option("--ignore", serve.ignore,
                        "drift the checks ignore, as validate --ignore (repeatable)");
  cmd_serve->add_option("--pg-dump", serve.pg_dump, "the pg_dump for an upgrade's backup");

  stepwise::cli::CheckOptions check;
  auto* cmd_check = app.add_subcommand(
      "check",
      "for migration authors: lint every file with PostgreSQL's grammar, then up/down/up round "
      "trips and upgraded == fresh on a scratch server");
  cmd_check->add_option("--output", check.output, "text, json or sarif (SARIF 2.1.0)");
  cmd_check
      ->add_option("--scratch-url", check.scratch_url,
                   "a server where check may create and drop its own databases (default: "
                   "a throw-away PostgreSQL started with initdb from PATH)")
      ->envname("STEPWISE_SCRATCH_URL");
  cmd_check->add_flag("--strict", check.strict, "warnings fail the check too");
  cmd_check->add_flag("--require-down", check.require_down,
                      "a migration without a down file is an error, not a warning");
  cmd_check->add_flag("--lint-only", check.lint_only, "no database: the lint alone");
  for (auto* sub : app.get_subcommands({})) sub->fallthrough();

  try {
    app.parse(argc, argv);
  } catch (const CLI::Success& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::string text = e.what();
    if (!app.get_subcommands().empty() ||
        text.find("subcommand is required") == std::string::npos) {
    } else if (const auto unknown = unknown_command(argc, argv)) {
      text = "unknown command " + stepwise::printable(*unknown, 60) +
             " (commands: up, migrate-to, upgrade, validate, status, describe, repair, adopt, "
             "import, bundle, generate-expected, serve, check)";
    }
    text = stepwise::one_line(stepwise::redact(text), 1000);
    std::fprintf(stderr, "stepwise: error: %s\n", text.c_str());
    std::fprintf(stderr, "stepwise: hint: run `stepwise --help` for the commands and options\n");
    return static_cast<int>(ExitCode::kUsage);
  }

  Context ctx(g);
  try {
    stepwise::cli::setup_logging(g.log_level, g.log_format, &ctx.secrets());
    ctx.resolve();
    const bool fleet_command = cmd_up->parsed() || cmd_migrate_to->parsed() ||
                               cmd_validate->parsed() || cmd_status->parsed();
    stepwise::cli::check_fleet_options(
        fleet, parallel_opt->count() + fail_fast_opt->count() + shard_opt->count() > 0,
        fleet_command);
    if (fleet.requested()) {
      stepwise::cli::FleetCommandOptions fc;
      fc.command = cmd_up->parsed()           ? stepwise::cli::FleetCommand::kUp
                   : cmd_migrate_to->parsed() ? stepwise::cli::FleetCommand::kMigrateTo
                   : cmd_validate->parsed()   ? stepwise::cli::FleetCommand::kValidate
                                              : stepwise::cli::FleetCommand::kStatus;
      fc.up = up;
      fc.migrate_to = migrate_to;
      fc.validate = validate;
      if (release_opt->count() > 0) fc.validate.release = validate_release;
      return stepwise::cli::run_fleet(ctx, fleet, fc);
    }
    // `up` and `migrate-to` start the signal watcher once there is work (the no-op path ends
    // on a signal's default action); every other command watches from the start.
    if (!cmd_up->parsed() && !cmd_migrate_to->parsed() && !cmd_serve->parsed()) ctx.watch_signals();
    if (cmd_up->parsed()) return stepwise::cli::run_up(ctx, up);
    if (cmd_status->parsed()) return stepwise::cli::run_status(ctx);
    if (cmd_migrate_to->parsed()) return stepwise::cli::run_migrate_to(ctx, migrate_to);
    if (cmd_upgrade->parsed()) return stepwise::cli::run_upgrade(ctx, upgrade);
    if (cmd_describe->parsed()) return stepwise::cli::run_describe(ctx, describe);
    if (cmd_validate->parsed()) {
      if (release_opt->count() > 0) validate.release = validate_release;
      return stepwise::cli::run_validate(ctx, validate);
    }
    if (cmd_repair->parsed()) return stepwise::cli::run_repair(ctx, repair);
    if (cmd_adopt->parsed()) return stepwise::cli::run_adopt(ctx, adopt);
    if (cmd_import->parsed()) return stepwise::cli::run_import(ctx, import);
    if (cmd_bundle->parsed()) return stepwise::cli::run_bundle(ctx, bundle);
    if (cmd_generate->parsed()) return stepwise::cli::run_generate_expected(ctx, generate);
    if (cmd_serve->parsed()) return stepwise::cli::run_serve(ctx, serve);
    if (cmd_check->parsed()) return stepwise::cli::run_check(ctx, check);
    return static_cast<int>(ExitCode::kUsage);
  } catch (const stepwise::Error& e) {
    return report(ctx, e);
  } catch (const std::exception& e) {
    return report(ctx,
                  stepwise::Error(ExitCode::kFailed, fmt::format("internal error: {}", e.what())));
  }
}
