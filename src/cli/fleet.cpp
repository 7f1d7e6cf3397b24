#include "fleet.hpp"

#include <fmt/format.h>
#include <signal.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include "output.hpp"
#include "stepwise/duration.hpp"
#include "stepwise/errors.hpp"
#include "stepwise/fleet.hpp"
#include "stepwise/history_store.hpp"
#include "stepwise/redact.hpp"
#include "stepwise/text.hpp"

namespace stepwise::cli {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

namespace {

// One target of the run: a database (url), or a tenant schema on the --database-url database.
struct Member {
  std::string name;
  std::string url;     // empty: the fleet's own --database-url (tenants)
  std::string schema;  // non-empty: a tenant schema
};

struct Result {
  std::string outcome = "not-run";  // applied, up-to-date, planned, failed, behind, valid, ...
  int exit_code = 0;
  bool ok = false;
  std::string error;
  std::string detail;  // the rest of the text line
  milliseconds took{0};
  nlohmann::json fields = nlohmann::json::object();
};

// The contexts running now, so that a signal reaches each of them.
struct Live {
  std::mutex mutex;
  std::set<Context*> contexts;
  std::atomic<bool>* fleet_stop = nullptr;
};
Live& live() {
  static auto* l = new Live;  // never destroyed: the signal thread may outlive main's statics
  return *l;
}

void watch_fleet_signals(std::atomic<bool>* stop) {
  live().fleet_stop = stop;
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);  // before the workers start: they inherit it
  std::thread([set]() mutable {
    int sig = 0;
    while (sigwait(&set, &sig) == 0) {
      auto& l = live();
      if (l.fleet_stop->exchange(true)) std::_Exit(static_cast<int>(ExitCode::kInterrupted));
      spdlog::warn("received {}: cancelling the running targets' statements; no new target starts",
                   sig == SIGTERM ? "SIGTERM" : "SIGINT");
      std::lock_guard g(l.mutex);
      for (auto* c : l.contexts) {
        c->stop.store(true);
        if (auto* conn = c->active.load()) conn->cancel();
      }
    }
  }).detach();
}

class Registered {
 public:
  explicit Registered(Context& c) : c_(c) {
    std::lock_guard g(live().mutex);
    live().contexts.insert(&c_);
    if (live().fleet_stop && live().fleet_stop->load()) c_.stop.store(true);
  }
  ~Registered() {
    std::lock_guard g(live().mutex);
    live().contexts.erase(&c_);
  }
  Registered(const Registered&) = delete;
  Registered& operator=(const Registered&) = delete;

 private:
  Context& c_;
};

// The runner's events as log lines naming the target; step lines at debug level (a fleet of
// 200 tenants × 20 migrations would otherwise print 8000 of them).
class FleetReporter final : public Reporter {
 public:
  FleetReporter(std::string name, const std::vector<std::string>& secrets)
      : name_(std::move(name)), secrets_(secrets) {}
  void warning(std::string_view message) override {
    spdlog::warn("{}: {}", name_, redact(message, secrets_));
  }
  void lock_waiting(milliseconds waited, const std::string& holder) override {
    spdlog::info("{}: waiting for the migration lock ({} so far; held by {})", name_,
                 format_duration(waited), redact(holder, secrets_));
  }
  void step_started(const Step& step, std::size_t index, std::size_t total) override {
    spdlog::debug("{}: {} {} ({}/{})", name_,
                  step.direction == Direction::kUp ? "applying" : "reverting", step.script().file,
                  index + 1, total);
  }
  void step_finished(const Step& step, std::size_t index, std::size_t total,
                     milliseconds took) override {
    spdlog::debug("{}: {} {} in {} ({}/{})", name_,
                  step.direction == Direction::kUp ? "applied" : "reverted", step.script().file,
                  format_duration(took), index + 1, total);
  }
  void step_progress(const Step& step, std::size_t, std::size_t,
                     const StepProgress& progress) override {
    spdlog::info("{}: {} still running after {}", name_, step.script().file,
                 format_duration(progress.elapsed));
  }
  void retrying(const Step& step, int attempt, int max_attempts, milliseconds wait,
                std::string_view reason) override {
    spdlog::warn("{}: {}: {}; trying again in {} ({}/{})", name_, step.script().file,
                 redact(reason, secrets_), format_duration(wait), attempt, max_attempts);
  }

