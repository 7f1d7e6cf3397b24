#pragma once
// The planner: which steps to run, in which order. Pure: files + history in, plan out.
#include <optional>
#include <string>
#include <vector>

#include "stepwise/history.hpp"
#include "stepwise/migration.hpp"

namespace stepwise {

struct Target {
  enum class Kind { kLatest, kVersion };
  Kind kind = Kind::kLatest;
  Version version = 0;  // for kVersion; 0 means "before the first migration"
  static Target latest() { return {}; }
  static Target at(Version v) { return {Kind::kVersion, v}; }
};

struct PlanPolicy {
  bool allow_out_of_order = false;
};

struct Step {
  const Migration* migration = nullptr;
  Direction direction = Direction::kUp;
  // For a no-transaction step retried after an interruption: statements already done.
  int resume_from = 0;
  // The unfinished or failed attempt this step retries, if any.
  std::optional<Attempt> retries;

  [[nodiscard]] const Script& script() const {
    return direction == Direction::kUp ? migration->up : *migration->down;
  }
};

struct Plan {
  std::vector<Step> steps;
  std::vector<std::string> warnings;  // worth a log line; never a reason to fail
  Version from = 0;                   // database version before the plan
  Version to = 0;                     // database version after the plan
  bool ahead = false;                 // database holds versions this build does not know
  [[nodiscard]] bool empty() const noexcept { return steps.empty(); }
};

// Throws PlanRefused (naming files and versions) when the plan cannot be made.
[[nodiscard]] Plan make_plan(const MigrationSet& set, const History& history, const Target& target,
                             const PlanPolicy& policy);

// Applied migrations whose file changed since: "<file>: applied with checksum X, file now Y".
[[nodiscard]] std::vector<std::string> checksum_mismatches(const MigrationSet& set,
                                                           const History& history);

}  // namespace stepwise
