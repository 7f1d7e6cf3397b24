#include "stepwise/upgrade.hpp"

#include <fmt/format.h>

#include "stepwise/errors.hpp"
#include "stepwise/text.hpp"

namespace stepwise {

std::size_t UpgradePlan::step_count() const {
  std::size_t n = 0;
  for (const auto& s : stages) n += s.versions.size();
  return n;
}

namespace {
std::string release_list(const Releases& releases) {
  std::vector<std::string> items;
  for (const auto& r : releases.all())
    items.push_back(fmt::format("{} (schema {})", r.name, r.schema));
  return fmt::format("{}", fmt::join(items, ", "));
}
}  // namespace

const Release& release_at(const Releases& releases, Version v) {
  if (const auto* r = releases.with_schema(v)) return *r;
  throw PlanRefused(fmt::format("the database is at version {}, which is no release's schema", v),
                    releases.empty()
                        ? "this build has no releases.json"
                        : fmt::format("pass --from with one of: {}", release_list(releases)));
}

UpgradePlan plan_upgrade(const MigrationSet& set, const Releases& releases, const History& history,
                         const Release& from, const std::string& to) {
  const auto* target = releases.find(to);
  if (target == nullptr)
    throw PlanRefused(fmt::format("--to {}: not a release in releases.json", printable(to, 40)),
                      fmt::format("known releases: {}", release_list(releases)));
  if (target->schema < from.schema)
    throw PlanRefused(
        fmt::format("--to {} is older than the starting release {}", target->name, from.name),
        "use migrate-to VERSION to go down");
  UpgradePlan plan{from, *target, {}};
  const Release* previous = &from;
  bool started = false;
  for (const auto& r : releases.all()) {
    if (r.name == from.name) {
      started = true;
      continue;
    }
    if (!started || r.schema > target->schema) continue;
    UpgradeStage stage{r, {}, std::nullopt};
    for (const auto& m : set.all())
      if (m.version > previous->schema && m.version <= r.schema && !history.is_applied(m.version))
        stage.versions.push_back(m.version);
    // The first stage starts where the database is: the starting release is what runs now.
    if (r.min_schema > previous->schema && previous != &from) stage.stop_before = previous->name;
    plan.stages.push_back(std::move(stage));
    previous = &r;
  }
  return plan;
}

}  // namespace stepwise