 private:
  std::string name_;
  const std::vector<std::string>& secrets_;
};

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw UsageError(fmt::format("--targets {}: cannot read the file", printable(path, 200)));
  std::ostringstream s;
  s << f.rdbuf();
  return s.str();
}

bool allowed_schema_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '$' || c == '-' || c == ' ' || static_cast<unsigned char>(c) >= 0x80;
}

// The tenant schemas of the fleet's database, sorted by name (byte order).
std::vector<Member> list_tenants(Context& ctx, const FleetOptions& fleet) {
  auto& conn = ctx.connect();
  Rows rows;
  if (!fleet.tenant_schemas.empty()) {
    rows = conn.query(
        "SELECT nspname FROM pg_catalog.pg_namespace WHERE nspname LIKE $1 ESCAPE '\\' AND "
        "nspname NOT LIKE 'pg\\_%' ESCAPE '\\' AND nspname <> 'information_schema' "
        "ORDER BY nspname COLLATE \"C\"",
        {glob_to_like(fleet.tenant_schemas)});
  } else {
    // The user's own query, as a migration is theirs: run read-only, never changed.
    try {
      conn.execute("BEGIN READ ONLY");
      rows = conn.execute(fleet.tenant_query);
      conn.execute("COMMIT");
    } catch (const DbError& e) {
      try {
        conn.execute("ROLLBACK");
      } catch (const Error&) {
      }
      throw Error(ExitCode::kFailed,
                  fmt::format("--tenant-query: {} ({})", first_line(e.what()), e.sqlstate()),
                  "the query must return schema names in its first column");
    }
  }
  std::vector<Member> out;
  std::set<std::string> seen;
  for (const auto& r : rows) {
    if (r.empty() || !r[0] || r[0]->empty())
      throw Error(ExitCode::kFailed, "--tenant-query: returned an empty or NULL schema name");
    if (!seen.insert(*r[0]).second) continue;
    out.push_back(Member{*r[0], "", *r[0]});
  }
  if (fleet.tenant_query.empty())
    std::sort(out.begin(), out.end(),
              [](const Member& a, const Member& b) { return a.name < b.name; });
  return out;
}

// `"schema"."table"`, for --log-table's parser (which refuses what it cannot quote safely).
std::string tenant_log_table(const std::string& schema, const TableName& base) {
  for (const char c : schema)
    if (!allowed_schema_char(c))
      throw UsageError(fmt::format(
          "tenant schema {}: stepwise's log table cannot live in a schema named with {}",
          printable(schema, 80), printable(std::string(1, c), 4)));
  return fmt::format("\"{}\".\"{}\"", schema, base.table);
}

const char* command_name(FleetCommand c) {
  switch (c) {
    case FleetCommand::kUp:
      return "up";
    case FleetCommand::kMigrateTo:
      return "migrate-to";
    case FleetCommand::kValidate:
      return "validate";
    case FleetCommand::kStatus:
      return "status";
  }
  return "?";
}

class Fleet {
 public:
  Fleet(Context& ctx, const FleetOptions& fleet, const FleetCommandOptions& command)
      : ctx_(ctx), fleet_(fleet), command_(command) {}

  int run();

 private:
  Result run_one(const Member& m);
  void apply_one(Context& t, const Member& m, Result& r);
  void status_one(Context& t, Result& r);
  void validate_one(Context& t, const Member& m, Result& r);
  void print_result(const Member& m, const Result& r);
  void print_summary(milliseconds took);

  Context& ctx_;
  const FleetOptions& fleet_;
  const FleetCommandOptions& command_;
  const Source* source_ = nullptr;
  std::optional<Version> target_version_;
  std::optional<Expectation> expectation_;
  std::vector<Member> members_;
  std::vector<Result> results_;
  std::atomic<bool> failed_{false};
  std::mutex out_mutex_;
};

