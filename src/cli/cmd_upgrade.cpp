#include <fcntl.h>
#include <fmt/format.h>
#include <spawn.h>
#include <spdlog/spdlog.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "commands.hpp"
#include "output.hpp"
#include "stepwise/checksum.hpp"
#include "stepwise/duration.hpp"
#include "stepwise/redact.hpp"
#include "stepwise/text.hpp"
#include "stepwise/upgrade.hpp"

extern char** environ;

namespace stepwise::cli {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

namespace {

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

// --backup FILE, checked before anything runs: a file (not a folder) in a folder that exists
// and may be written. Throws UsageError naming the path.
void check_backup_path(const std::string& file) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path path(file);
  const auto shown = display_name(file);
  if (fs::is_directory(path, ec))
    throw UsageError(fmt::format("--backup {}: is a directory (expected the file to write)", shown),
                     "name the dump file, e.g. --backup /backups/before-upgrade.dump");
  const fs::path dir = path.has_parent_path() ? path.parent_path() : fs::path(".");
  if (!fs::exists(dir, ec))
    throw UsageError(
        fmt::format("--backup {}: the directory {} does not exist", shown,
                    display_name(dir.string())),
        "create it first, or pass a path in an existing directory; nothing was applied");
  if (!fs::is_directory(dir, ec))
    throw UsageError(
        fmt::format("--backup {}: {} is not a directory", shown, display_name(dir.string())));
  if (::access(dir.c_str(), W_OK | X_OK) != 0)
    throw UsageError(fmt::format("--backup {}: the directory {} is not writable", shown,
                                 display_name(dir.string())));
  if (fs::exists(path, ec) && ::access(path.c_str(), W_OK) != 0)
    throw UsageError(fmt::format("--backup {}: the file exists and is not writable", shown));
}

// pg_dump --format=custom of the database to `file`. The password travels in PGPASSWORD, never
// on the command line (where ps shows it). Throws; a failed dump leaves no file behind.
void backup(Context& ctx, const UpgradeOptions& options, Version version) {
  const auto& info = ctx.conninfo();
  // pg_dump's stderr goes to a private temp file, not next to the backup.
  const auto tmp = std::filesystem::temp_directory_path() / "stepwise-pg_dump.XXXXXX";
  std::string err_path = tmp.string();
  const int err_fd = ::mkstemp(err_path.data());
  if (err_fd < 0)
    throw Error(ExitCode::kFailed,
                fmt::format("--backup {}: cannot create a temporary file in {}: {}", options.backup,
                            tmp.parent_path().string(), std::strerror(errno)),
                "nothing was applied");
  ::close(err_fd);
  std::vector<std::string> args = {
      options.pg_dump, "--format=custom", "--no-password",     "--file",
      options.backup,  "--dbname",        info.conninfo_public};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::string> env_strings;
  for (char** e = environ; *e; ++e)
    if (std::strncmp(*e, "PGPASSWORD=", 11) != 0) env_strings.emplace_back(*e);
  if (!info.password.empty()) env_strings.push_back("PGPASSWORD=" + info.password);
  std::vector<char*> envp;
  for (auto& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0600);
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  pid_t pid = 0;
  const auto start = Clock::now();
  spdlog::info("backing up the database to {} with {} ...", options.backup, options.pg_dump);
  const int rc =
      posix_spawnp(&pid, options.pg_dump.c_str(), &actions, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) {
    std::filesystem::remove(err_path);
    throw Error(ExitCode::kFailed,
                fmt::format("--pg-dump {}: cannot run it: {}; no backup written to {}",
                            options.pg_dump, std::strerror(rc), options.backup),
                rc == ENOENT ? "install postgresql-client, or pass --pg-dump /path/to/pg_dump; "
                               "nothing was applied"
                             : "nothing was applied");
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  const auto errors = read_all(err_path);
  std::filesystem::remove(err_path);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::error_code ec;
    std::filesystem::remove(options.backup, ec);
    // pg_dump's first line says what went wrong; later ones are consequences.
    const auto lines = split_lines(trim(errors));
    std::string why = lines.empty() ? "exit status " + std::to_string(WEXITSTATUS(status))
                                    : std::string(trim(lines.front()));
    if (why.starts_with("pg_dump: ")) why = why.substr(9);
    if (why.starts_with("error: ")) why = why.substr(7);
    throw Error(ExitCode::kFailed,
                fmt::format("--backup {}: pg_dump failed: {}", options.backup,
                            redact(one_line(why, 500), ctx.secrets())),
                "nothing was applied");
  }
  const auto seconds = std::chrono::duration<double>(Clock::now() - start).count();
  const auto checksum = sha256_hex(read_all(options.backup));
  // The log is written under the lock `up` takes, like every other log row.
  HistoryStore store(ctx.connect(), ctx.log_table(), runner_identity());
  auto held = ctx.hold_lock("upgrade --backup: ");
  store.record_backup(version, std::filesystem::absolute(options.backup).string(), checksum,
                      seconds);
  held.release();
  spdlog::info("backup written: {} ({} bytes, {})", options.backup,
               std::filesystem::file_size(options.backup),
               format_duration(std::chrono::duration_cast<milliseconds>(Clock::now() - start)));
}

nlohmann::json plan_json(const UpgradePlan& plan, const MigrationSet& set) {
  nlohmann::json stages = nlohmann::json::array();
  for (const auto& s : plan.stages) {
    nlohmann::json files = nlohmann::json::array();
    for (auto v : s.versions) files.push_back(set.find(v)->up.file);
    nlohmann::json j{{"release", s.release.name},
                     {"schema", s.release.schema},
                     {"min_schema", s.release.min_schema},
                     {"migrations", files}};
    if (s.stop_before) j["stop_before"] = {{"roll_out", *s.stop_before}};
    stages.push_back(std::move(j));
  }
  return {{"from", plan.from.name},
          {"to", plan.to.name},
          {"steps", plan.step_count()},
          {"stages", stages}};
}

namespace {

void print_plan(const UpgradePlan& plan, const MigrationSet& set, bool offline) {
  fmt::print("upgrade plan: release {} -> {}, {} migration(s)\n", plan.from.name, plan.to.name,
             plan.step_count());
  for (const auto& s : plan.stages) {
    if (s.stop_before)
      fmt::print("  STOP: roll out release {} everywhere before continuing{}\n", *s.stop_before,
                 offline ? " (passed: --offline)" : "");
    fmt::print("  release {} (schema {}, runs on {} and later):\n", s.release.name,
               s.release.schema, s.release.min_schema);
    if (s.versions.empty()) fmt::print("    (nothing to apply)\n");
    for (auto v : s.versions) {
      const auto* m = set.find(v);
      fmt::print("    {}{}\n", m->up.file,
                 m->up.tx == TxMode::kNoTransaction ? " (no transaction)" : "");
    }
  }
}

}  // namespace

int run_upgrade(Context& ctx, const UpgradeOptions& options) {
  if (!options.backup.empty()) check_backup_path(options.backup);
  const auto& source = ctx.source();
  if (source.releases.empty()) throw PlanRefused("upgrade: this build has no releases.json");
  auto& conn = ctx.connect();
  HistoryStore store(conn, ctx.log_table(), runner_identity());
  const auto history = store.read(HistoryStore::Detail::kFull);
  const Release* from = nullptr;
  if (!options.from.empty()) {
    from = source.releases.find(options.from);
    if (from == nullptr)
      throw PlanRefused(
          fmt::format("--from {}: not a release in releases.json", printable(options.from, 40)));
  } else {
    from = &release_at(source.releases, history.current_version());
  }

  // Before any change: the database must be exactly what release `from` left.
  ValidateOptions checks;
  checks.skip_drift = options.skip_drift_check;
  checks.ignore = options.ignore;
  const Expectation at_from{from->schema, from->schema,
                            fmt::format("release {} (version {})", from->name, from->schema)};
  const auto pre = check_database(ctx, checks, at_from);
  if (!pre.ok()) {
    print_validation(ctx, pre);
    throw Error(
        pre.exit_code(),
        fmt::format("the database does not match release {}: {} finding(s); refusing to upgrade",
                    from->name, pre.findings.size()),
        pre.exit_code() == ExitCode::kDrift
            ? "repair the drift (see the fixes above), or pass --skip-drift-check"
            : "run validate for details");
  }
  const auto plan = plan_upgrade(source.migrations, source.releases, history, *from, options.to);
  const bool json = ctx.output() == OutputFormat::kJson;
  if (ctx.options().dry_run) {
    if (json)
      ctx.print_json({{"command", "upgrade"},
                      {"ok", true},
                      {"dry_run", true},
                      {"plan", plan_json(plan, source.migrations)}});
    else
      print_plan(plan, source.migrations, options.offline);
    return 0;
  }
  // With work to do on a standby or a read-only session: one line, before the backup.
  if (plan.step_count() > 0) ctx.require_writable();
  if (!json) print_plan(plan, source.migrations, options.offline);
  if (!options.backup.empty()) backup(ctx, options, history.current_version());

  std::map<Version, std::string> release_of;
  for (const auto& s : plan.stages)
    for (auto v : s.versions) release_of[v] = s.release.name;
  LogReporter reporter;
  reporter.track_overall(plan.step_count(), release_of);
  const Release* reached = from;
  std::optional<std::string> halted;
  std::vector<AppliedStep> applied;
  for (const auto& stage : plan.stages) {
    if (stage.stop_before && !options.offline) {
      halted = *stage.stop_before;
      break;
    }
    auto run = run_options(ctx);
    run.target = Target::at(stage.release.schema);
    const auto result = apply(ctx, run, reporter);
    applied.insert(applied.end(), result.applied.begin(), result.applied.end());
    reached = &stage.release;
    spdlog::info("reached release {} (schema {})", reached->name, reached->schema);
  }

  // Afterwards: the checks of validate at the release reached.
  const Expectation at_reached{
      reached->schema, reached->schema,
      fmt::format("release {} (version {})", reached->name, reached->schema)};
  ValidateOptions post_checks;
  post_checks.ignore = options.ignore;
  const auto post = check_database(ctx, post_checks, at_reached);
  if (json) {
    nlohmann::json findings = nlohmann::json::array();
    for (const auto& f : post.findings)
      findings.push_back({{"kind", std::string(to_string(f.kind))},
                          {"object", f.object},
                          {"expected", f.expected},
                          {"actual", f.actual},
                          {"fix", f.fix}});
    RunResult r;
    r.applied = applied;
    nlohmann::json doc{{"command", "upgrade"},     {"ok", post.ok()},
                       {"dry_run", false},         {"plan", plan_json(plan, source.migrations)},
                       {"reached", reached->name}, {"applied", applied_json(r)},
                       {"findings", findings}};
    if (halted) doc["halted_before_rollout_of"] = *halted;
    if (!options.backup.empty()) doc["backup"] = options.backup;
    ctx.print_json(doc);
  } else {
    if (halted)
      fmt::print(
          "stopped at release {}: roll out release {} everywhere, then run `stepwise upgrade --to "
          "{}` again "
          "(or pass --offline when no application instance is running)\n",
          reached->name, *halted, plan.to.name);
    else
      fmt::print("upgraded to release {} (schema {}): {} migration(s) applied\n", reached->name,
                 reached->schema, applied.size());
    if (!post.ok()) print_validation(ctx, post);
  }
  std::fflush(stdout);
  return static_cast<int>(post.exit_code());
}

}  // namespace stepwise::cli
