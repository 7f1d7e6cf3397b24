#pragma once
// validate: is the database exactly where this build expects it? Pure evaluation of the
// attempt history against the migration set and releases; drift findings are added from the
// differ. The exit code is decided here, in one place.
#include <optional>
#include <string>
#include <vector>

#include "stepwise/drift.hpp"
#include "stepwise/errors.hpp"
#include "stepwise/history.hpp"
#include "stepwise/releases.hpp"

namespace stepwise {

enum class FindingKind {
  kNotMigrated,  // no log table
  kBehind,       // pending migrations up to the expected version
  kAhead,        // applied versions this build (or release) does not expect
  kChecksum,     // an applied migration's file changed
  kFailed,       // the latest attempt of a version failed / was interrupted or abandoned
  kUnfinished,   // the latest attempt of a version is still running (or its runner died)
  kDrift,        // live schema differs from the expected description
};
[[nodiscard]] std::string_view to_string(FindingKind k);

struct Finding {
  FindingKind kind;
  std::string object;  // file, version or schema object
  std::string expected;
  std::string actual;
  std::string fix;  // suggested SQL or command
  bool operator==(const Finding&) const = default;
};

struct Expectation {
  Version min = 0;    // the oldest database version accepted
  Version max = 0;    // the newest
  std::string label;  // "this build (20240315100000)" or "release 1.1.0 (...)"
};

// What this build accepts: exactly its latest version; with a release, that release's
// compatibility range (see compatible_range). Throws PlanRefused for an unknown release name.
[[nodiscard]] Expectation expectation_for(const MigrationSet& set, const Releases& releases,
                                          const std::optional<std::string>& release);

// Schema versions release `r`'s code runs against: [r.min_schema, S.schema] where S is the
// newest release from r on whose min_schema <= r.schema (S's migrations keep r's code working).
[[nodiscard]] std::pair<Version, Version> compatible_range(const Releases& releases,
                                                           const Release& r);

struct Validation {
  Version database_version = 0;
  Expectation expectation;
  std::vector<Finding> findings;
  std::vector<std::string> notes;  // informational, e.g. "no expected schema for version X"
  // The drift findings as the differ gave them (same order as the drift findings above): their
  // hazards, and the fix script for all of them (fix_script.hpp).
  std::vector<DriftItem> drift;
  [[nodiscard]] bool ok() const noexcept { return findings.empty(); }
  // Priority when several kinds are found: failed > unfinished > checksum > not migrated >
  // behind > ahead > drift.
  [[nodiscard]] ExitCode exit_code() const;
  // True when waiting may help (another runner is migrating): behind, unfinished or not
  // migrated, and no failure, checksum mismatch or ahead (drift alongside does not count).
  [[nodiscard]] bool worth_waiting() const;
};

[[nodiscard]] Validation evaluate(const MigrationSet& set, const History& history,
                                  const Expectation& expectation);
void add_drift(Validation& v, const std::vector<DriftItem>& items);

}  // namespace stepwise