void Fleet::apply_one(Context& t, const Member& m, Result& r) {
  auto run = run_options(t);
  if (command_.command == FleetCommand::kMigrateTo) {
    run.target = Target::at(*target_version_);
    run.policy.allow_out_of_order = command_.migrate_to.allow_out_of_order;
  } else {
    run.policy.allow_out_of_order = command_.up.allow_out_of_order;
  }
  auto& conn = t.connect();
  HistoryStore store(conn, t.log_table(), runner_identity());
  FleetReporter reporter(m.name, t.secrets());
  // The tenant's search_path is set only once there is work: the no-op path stays one query.
  Runner runner(
      conn, store,
      [&] {
        if (!m.schema.empty())
          (void)conn.query("SELECT pg_catalog.set_config('search_path', $1, false)",
                           {conn.quote_identifier(m.schema)});
        return t.execution_profile();
      },
      reporter);
  const auto result = runner.run(source_->migrations, run);
  r.ok = true;
  r.fields["version_before"] = result.plan.from;
  r.fields["version_after"] = run.dry_run ? result.plan.to : result.version_after;
  r.fields["applied"] = result.applied.size();
  if (run.dry_run) {
    r.outcome = result.plan.steps.empty() ? "up-to-date" : "planned";
    r.fields["planned"] = steps_json(result.plan, false);
    r.detail = result.plan.steps.empty()
                   ? fmt::format("nothing to do: version {}", result.plan.from)
                   : fmt::format("would run {} step(s): version {} -> {}", result.plan.steps.size(),
                                 result.plan.from, result.plan.to);
  } else if (result.applied.empty()) {
    r.outcome = "up-to-date";
    r.detail = fmt::format("nothing to do: version {}{}", result.version_after,
                           result.done_by_other ? " (done by another runner)" : "");
  } else {
    std::size_t downs = 0;
    for (const auto& a : result.applied) downs += a.direction == Direction::kDown ? 1 : 0;
    r.outcome = "applied";
    r.detail = downs == 0 ? fmt::format("{} migration(s): version {} -> {}", result.applied.size(),
                                        result.plan.from, result.version_after)
                          : fmt::format("{} applied, {} reverted: version {} -> {}",
                                        result.applied.size() - downs, downs, result.plan.from,
                                        result.version_after);
  }
  for (const auto& w : result.plan.warnings) spdlog::warn("{}: {}", m.name, w);
}

void Fleet::status_one(Context& t, Result& r) {
  HistoryStore store(t.connect(), t.log_table(), runner_identity());
  const auto history = store.read(HistoryStore::Detail::kPlanning);
  std::size_t pending = 0, failed = 0;
  for (const auto& mig : source_->migrations.all()) {
    const auto* st = history.find(mig.version);
    if (st == nullptr || st->state != State::kApplied) ++pending;
    if (st != nullptr && (st->state == State::kFailed || st->state == State::kUnfinished)) ++failed;
  }
  std::size_t unknown = 0;
  for (const auto& [v, st] : history.versions())
    if (st.state == State::kApplied && source_->migrations.find(v) == nullptr) ++unknown;
  const auto version = history.current_version();
  r.fields["database_version"] = version;
  r.fields["latest_version"] = source_->migrations.latest();
  r.fields["pending"] = pending;
  r.fields["log_table_exists"] = history.log_table_exists();
  if (!history.log_table_exists()) {
    r.outcome = "not-migrated";
    r.exit_code = static_cast<int>(ExitCode::kBehind);
    r.detail = fmt::format("log table {} does not exist", t.log_table().display());
    return;
  }
  r.ok = true;
  r.outcome = failed > 0    ? "failed-attempt"
              : pending > 0 ? "behind"
              : unknown > 0 ? "ahead"
                            : "up-to-date";
  r.detail =
      fmt::format("version {}, latest {}: {} pending{}{}", version, source_->migrations.latest(),
                  pending, failed > 0 ? fmt::format(", {} failed or unfinished", failed) : "",
                  unknown > 0 ? fmt::format(", {} unknown to this build", unknown) : "");
}

