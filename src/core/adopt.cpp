#include "stepwise/adopt.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "stepwise/errors.hpp"
#include "stepwise/text.hpp"

namespace stepwise {
namespace {

constexpr std::size_t kListed = 10;  // names listed in one refusal line

// As it is when it is plainly a name or version; quoted and escaped otherwise.
std::string shown(std::string_view s) {
  const bool plain = !s.empty() && s.size() <= 120 && std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           std::string_view("._-:/+() ").find(c) != std::string_view::npos;
  });
  return plain ? std::string(s) : printable(s, 80);
}

std::string list(const std::vector<std::string>& items) {
  std::string out;
  for (std::size_t i = 0; i < items.size() && i < kListed; ++i)
    out += (i ? ", " : "") + shown(items[i]);
  if (items.size() > kListed) out += fmt::format(" and {} more", items.size() - kListed);
  return out;
}

std::string trim_blank(std::string_view s) {
  const auto b = s.find_first_not_of(" \t\r");
  if (b == std::string_view::npos) return {};
  const auto e = s.find_last_not_of(" \t\r");
  return std::string(s.substr(b, e - b + 1));
}

struct Resolved {
  const Migration* migration = nullptr;
  std::optional<long long> applied_at_ms;
  std::string entry;
};

// The files a name matches (sqitch change names, node-pg-migrate names without a number).
std::vector<const Migration*> by_name(const MigrationSet& set, std::string_view name) {
  std::vector<const Migration*> out;
  for (const auto& m : set.all())
    if (m.name == name) out.push_back(&m);
  return out;
}

// The file one entry of the other tool's history stands for; null when none. Throws
// PlanRefused for a name two files share, or a mapping to a version the set does not have.
const Migration* resolve(const MigrationSet& set, Tool tool, const ForeignEntry& e,
                         const Mapping& mapping, bool* skipped) {
  *skipped = false;
  if (const auto it = mapping.find(e.id); it != mapping.end()) {
    if (!it->second) {
      *skipped = true;
      return nullptr;
    }
    const auto* m = set.find(*it->second);
    if (m == nullptr)
      throw PlanRefused(
          fmt::format("the mapping file maps {} to version {}, which is not a "
                      "migration of this set",
                      shown(e.id), *it->second));
    return m;
  }
  const auto unique_name = [&](std::string_view name) -> const Migration* {
    const auto found = by_name(set, name);
    if (found.size() > 1)
      throw PlanRefused(fmt::format(
          "{} entry {} matches {} files by name ({} and {}): say which in a "
          "--mapping file",
          to_string(tool), shown(e.id), found.size(), found[0]->up.file, found[1]->up.file));
    return found.empty() ? nullptr : found.front();
  };
  switch (tool) {
    case Tool::kSqitch:
      return unique_name(e.id);
    case Tool::kNodePgMigrate: {
      // "1700000000000_create-users": the number is the version; without one, the name.
      const auto us = e.id.find('_');
      if (us != std::string::npos && us > 0)
        if (const auto v = Version::parse(std::string_view(e.id).substr(0, us)))
          return set.find(*v);
      if (const auto v = Version::parse(e.id)) return set.find(*v);
      return unique_name(e.id);
    }
    case Tool::kGraphileMigrate: {
      // "000001.sql": graphile-migrate's number (without a message slug) is the version.
      std::string_view id = e.id;
      if (id.ends_with(".sql")) id.remove_suffix(4);
      if (const auto v = Version::parse(id)) return set.find(*v);
      return nullptr;
    }
    default:
      if (const auto v = Version::parse(e.id)) return set.find(*v);
      return nullptr;
  }
}

