#pragma once
// The migration author's lint: every statement of every file parsed with PostgreSQL's own
// grammar (libpg_query, PostgreSQL 15), checked against rules for what hurts a live system,
// with a catalog built from the set itself. Pure: no I/O, no database.
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "stepwise/migration.hpp"
#include "stepwise/releases.hpp"

namespace stepwise {

enum class Severity { kError, kWarning };
[[nodiscard]] std::string_view to_string(Severity s);

struct CheckFinding {
  std::string file;  // base name of the migration file
  int line = 1;      // 1-based
  int col = 1;       // 1-based, in characters
  Severity severity = Severity::kError;
  std::string rule;
  std::string message;
  bool operator==(const CheckFinding&) const = default;
};

struct LintRule {
  std::string_view name;
  Severity severity;
  std::string_view summary;
};
// Every rule, in the order documented in docs/commands/check.md.
[[nodiscard]] const std::vector<LintRule>& lint_rules();

// Lints every up and down file of the set, in version order. A table (with its indexes and
// columns) is new, and nothing about locking or rewriting it is reported, when the set creates
// it in the same file or in an earlier file that no release boundary separates from this one
// (releases.json: a release ships the files up to its schema; with no releases, the whole set
// is one unreleased batch). Suppression: a comment line `-- stepwise:allow RULE[,RULE] because
// REASON` in the comments before a statement; a suppression without a reason or naming an
// unknown rule is itself an error, one that suppresses nothing a warning.
// Findings are ordered by file (version order, up before down), then line and column.
// `expected`: the expected schema of each release (version -> description JSON, as
// Source::expected); with it, rule compat-drop: a DROP or RENAME of a table or column at version
// v is an error while an older release whose expected schema has the object still runs against
// v (its compatibility range, as validate --release computes it, reaches v).
[[nodiscard]] std::vector<CheckFinding> lint_migrations(
    const MigrationSet& set, const Releases& releases = {},
    const std::map<Version, std::string>& expected = {});

// Drops the findings (of the database checks: measured-lock, measured-rewrite) that a
// `-- stepwise:allow` before the statement starting at their line suppresses.
[[nodiscard]] std::vector<CheckFinding> apply_suppressions(const MigrationSet& set,
                                                           std::vector<CheckFinding> findings);

// "file:line:col: severity rule: message".
[[nodiscard]] std::string format_finding(const CheckFinding& f);

// A folder's allow list (check-allow.txt beside the migrations): `FILE RULE[,RULE] because REASON`
// per line, `#` comments. It suppresses a finding without editing a shipped file, whose
// checksum the databases already migrated have recorded. Bad lines throw SourceError naming
// origin:line.
struct AllowEntry {
  std::string file;
  std::string rule;
  int line = 0;  // in the allow list
};
[[nodiscard]] std::vector<AllowEntry> parse_allow_list(std::string_view text,
                                                       std::string_view origin);
// The findings the list does not cover, plus an unused-suppression warning (file: origin) for
// each entry that covers none (entries for the database checks only when those ran).
[[nodiscard]] std::vector<CheckFinding> apply_allow_list(std::vector<CheckFinding> findings,
                                                         const std::vector<AllowEntry>& allow,
                                                         std::string_view origin,
                                                         bool database_checks_ran);

}  // namespace stepwise