void Fleet::validate_one(Context& t, const Member& m, Result& r) {
  ValidateOptions options = command_.validate;
  // The expected descriptions name the schema the set was described in, not each tenant's.
  if (!m.schema.empty()) options.skip_drift = true;
  const auto v = check_database(t, options, *expectation_);
  r.exit_code = static_cast<int>(v.exit_code());
  r.ok = v.ok();
  r.outcome = v.ok() ? "valid" : std::string(to_string(v.findings.front().kind));
  r.fields["database_version"] = v.database_version;
  r.fields["expected"] = v.expectation.label;
  nlohmann::json findings = nlohmann::json::array();
  for (const auto& f : v.findings)
    findings.push_back({{"kind", std::string(to_string(f.kind))},
                        {"object", f.object},
                        {"expected", f.expected},
                        {"actual", f.actual}});
  r.fields["findings"] = findings;
  if (!m.schema.empty()) r.fields["notes"] = {"drift not checked for tenant schemas"};
  r.detail = v.ok() ? fmt::format("version {} fits {}", v.database_version, v.expectation.label)
                    : fmt::format("{} finding(s), first: {} {}; version {}, expected {}",
                                  v.findings.size(), to_string(v.findings.front().kind),
                                  one_line(v.findings.front().object, 120), v.database_version,
                                  v.expectation.label);
}

Result Fleet::run_one(const Member& m) {
  Result r;
  const auto start = Clock::now();
  LogFields fields(nlohmann::json{{"target", m.name}});
  std::vector<std::string> secrets;
  try {
    GlobalOptions o = ctx_.options();
    if (!m.url.empty()) o.database_url = m.url;
    if (!m.schema.empty()) o.log_table = tenant_log_table(m.schema, ctx_.log_table());
    Context t(o);
    t.resolve();
    t.signals_watched_elsewhere();
    t.use_source(*source_);
    Registered reg(t);
    try {
      switch (command_.command) {
        case FleetCommand::kUp:
        case FleetCommand::kMigrateTo:
          apply_one(t, m, r);
          break;
        case FleetCommand::kStatus:
          status_one(t, r);
          break;
        case FleetCommand::kValidate:
          validate_one(t, m, r);
          break;
      }
    } catch (const Error&) {
      secrets = t.secrets();
      throw;
    }
  } catch (const Error& e) {
    r.ok = false;
    r.outcome = e.code() == ExitCode::kInterrupted ? "interrupted" : "failed";
    r.exit_code = static_cast<int>(e.code());
    r.error = redact(one_line(e.what(), 2000), secrets);
  } catch (const std::exception& e) {
    r.ok = false;
    r.outcome = "failed";
    r.exit_code = static_cast<int>(ExitCode::kFailed);
    r.error = redact(one_line(fmt::format("internal error: {}", e.what()), 2000), secrets);
  }
  r.took = std::chrono::duration_cast<milliseconds>(Clock::now() - start);
  return r;
}

void Fleet::print_result(const Member& m, const Result& r) {
  std::lock_guard g(out_mutex_);
  if (ctx_.output() == OutputFormat::kJson) {
    nlohmann::json j{{"target", m.name},
                     {"ok", r.ok},
                     {"outcome", r.outcome},
                     {"exit_code", r.exit_code},
                     {"duration_ms", r.took.count()}};
    if (!m.schema.empty()) j["schema"] = m.schema;
    for (const auto& [k, v] : r.fields.items()) j[k] = v;
    if (!r.error.empty()) j["error"] = r.error;
    const auto text = redact(j.dump()) + "\n";
    std::fwrite(text.data(), 1, text.size(), stdout);
  } else {
    const auto text = r.error.empty()
                          ? fmt::format("{:<14} {} ({}): {}\n", r.outcome, m.name,
                                        format_duration(r.took), r.detail)
                          : fmt::format("{:<14} {} ({}): exit {}: {}\n", r.outcome, m.name,
                                        format_duration(r.took), r.exit_code, r.error);
    end_status_line();
    std::fwrite(text.data(), 1, text.size(), stdout);
  }
  std::fflush(stdout);
}