// The part every adoption shares: stepwise's own log against what is to be recorded.
AdoptPlan finish(const MigrationSet& set, const std::map<Version, Resolved>& applied,
                 const History& log, bool allow_gaps, std::string_view who) {
  AdoptPlan plan;
  std::vector<std::string> failed, rolled_back;
  for (const auto& [v, r] : applied) {
    const auto* st = log.find(v);
    if (st != nullptr && st->state == State::kApplied) {
      plan.already.push_back(v);
      continue;
    }
    if (st != nullptr && (st->state == State::kFailed || st->state == State::kUnfinished))
      failed.push_back(fmt::format("{} ({})", r.migration->up.file, to_string(st->state)));
    else if (st != nullptr)
      rolled_back.emplace_back(r.migration->up.file);
    plan.record.push_back({r.migration, r.applied_at_ms, r.entry});
  }
  if (!failed.empty())
    throw PlanRefused(
        fmt::format("stepwise's log has a failed or unfinished attempt of {}, which {} records as "
                    "applied: not adopting over it",
                    list(failed), who),
        "find out what the failed attempt left behind; `stepwise up` retries it, `stepwise "
        "repair` records a decision");
  if (!rolled_back.empty())
    throw PlanRefused(
        fmt::format("stepwise's log says {} was rolled back, but {} records it as "
                    "applied: the two histories disagree",
                    list(rolled_back), who));
  if (plan.record.empty()) {
    plan.version_after = log.current_version();
    return plan;
  }
  const auto newest = plan.record.back().migration->version;
  // Versions stepwise applied itself that the other history skips, below what it adds now.
  std::vector<std::string> disagree;
  for (const auto& [v, st] : log.versions())
    if (st.state == State::kApplied && v < newest && applied.count(v) == 0)
      disagree.push_back(v.to_string());
  if (!disagree.empty() && !allow_gaps)
    throw PlanRefused(
        fmt::format("stepwise's log has version(s) {} applied, which {} never applied, older "
                    "than its newest entry {}: the two histories disagree",
                    list(disagree), who, newest),
        "check which history is right; --allow-out-of-order records the adoption anyway");
  std::vector<std::string> gaps;
  for (const auto& m : set.all()) {
    if (m.version >= newest) break;
    if (applied.count(m.version) != 0 || log.is_applied(m.version)) continue;
    gaps.emplace_back(m.up.file);
    plan.left_pending.push_back(m.version);
  }
  if (!gaps.empty() && !allow_gaps)
    throw PlanRefused(
        fmt::format("{} never applied {}, older than its newest entry {}: not adopting a history "
                    "with gaps",
                    who, list(gaps), newest),
        "if the files are not in the database, pass --allow-out-of-order: they stay pending "
        "and `stepwise up --allow-out-of-order` applies them; if they are, map them in a "
        "--mapping file or use --baseline");
  plan.version_after = std::max(newest, log.current_version());
  return plan;
}

}  // namespace

std::string_view to_string(Tool t) {
  switch (t) {
    case Tool::kGolangMigrate:
      return "golang-migrate";
    case Tool::kDbmate:
      return "dbmate";
    case Tool::kGoose:
      return "goose";
    case Tool::kFlyway:
      return "flyway";
    case Tool::kSqitch:
      return "sqitch";
    case Tool::kNodePgMigrate:
      return "node-pg-migrate";
    case Tool::kPostgrator:
      return "postgrator";
    case Tool::kGraphileMigrate:
      return "graphile-migrate";
  }
  return "unknown";
}

std::optional<Tool> parse_tool(std::string_view name) {
  if (name == "migrate") return Tool::kGolangMigrate;
  for (auto t : {Tool::kGolangMigrate, Tool::kDbmate, Tool::kGoose, Tool::kFlyway, Tool::kSqitch,
                 Tool::kNodePgMigrate, Tool::kPostgrator, Tool::kGraphileMigrate})
    if (to_string(t) == name) return t;
  return std::nullopt;
}

TableName default_history_table(Tool t) {
  switch (t) {
    case Tool::kGolangMigrate:
    case Tool::kDbmate:
      return {"public", "schema_migrations"};
    case Tool::kGoose:
      return {"public", "goose_db_version"};
    case Tool::kFlyway:
      return {"public", "flyway_schema_history"};
    case Tool::kSqitch:
      return {"sqitch", "changes"};
    case Tool::kNodePgMigrate:
      return {"public", "pgmigrations"};
    case Tool::kPostgrator:
      return {"public", "schemaversion"};
    case Tool::kGraphileMigrate:
      return {"graphile_migrate", "migrations"};
  }
  return {"public", "schema_migrations"};
}

Mapping parse_mapping(std::string_view text, std::string_view file) {
  Mapping out;
  int line_no = 0;
  std::size_t start = 0;
  while (start <= text.size()) {
    const auto nl = text.find('\n', start);
    const auto line =
        trim_blank(text.substr(start, nl == std::string_view::npos ? nl : nl - start));
    ++line_no;
    start = nl == std::string_view::npos ? text.size() + 1 : nl + 1;
    if (line.empty() || line.front() == '#') continue;
    const auto eq = line.rfind('=');
    const auto where = fmt::format("{}:{}", printable(file, 200), line_no);
    if (eq == std::string::npos)
      throw UsageError(fmt::format("{}: expected other-id=stepwise-version, got {}", where,
                                   printable(line, 80)));
    const auto id = trim_blank(std::string_view(line).substr(0, eq));
    const auto value = trim_blank(std::string_view(line).substr(eq + 1));
    if (id.empty()) throw UsageError(fmt::format("{}: the other tool's id is empty", where));
    std::optional<Version> v;
    if (value != "-") {
      v = Version::parse(value);
      if (!v)
        throw UsageError(fmt::format("{}: {} is not a stepwise version (digits) nor -", where,
                                     printable(value, 40)));
    }
    if (!out.emplace(id, v).second)
      throw UsageError(fmt::format("{}: {} is mapped twice", where, printable(id, 80)));
  }
  return out;
}

