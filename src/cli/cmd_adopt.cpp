// `stepwise adopt`: take over a database another tool (or nobody) migrated, by recording its
// history in stepwise's log, after checking the live schema where an expected one exists.
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <ctime>
#include <fstream>
#include <sstream>
#include <thread>

#include "commands.hpp"
#include "stepwise/adopt.hpp"
#include "stepwise/describe.hpp"
#include "stepwise/drift.hpp"
#include "stepwise/text.hpp"

namespace stepwise::cli {
namespace {

std::string iso_utc(long long ms) {
  const auto secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw UsageError(fmt::format("--mapping {}: cannot be read", printable(path, 200)));
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string drift_line(const DriftItem& d) {
  auto what = d.field.empty() ? fmt::format("{} {} {}", d.kind, d.object, d.change)
                              : fmt::format("{} {} {} ({})", d.kind, d.object, d.change, d.field);
  if (!d.expected.empty() || !d.actual.empty())
    what += fmt::format(": expected {}, actual {}", d.expected.empty() ? "-" : d.expected,
                        d.actual.empty() ? "-" : d.actual);
  return what;
}

}  // namespace

int run_adopt(Context& ctx, const AdoptOptions& o) {
  if (o.from.empty() == o.baseline.empty())
    throw UsageError(
        "adopt: say where the history comes from: --from TOOL (golang-migrate, dbmate, goose, "
        "flyway, sqitch, node-pg-migrate, postgrator, graphile-migrate) or --baseline VERSION");
  if (!o.baseline.empty() && (!o.table.empty() || !o.mapping.empty()))
    throw UsageError("adopt: --table and --mapping go with --from, not with --baseline");
  std::optional<Tool> tool;
  TableName table;
  Mapping mapping;
  if (!o.from.empty()) {
    tool = parse_tool(o.from);
    if (!tool)
      throw UsageError(fmt::format(
          "adopt: --from {}: unknown tool (golang-migrate, dbmate, goose, flyway, sqitch, "
          "node-pg-migrate, postgrator, graphile-migrate; a mapping file covers the ids of any of "
          "them)",
          printable(o.from, 40)));
    table = o.table.empty() ? default_history_table(*tool) : parse_table_name("--table", o.table);
    if (!o.mapping.empty()) mapping = parse_mapping(read_file(o.mapping), o.mapping);
  }
  const auto origin = tool ? fmt::format("adopted:{}", to_string(*tool)) : std::string("baseline");
  const auto who = tool ? fmt::format("{} ({})", to_string(*tool), table.display())
                        : fmt::format("--baseline {}", o.baseline);

  const auto& source = ctx.source();
  auto& conn = ctx.connect();
  HistoryStore store(conn, ctx.log_table(), runner_identity());
  const bool dry = ctx.options().dry_run;
  // Under the lock (the one `up` takes), so that an `up` waiting for it re-reads the log and
  // finds the adopted rows; --dry-run reads only and takes nothing.
  ExecutionProfile profile;
  std::optional<HeldLock> held;
  if (!dry) {
    profile = ctx.execution_profile();
    held.emplace(ctx.hold_lock("adopt: "));
  }

  const auto log = store.read(HistoryStore::Detail::kFull);
  const auto plan = tool
                        ? plan_adoption(source.migrations, read_foreign_history(conn, *tool, table),
                                        mapping, log, o.allow_out_of_order)
                        : plan_baseline(source.migrations, o.baseline, log);
  for (const auto& w : plan.warnings) spdlog::warn("{}", w);

  const bool json = ctx.output() == OutputFormat::kJson;
  if (plan.record.empty()) {
    if (held) held->release();
    if (json)
      ctx.print_json({{"command", "adopt"},
                      {"ok", true},
                      {"dry_run", dry},
                      {"origin", origin},
                      {"recorded", nlohmann::json::array()},
                      {"already", plan.already},
                      {"version_after", plan.version_after},
                      {"warnings", plan.warnings}});
    else
      fmt::print(
          "nothing to adopt: {} version(s) of {} already in stepwise's log; database at "
          "version {}\n",
          plan.already.size(), who, plan.version_after);
    std::fflush(stdout);
    return 0;
  }

  // Verify: the live schema against the expected one of the version the database will be at.
  const auto version = plan.version_after;
  std::vector<DriftItem> drift;
  bool verified = false;
  const auto exp = expected_schema_for(source.expected, source.releases, version);
  if (exp.json == nullptr && exp.refuse && !o.skip_verify) {
    if (held) held->release();
    throw PlanRefused(fmt::format("adopt: {}: nothing recorded", exp.why_not),
                      "adopt where an expected schema exists (let the other tool finish the "
                      "release first), or pass --skip-verify to record the adoption unverified");
  }
  if (exp.json == nullptr) {
    spdlog::warn("{}{}", exp.why_not, exp.refuse ? " (--skip-verify)" : "");
  } else {
    DiffOptions diff;
    diff.ignore = o.ignore;
    if (tool) {  // the other tool's own table (or registry) is not part of the application
      diff.ignore.push_back(table.display());
      if (*tool == Tool::kSqitch || *tool == Tool::kGraphileMigrate) {
        diff.ignore.push_back(table.schema);
        diff.ignore.push_back(table.schema + ".*");
      }
    }
    const auto expected = parse_schema_json(*exp.json, fmt::format("expected/{}.json", version));
    drift = diff_schemas(expected, ctx.describe(conn, ctx.describe_options(o.schemas)), diff);
    verified = true;
  }
  if (!drift.empty() && !o.accept_drift) {
    if (held) held->release();
    if (json) {
      nlohmann::json items = nlohmann::json::array();
      for (const auto& d : drift)
        items.push_back({{"object", d.object},
                         {"kind", d.kind},
                         {"change", d.change},
                         {"field", d.field},
                         {"expected", d.expected},
                         {"actual", d.actual},
                         {"fix", d.fix}});
      ctx.print_json({{"command", "adopt"},
                      {"ok", false},
                      {"exit_code", static_cast<int>(ExitCode::kDrift)},
                      {"drift", items}});
    } else {
      for (const auto& d : drift) {
        fmt::print("drift\t{}\n", drift_line(d));
        if (!d.fix.empty()) fmt::print("  fix: {}\n", d.fix);
      }
      std::fflush(stdout);
    }
    throw Error(ExitCode::kDrift,
                fmt::format("adopt: the live schema differs from the expected schema of version {} "
                            "in {} place(s): nothing recorded",
                            version, drift.size()),
                "make the schema match (the fixes above), --ignore objects the application does "
                "not own, or pass --accept-drift to record the adoption with the findings");
  }

  std::string drift_note;
  for (const auto& d : drift) drift_note += (drift_note.empty() ? "" : "; ") + drift_line(d);
  if (drift_note.size() > 6000) drift_note = drift_note.substr(0, 6000) + " ...";
  std::vector<AdoptedRow> rows;
  for (const auto& s : plan.record) {
    auto note = tool ? fmt::format("adopted from {} entry {}", who, s.entry)
                     : fmt::format("recorded by stepwise adopt {}", who);
    if (!drift_note.empty())
      note += fmt::format("; accepted drift at version {}: {}", version, drift_note);
    rows.push_back({s.migration, s.applied_at_ms, std::move(note)});
  }
  if (!dry) {
    (void)store.ensure_table();
    store.record_adopted(rows, origin,
                         profile.fence_steps ? profile.lock->held_check_sql() : std::string());
    store.refresh_summary();  // under the lock: the next no-op reads one row
    if (held) held->release();
  }

  if (json) {
    nlohmann::json rec = nlohmann::json::array();
    for (const auto& s : plan.record) {
      nlohmann::json j{{"version", s.migration->version},
                       {"name", s.migration->name},
                       {"file", s.migration->up.file}};
      if (tool) j["entry"] = s.entry;
      if (s.applied_at_ms) j["applied_at"] = iso_utc(*s.applied_at_ms);
      rec.push_back(std::move(j));
    }
    nlohmann::json items = nlohmann::json::array();
    for (const auto& d : drift) items.push_back(drift_line(d));
    ctx.print_json({{"command", "adopt"},
                    {"ok", true},
                    {"dry_run", dry},
                    {"origin", origin},
                    {"recorded", rec},
                    {"already", plan.already},
                    {"left_pending", plan.left_pending},
                    {"schema_verified", verified},
                    {"accepted_drift", items},
                    {"version_after", plan.version_after},
                    {"warnings", plan.warnings}});
    return 0;
  }
  for (const auto& s : plan.record)
    fmt::print("{} {}{}\n", dry ? "would adopt" : "adopted", s.migration->up.file,
               s.applied_at_ms ? fmt::format(" (applied {})", iso_utc(*s.applied_at_ms)) : "");
  if (!drift.empty())
    fmt::print("accepted {} drift finding(s), recorded with the adoption\n", drift.size());
  const auto pending = std::count_if(
      source.migrations.all().begin(), source.migrations.all().end(), [&](const Migration& m) {
        return m.version > plan.version_after ||
               std::find(plan.left_pending.begin(), plan.left_pending.end(), m.version) !=
                   plan.left_pending.end();
      });
  fmt::print("{} {} migration(s) from {}{}: database at version {}, {} pending\n",
             dry ? "would record" : "recorded", plan.record.size(), who,
             verified ? ", schema verified" : "", plan.version_after, pending);
  std::fflush(stdout);
  return 0;
}

}  // namespace stepwise::cli