void Fleet::print_summary(milliseconds took) {
  std::map<std::string, std::size_t> counts;
  std::vector<std::size_t> order(members_.size()), not_ok;
  for (std::size_t i = 0; i < members_.size(); ++i) {
    order[i] = i;
    ++counts[results_[i].outcome];
    if (!results_[i].ok) not_ok.push_back(i);
  }
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    return results_[a].took > results_[b].took;
  });
  order.resize(std::min<std::size_t>(order.size(), 5));
  const bool ok = not_ok.empty();
  if (ctx_.output() == OutputFormat::kJson) {
    nlohmann::json slowest = nlohmann::json::array(), failed = nlohmann::json::array();
    for (const auto i : order)
      slowest.push_back({{"target", members_[i].name}, {"duration_ms", results_[i].took.count()}});
    for (const auto i : not_ok)
      failed.push_back({{"target", members_[i].name},
                        {"outcome", results_[i].outcome},
                        {"exit_code", results_[i].exit_code}});
    nlohmann::json summary{{"command", command_name(command_.command)},
                           {"summary", true},
                           {"ok", ok},
                           {"targets", members_.size()},
                           {"outcomes", counts},
                           {"duration_ms", took.count()},
                           {"slowest", slowest},
                           {"not_ok", failed}};
    const auto text = redact(summary.dump()) + "\n";
    std::fwrite(text.data(), 1, text.size(), stdout);
  } else {
    std::string by;
    for (const auto& [k, n] : counts) by += fmt::format("{}{} {}", by.empty() ? "" : ", ", n, k);
    std::string slow;
    for (const auto i : order)
      slow += fmt::format("{}{} ({})", slow.empty() ? "" : ", ", members_[i].name,
                          format_duration(results_[i].took));
    std::string text =
        fmt::format("fleet {}: {} target(s) in {}: {}\n", command_name(command_.command),
                    members_.size(), format_duration(took), by.empty() ? "none" : by);
    if (!slow.empty()) text += fmt::format("slowest: {}\n", slow);
    if (!ok) {
      std::string names;
      for (const auto i : not_ok)
        names += fmt::format("{}{} ({}, exit {})", names.empty() ? "" : ", ", members_[i].name,
                             results_[i].outcome, results_[i].exit_code);
      text += fmt::format("not ok: {}\n", names);
    }
    text = redact(text);
    std::fwrite(text.data(), 1, text.size(), stdout);
  }
  std::fflush(stdout);
}

