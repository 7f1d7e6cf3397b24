#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <set>

#include "commands.hpp"
#include "stepwise/errors.hpp"
#include "stepwise/history_store.hpp"
#include "stepwise/plan.hpp"
#include "stepwise/text.hpp"

namespace stepwise::cli {

namespace {
struct Line {
  Version version;
  std::string name;
  std::string state;  // applied, pending, failed, unfinished, applied-unknown
  std::string applied_at;
  std::string detail;
  bool checksum_changed = false;
  std::string origin;  // "adopted:<tool>" or "baseline" when `stepwise adopt` recorded it
};

// "adopted from dbmate", "baseline".
std::string origin_text(const std::string& origin) {
  if (origin.starts_with("adopted:")) return "adopted from " + origin.substr(8);
  return origin;
}
}  // namespace

// Read-only: never takes the lock, never creates anything.
int run_status(Context& ctx) {
  const auto& source = ctx.source();
  auto& conn = ctx.connect();
  HistoryStore store(conn, ctx.log_table(), runner_identity());
  const auto history = store.read(HistoryStore::Detail::kFull);

  std::vector<Line> lines;
  for (const auto& m : source.migrations.all()) {
    Line l{m.version, std::string(m.name), "pending", "", "", false, ""};
    if (const auto* st = history.find(m.version)) {
      l.state = std::string(to_string(st->state));
      if (st->state == State::kApplied) {
        l.applied_at = st->applied_at;
        l.origin = st->applied_origin;
        l.checksum_changed = !st->applied_checksum.empty() && st->applied_checksum != m.up.checksum;
      } else if (st->latest && (st->state == State::kFailed || st->state == State::kUnfinished)) {
        l.detail = st->latest->error.empty() ? std::string(to_string(st->latest->outcome))
                                             : first_line(st->latest->error);
      }
    }
    lines.push_back(std::move(l));
  }
  for (const auto& [v, st] : history.versions())
    if (st.state == State::kApplied && source.migrations.find(v) == nullptr)
      lines.push_back(
          {v, st.name, "applied, not in this build", st.applied_at, "", false, st.applied_origin});
  std::sort(lines.begin(), lines.end(),
            [](const Line& a, const Line& b) { return a.version < b.version; });

  std::size_t applied = 0, pending = 0;
  for (const auto& l : lines) {
    if (l.state == "pending") ++pending;
    if (l.state.starts_with("applied")) ++applied;
  }

  if (ctx.output() == OutputFormat::kJson) {
    nlohmann::json ms = nlohmann::json::array();
    for (const auto& l : lines) {
      nlohmann::json j{{"version", l.version}, {"name", l.name}, {"state", l.state}};
      if (!l.applied_at.empty()) j["applied_at"] = l.applied_at;
      if (!l.detail.empty()) j["error"] = l.detail;
      if (l.checksum_changed) j["checksum_changed"] = true;
      if (l.state.starts_with("applied")) j["origin"] = l.origin.empty() ? "stepwise" : l.origin;
      ms.push_back(std::move(j));
    }
    ctx.print_json({{"command", "status"},
                    {"log_table", ctx.log_table().display()},
                    {"log_table_exists", history.log_table_exists()},
                    {"database_version", history.current_version()},
                    {"latest_version", source.migrations.latest()},
                    {"source", source.origin},
                    {"set_digest", source.migrations.digest()},
                    {"migrations", ms}});
  } else {
    for (const auto& l : lines) {
      std::string state = l.state;
      if (!l.applied_at.empty()) state += " " + l.applied_at;
      if (!l.origin.empty()) state += " (" + origin_text(l.origin) + ")";
      if (l.checksum_changed) state += " (file changed since)";
      if (!l.detail.empty()) state += ": " + l.detail;
      fmt::print("{:<20} {:<40} {}\n", l.version, l.name, state);
    }
    fmt::print("database version {}, latest {}: {} applied, {} pending\n",
               history.current_version(), source.migrations.latest(), applied, pending);
    fmt::print("migration set: {}\n", describe_set(source));
    std::fflush(stdout);
  }
  if (!history.log_table_exists())
    throw Error(
        ExitCode::kBehind,
        fmt::format("log table {} does not exist: nothing has been applied to this database",
                    ctx.log_table().display()),
        "run `stepwise up`, or pass the right --log-table");
  return 0;
}

}  // namespace stepwise::cli
