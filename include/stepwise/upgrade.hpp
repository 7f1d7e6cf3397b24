#pragma once
// Multi-release upgrade planning: which releases an upgrade passes through, their migrations,
// and where it must stop so that old and new code never share a schema they cannot both use.
// Pure: releases + migration set + history in, plan out.
#include <optional>
#include <string>
#include <vector>

#include "stepwise/history.hpp"
#include "stepwise/releases.hpp"

namespace stepwise {

struct UpgradeStage {
  Release release;                // the release this stage reaches
  std::vector<Version> versions;  // its migrations still to apply, in order
  // Set when the stage may not start before `stop_before` is rolled out everywhere: this
  // release's code needs a schema (min_schema) newer than the previous release's, so the
  // previous release must be the oldest code still running.
  std::optional<std::string> stop_before;
};

struct UpgradePlan {
  Release from;
  Release to;
  std::vector<UpgradeStage> stages;
  [[nodiscard]] std::size_t step_count() const;
};

// The release whose schema equals the database's version. Throws PlanRefused listing the
// releases when none does.
[[nodiscard]] const Release& release_at(const Releases& releases, Version database_version);

// Throws PlanRefused when `to` is unknown or older than `from`.
[[nodiscard]] UpgradePlan plan_upgrade(const MigrationSet& set, const Releases& releases,
                                       const History& history, const Release& from,
                                       const std::string& to);

}  // namespace stepwise