AdoptPlan plan_adoption(const MigrationSet& set, const ForeignHistory& foreign,
                        const Mapping& mapping, const History& log, bool allow_gaps) {
  const auto who = fmt::format("{} ({})", to_string(foreign.tool), foreign.table.display());
  std::vector<std::string> bad;
  for (const auto& e : foreign.applied)
    if (!e.problem.empty()) bad.push_back(fmt::format("{} is {}", e.id, e.problem));
  if (!bad.empty())
    throw PlanRefused(
        fmt::format("{}: {}: not adopting a history with a dirty or failed entry", who, list(bad)),
        fmt::format("finish or repair it with {} first (or by hand), then adopt",
                    to_string(foreign.tool)));
  std::map<Version, Resolved> applied;
  std::vector<std::string> unmapped;
  std::vector<std::string> warnings = foreign.warnings;
  std::optional<Resolved> up_to;
  for (const auto& e : foreign.applied) {
    bool skipped = false;
    const auto* m = resolve(set, foreign.tool, e, mapping, &skipped);
    if (skipped) {
      warnings.push_back(
          fmt::format("{} entry {}: left out (mapped to -)", to_string(foreign.tool), shown(e.id)));
      continue;
    }
    if (m == nullptr) {
      unmapped.push_back(e.id);
      continue;
    }
    Resolved r{m, e.applied_at_ms, e.id};
    if (const auto [it, fresh] = applied.emplace(m->version, r); !fresh && it->second.entry != e.id)
      throw PlanRefused(fmt::format("{}: entries {} and {} both map to {}", who,
                                    shown(it->second.entry), shown(e.id), m->up.file));
    if (e.up_to && (!up_to || up_to->migration->version < m->version)) up_to = r;
  }
  if (!unmapped.empty())
    throw PlanRefused(
        fmt::format("{}: {} entr{} match no file of this set: {}", who, unmapped.size(),
                    unmapped.size() == 1 ? "y" : "ies", list(unmapped)),
        "give a --mapping FILE with other-id=stepwise-version lines (other-id=- leaves an entry "
        "out), or import the missing files");
  if (up_to) {
    for (const auto& m : set.all()) {
      if (m.version > up_to->migration->version) break;
      if (applied.count(m.version) == 0)
        applied.emplace(m.version, Resolved{&m, std::nullopt, up_to->entry + " (and before)"});
    }
  }
  auto plan = finish(set, applied, log, allow_gaps, who);
  plan.warnings.insert(plan.warnings.begin(), warnings.begin(), warnings.end());
  return plan;
}

AdoptPlan plan_baseline(const MigrationSet& set, std::string_view version, const History& log) {
  const auto v = Version::parse(version);
  const auto* target = v ? set.find(*v) : nullptr;
  if (target == nullptr)
    throw PlanRefused(
        fmt::format("--baseline {}: not a migration version of this set (its "
                    "versions run from {} to {})",
                    shown(version), set.empty() ? Version() : set.all().front().version,
                    set.latest()),
        "run `stepwise status` for the versions");
  std::map<Version, Resolved> applied;
  for (const auto& m : set.all()) {
    if (m.version > target->version) break;
    applied.emplace(m.version, Resolved{&m, std::nullopt, ""});
  }
  return finish(set, applied, log, false, fmt::format("--baseline {}", target->version));
}

ExpectedFor expected_schema_for(const std::map<Version, std::string>& expected,
                                const Releases& releases, const Version& version) {
  ExpectedFor out;
  const auto* release = releases.with_schema(version);
  if (release != nullptr) out.release = release->name;
  if (const auto it = expected.find(version); it != expected.end()) {
    out.json = &it->second;
    return out;
  }
  if (expected.empty()) {
    out.why_not = fmt::format(
        "no expected schema recorded for version {}: the live schema is not verified", version);
    return out;
  }
  out.refuse = true;
  if (release != nullptr) {
    out.why_not = fmt::format(
        "version {} is the schema of release {}, but the set has no expected/{}.json for it: "
        "the live schema cannot be verified",
        version, release->name, version);
    return out;
  }
  // Between two release schemas (or past the newest): neither neighbour's schema is the one a
  // database at `version` has, so none applies.
  const Release* before = nullptr;
  const Release* after = nullptr;
  for (const auto& r : releases.all()) {
    if (r.schema < version && (before == nullptr || before->schema < r.schema)) before = &r;
    if (version < r.schema && (after == nullptr || r.schema < after->schema)) after = &r;
  }
  std::string where;
  if (before != nullptr && after != nullptr)
    where = fmt::format(" lies between release {} (schema {}) and release {} (schema {})",
                        before->name, before->schema, after->name, after->schema);
  else if (after != nullptr)
    where = fmt::format(" lies before release {} (schema {})", after->name, after->schema);
  else if (before != nullptr)
    where =
        fmt::format(" lies after the newest release {} (schema {})", before->name, before->schema);
  std::string have;
  std::size_t n = 0;
  for (const auto& [v, text] : expected) {
    if (n++ == kListed) {
      have += ", ...";
      break;
    }
    have += (have.empty() ? "" : ", ") + v.to_string();
  }
  out.why_not = fmt::format(
      "version {}{}: no expected schema applies to it (the set has them for {}), so the live "
      "schema cannot be verified",
      version, where, have);
  return out;
}

}  // namespace stepwise