int Fleet::run() {
  // Everything that can be wrong with the command line or the set, before any target runs.
  Shard shard;
  if (!fleet_.shard.empty()) {
    const char* index = std::getenv("JOB_COMPLETION_INDEX");
    shard = parse_shard("--shard", fleet_.shard,
                        index ? std::optional<std::string_view>(index) : std::nullopt);
  }
  if (command_.command == FleetCommand::kMigrateTo) {
    const auto parsed = Version::parse(command_.migrate_to.version);
    if (!parsed)
      throw UsageError(fmt::format(
          "migrate-to: invalid version {} (expected a migration version, or 0 for none)",
          printable(command_.migrate_to.version, 40)));
    target_version_ = *parsed;
  }
  source_ = &ctx_.source();
  if (command_.command == FleetCommand::kValidate)
    expectation_ =
        expectation_for(source_->migrations, source_->releases, command_.validate.release);

  if (!fleet_.targets_file.empty()) {
    for (auto& t : parse_targets(fleet_.targets_file, read_file(fleet_.targets_file)))
      members_.push_back(Member{std::move(t.name), std::move(t.url), ""});
  } else {
    members_ = list_tenants(ctx_, fleet_);
  }
  const auto total = members_.size();
  if (total == 0)
    spdlog::warn("fleet {}: no targets: {} matched nothing", command_name(command_.command),
                 fleet_.tenant_schemas.empty() ? "--tenant-query" : "--tenant-schemas");
  if (shard.count > 1)
    members_ =
        select_shard(members_, shard, [](const Member& m) -> const std::string& { return m.name; });
  spdlog::info(
      "fleet {}: {} target(s){}, {} at a time", command_name(command_.command), members_.size(),
      shard.count > 1 ? fmt::format(" (shard {}/{} of {})", shard.index, shard.count, total) : "",
      fleet_.parallel);

  watch_fleet_signals(&ctx_.stop);
  results_.assign(members_.size(), Result{});
  std::atomic<std::size_t> next{0};
  const auto start = Clock::now();
  const auto worker = [&] {
    while (true) {
      const auto i = next.fetch_add(1);
      if (i >= members_.size()) return;
      if (ctx_.stop.load() || (fleet_.fail_fast && failed_.load())) continue;  // stays not-run
      results_[i] = run_one(members_[i]);
      if (!results_[i].ok) failed_.store(true);
      print_result(members_[i], results_[i]);
    }
  };
  const auto n = std::min<std::size_t>(static_cast<std::size_t>(fleet_.parallel), members_.size());
  std::vector<std::thread> threads;
  threads.reserve(n);
  for (std::size_t i = 0; i < n; ++i) threads.emplace_back(worker);
  for (auto& t : threads) t.join();
  const auto took = std::chrono::duration_cast<milliseconds>(Clock::now() - start);
  // Targets never started (--fail-fast, a signal) get a line too: they are part of the answer.
  for (std::size_t i = 0; i < members_.size(); ++i)
    if (results_[i].outcome == "not-run") {
      results_[i].exit_code =
          static_cast<int>(ctx_.stop.load() ? ExitCode::kInterrupted : ExitCode::kFleetIncomplete);
      results_[i].detail = ctx_.stop.load() ? "interrupted before it started"
                                            : "not started: an earlier target failed (--fail-fast)";
      print_result(members_[i], results_[i]);
    }
  print_summary(took);
  if (ctx_.stop.load()) return static_cast<int>(ExitCode::kInterrupted);
  for (const auto& r : results_)
    if (!r.ok) return static_cast<int>(ExitCode::kFleetIncomplete);
  return 0;
}

}  // namespace

void check_fleet_options(const FleetOptions& fleet, bool fleet_flags_given, bool fleet_command) {
  const int sources = (fleet.targets_file.empty() ? 0 : 1) +
                      (fleet.tenant_schemas.empty() ? 0 : 1) + (fleet.tenant_query.empty() ? 0 : 1);
  if (sources > 1)
    throw UsageError(
        "--targets, --tenant-schemas and --tenant-query: give one of them (tenants live on the "
        "--database-url database)");
  if (!fleet.requested()) {
    if (fleet_flags_given)
      throw UsageError(
          "--parallel, --fail-fast and --shard apply to a fleet: add --targets FILE, "
          "--tenant-schemas PATTERN or --tenant-query SQL");
    return;
  }
  if (!fleet_command)
    throw UsageError(
        "--targets, --tenant-schemas and --tenant-query work with up, migrate-to, validate and "
        "status");
  if (fleet.parallel < 1 || fleet.parallel > 256)
    throw UsageError(fmt::format("--parallel: {} is out of range (1 to 256)", fleet.parallel));
}

int run_fleet(Context& ctx, const FleetOptions& fleet, const FleetCommandOptions& command) {
  if (command.command == FleetCommand::kValidate && command.validate.wait)
    throw UsageError("validate --wait: not with a fleet (run it per target)");
  if (command.command == FleetCommand::kValidate && !command.validate.fix_script.empty())
    throw UsageError("validate --fix-script: not with a fleet (one script per database)");
  Fleet f(ctx, fleet, command);
  return f.run();
}

}  // namespace stepwise::cli
