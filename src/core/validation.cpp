#include "stepwise/validation.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "stepwise/plan.hpp"
#include "stepwise/text.hpp"

namespace stepwise {

std::string_view to_string(FindingKind k) {
  switch (k) {
    case FindingKind::kNotMigrated:
      return "not-migrated";
    case FindingKind::kBehind:
      return "behind";
    case FindingKind::kAhead:
      return "ahead";
    case FindingKind::kChecksum:
      return "checksum";
    case FindingKind::kFailed:
      return "failed";
    case FindingKind::kUnfinished:
      return "unfinished";
    case FindingKind::kDrift:
      return "drift";
  }
  return "unknown";
}

std::pair<Version, Version> compatible_range(const Releases& releases, const Release& r) {
  Version max = r.schema;
  bool from_r = false;
  for (const auto& s : releases.all()) {
    if (s.name == r.name) from_r = true;
    if (from_r && s.min_schema <= r.schema) max = std::max(max, s.schema);
  }
  return {r.min_schema, max};
}

Expectation expectation_for(const MigrationSet& set, const Releases& releases,
                            const std::optional<std::string>& release) {
  if (!release)
    return {set.latest(), set.latest(), fmt::format("this build (version {})", set.latest())};
  const auto* r = releases.find(*release);
  if (r == nullptr) {
    std::vector<std::string> names;
    for (const auto& x : releases.all()) names.push_back(x.name);
    throw PlanRefused(
        fmt::format("--release {}: not a release in releases.json", printable(*release, 40)),
        names.empty() ? "this build has no releases.json"
                      : fmt::format("known releases: {}", fmt::join(names, ", ")));
  }
  const auto [lo, hi] = compatible_range(releases, *r);
  return {lo, hi, fmt::format("release {} (versions {} to {})", r->name, lo, hi)};
}

Validation evaluate(const MigrationSet& set, const History& history, const Expectation& exp) {
  Validation v;
  v.expectation = exp;
  v.database_version = history.current_version();
  if (!history.log_table_exists()) {
    v.findings.push_back(
        {FindingKind::kNotMigrated, "log table", "present", "missing", "stepwise up"});
    return v;
  }
  for (const auto& [ver, st] : history.versions()) {
    if (!st.latest) continue;
    const auto* m = set.find(ver);
    const auto name = m ? std::string(m->up.file) : fmt::format("version {}", ver);
    if (st.state == State::kUnfinished)
      v.findings.push_back(
          {FindingKind::kUnfinished, name, "finished",
           fmt::format("{} since {}", to_string(st.latest->outcome), st.latest->started_at),
           "stepwise up (resumes it)"});
    else if (st.latest->outcome != Outcome::kSucceeded)
      v.findings.push_back(
          {FindingKind::kFailed, name, "succeeded",
           fmt::format("{}: {}", to_string(st.latest->outcome), first_line(st.latest->error)),
           "fix the migration, then stepwise up"});
  }
  for (const auto& m : set.all()) {
    const auto* st = history.find(m.version);
    if (st && st->state == State::kApplied && !st->applied_checksum.empty() &&
        st->applied_checksum != m.up.checksum)
      v.findings.push_back(
          {FindingKind::kChecksum, std::string(m.up.file),
           st->applied_checksum.substr(0, 12) + " (applied)",
           std::string(m.up.checksum.substr(0, 12)) + " (file)",
           "restore the file as it was applied; put the change in a new migration"});
  }
  // Behind: known migrations up to the expected minimum that are not applied.
  std::vector<std::string> pending;
  for (const auto& m : set.all())
    if (m.version <= exp.min && !history.is_applied(m.version)) pending.emplace_back(m.up.file);
  if (!pending.empty())
    v.findings.push_back({FindingKind::kBehind,
                          fmt::format("database version {}", v.database_version),
                          fmt::format("{} or later", exp.min),
                          fmt::format("{} pending: {}{}", pending.size(), pending.front(),
                                      pending.size() > 1 ? " ..." : ""),
                          "stepwise up"});
  // Ahead: applied versions past what is accepted, or unknown to this build.
  std::vector<std::string> beyond;
  for (const auto& [ver, st] : history.versions())
    if (st.state == State::kApplied && (ver > exp.max || set.find(ver) == nullptr))
      beyond.push_back(ver.to_string());
  if (!beyond.empty())
    v.findings.push_back(
        {FindingKind::kAhead, fmt::format("database version {}", v.database_version),
         fmt::format("at most {}", exp.max), fmt::format("applied: {}", fmt::join(beyond, ", ")),
         "deploy a newer build, or validate with --release matching the database"});
  return v;
}

void add_drift(Validation& v, const std::vector<DriftItem>& items) {
  for (const auto& d : items) {
    const auto what = d.field.empty()
                          ? fmt::format("{} {} {}", d.kind, d.object, d.change)
                          : fmt::format("{} {} {} ({})", d.kind, d.object, d.change, d.field);
    v.findings.push_back({FindingKind::kDrift, what, d.expected, d.actual, d.fix});
    v.drift.push_back(d);
  }
}

ExitCode Validation::exit_code() const {
  const std::pair<FindingKind, ExitCode> order[] = {
      {FindingKind::kFailed, ExitCode::kFailedAttempt},
      {FindingKind::kUnfinished, ExitCode::kFailedAttempt},
      {FindingKind::kChecksum, ExitCode::kChecksumMismatch},
      {FindingKind::kNotMigrated, ExitCode::kBehind},
      {FindingKind::kBehind, ExitCode::kBehind},
      {FindingKind::kAhead, ExitCode::kAhead},
      {FindingKind::kDrift, ExitCode::kDrift}};
  for (const auto& [kind, code] : order)
    if (std::any_of(findings.begin(), findings.end(),
                    [k = kind](const Finding& f) { return f.kind == k; }))
      return code;
  return ExitCode::kOk;
}

bool Validation::worth_waiting() const {
  const auto has = [&](FindingKind k) {
    return std::any_of(findings.begin(), findings.end(),
                       [k](const Finding& f) { return f.kind == k; });
  };
  // Behind, unfinished or not yet migrated: another runner may be at work, and the schema of a
  // half-applied step may look like drift meanwhile. Failures, edited files and a database
  // ahead of this build do not go away by waiting.
  if (has(FindingKind::kFailed) || has(FindingKind::kChecksum) || has(FindingKind::kAhead))
    return false;
  return has(FindingKind::kBehind) || has(FindingKind::kUnfinished) ||
         has(FindingKind::kNotMigrated);
}

}  // namespace stepwise
