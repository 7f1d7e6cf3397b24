#include "stepwise/plan.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "stepwise/errors.hpp"

namespace stepwise {
namespace {

std::string version_list(const std::vector<Version>& vs, std::size_t max = 5) {
  std::string out;
  for (std::size_t i = 0; i < vs.size() && i < max; ++i) out += (i ? ", " : "") + vs[i].to_string();
  if (vs.size() > max) out += fmt::format(" and {} more", vs.size() - max);
  return out;
}

// The down file a migration would have: its up file's name as written (leading zeros kept).
std::string down_file_name(const Migration& m) {
  constexpr std::string_view kUp = ".up.sql";
  const auto& up = m.up.file;
  return std::string(up.ends_with(kUp) ? up.substr(0, up.size() - kUp.size()) : up) + ".down.sql";
}

Step up_step(const Migration& m, const History& history) {
  Step step{&m, Direction::kUp, 0, std::nullopt};
  const auto* st = history.find(m.version);
  if (st && st->latest && (st->state == State::kFailed || st->state == State::kUnfinished)) {
    step.retries = st->latest;
    // Resume a no-transaction step after its confirmed statements, but only when the file is
    // the one that ran: an edited file starts over (its statements must be idempotent).
    if (m.up.tx == TxMode::kNoTransaction && st->latest->direction == Direction::kUp &&
        st->latest->checksum == m.up.checksum)
      step.resume_from = st->latest->statements_done;
  }
  return step;
}

}  // namespace

std::vector<std::string> checksum_mismatches(const MigrationSet& set, const History& history) {
  std::vector<std::string> out;
  for (const auto& m : set.all()) {
    const auto* st = history.find(m.version);
    if (st && st->state == State::kApplied && !st->applied_checksum.empty() &&
        st->applied_checksum != m.up.checksum)
      out.push_back(fmt::format("{}: applied with checksum {}, file now has {}", m.up.file,
                                st->applied_checksum.substr(0, 12), m.up.checksum.substr(0, 12)));
  }
  return out;
}

Plan make_plan(const MigrationSet& set, const History& history, const Target& target,
               const PlanPolicy& policy) {
  Plan plan;
  plan.from = history.current_version();

  std::vector<Version> unknown;  // applied, but no file in this build
  for (const auto& [v, st] : history.versions())
    if (st.state == State::kApplied && set.find(v) == nullptr) unknown.push_back(v);

  Version goal = set.latest();
  if (target.kind == Target::Kind::kVersion) {
    goal = target.version;
    if (!goal.is_zero() && set.find(goal) == nullptr)
      throw PlanRefused(fmt::format("target version {} is not a known migration", goal),
                        set.empty() ? "the migration set is empty"
                                    : fmt::format("known versions run from {} to {}",
                                                  set.all().front().version, set.latest()));
  }

  std::vector<Version> pending;
  for (const auto& m : set.all())
    if (m.version <= goal && !history.is_applied(m.version)) pending.push_back(m.version);

  // Down part (only for an explicit target below applied versions), newest first.
  std::vector<Version> to_undo;
  // An unfinished down (a no-transaction down that was interrupted) is finished by going down.
  for (auto it = history.versions().rbegin(); it != history.versions().rend(); ++it) {
    const auto& st = it->second;
    const bool half_down = st.state == State::kUnfinished && st.applied && st.latest &&
                           st.latest->direction == Direction::kDown;
    if ((st.state == State::kApplied || half_down) && it->first > goal)
      to_undo.push_back(it->first);
  }

  if (target.kind == Target::Kind::kLatest) {
    if (!unknown.empty()) {
      plan.ahead = true;
      if (pending.empty()) {
        plan.warnings.push_back(fmt::format(
            "the database is ahead of this build: applied version(s) {} are not in its migration "
            "set; nothing applied",
            version_list(unknown)));
        plan.to = plan.from;
        return plan;
      }
      throw PlanRefused(
          fmt::format("the database has applied version(s) {} that this build does not know, and "
                      "this build has pending version(s) {}; refusing to apply on top",
                      version_list(unknown), version_list(pending)),
          "deploy a build whose migrations include every applied version");
    }
    to_undo.clear();
  } else {
    std::vector<std::string> missing;
    for (auto v : to_undo) {
      const auto* m = set.find(v);
      if (m == nullptr)
        missing.push_back(fmt::format("version {} (applied, but not in this build)", v));
      else if (!m->down)
        missing.push_back(down_file_name(*m));
    }
    if (!missing.empty())
      throw PlanRefused(fmt::format("cannot go down to version {}: no down file for {}", goal,
                                    fmt::join(missing, ", ")),
                        "write the missing down files, or choose a later target version");
  }

  if (!policy.allow_out_of_order && !pending.empty()) {
    Version newest_kept;  // newest version still applied once the down part has run
    for (const auto& [v, st] : history.versions())
      if (st.state == State::kApplied && v <= goal) newest_kept = std::max(newest_kept, v);
    std::vector<std::string> late;
    for (auto v : pending)
      if (v < newest_kept) late.emplace_back(set.find(v)->up.file);
    if (!late.empty())
      throw PlanRefused(
          fmt::format("{} {} pending but older than applied version {}; refusing to apply out of "
                      "order",
                      fmt::join(late, ", "), late.size() == 1 ? "is" : "are", newest_kept),
          "rename the file to a newer version, or pass --allow-out-of-order");
  }

  for (auto v : to_undo) {
    Step step{set.find(v), Direction::kDown, 0, std::nullopt};
    const auto* st = history.find(v);
    if (st->state == State::kUnfinished) {
      step.retries = st->latest;
      if (step.script().tx == TxMode::kNoTransaction &&
          st->latest->checksum == step.script().checksum)
        step.resume_from = st->latest->statements_done;
    }
    plan.steps.push_back(step);
  }
  for (auto v : pending) plan.steps.push_back(up_step(*set.find(v), history));

  for (auto& w : checksum_mismatches(set, history)) plan.warnings.push_back(std::move(w));
  plan.to = plan.steps.empty() ? plan.from : goal;
  if (target.kind == Target::Kind::kLatest && plan.steps.empty()) plan.to = plan.from;
  return plan;
}

}  // namespace stepwise
