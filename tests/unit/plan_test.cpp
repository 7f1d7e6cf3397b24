#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "stepwise/checksum.hpp"
#include "stepwise/errors.hpp"
#include "stepwise/plan.hpp"

namespace stepwise {
namespace {

constexpr auto kUp = Direction::kUp;
constexpr auto kDown = Direction::kDown;

MigrationFile file(std::string name, std::string bytes) {
  MigrationFile f;
  f.name = std::move(name);
  f.bytes = std::move(bytes);
  return f;
}

// Versions 1, 2, 3 with down files; 4 without; 5 a no-transaction step with three statements.
MigrationSet standard_set() {
  return build_migration_set(std::vector<MigrationFile>{
      file("1_a.up.sql", "CREATE TABLE a (id int);"),
      file("1_a.down.sql", "DROP TABLE a;"),
      file("2_b.up.sql", "CREATE TABLE b (id int);"),
      file("2_b.down.sql", "DROP TABLE b;"),
      file("3_c.up.sql", "CREATE TABLE c (id int);"),
      file("3_c.down.sql", "DROP TABLE c;"),
      file("4_d.up.sql", "CREATE TABLE d (id int);"),
      file("5_e.up.sql",
           "-- stepwise:no-transaction\nCREATE INDEX CONCURRENTLY i1 ON a (id);\n"
           "CREATE INDEX CONCURRENTLY i2 ON b (id);\nCREATE INDEX CONCURRENTLY i3 ON c (id);\n"),
  });
}

// Versions 1..3, all with down files.
MigrationSet small_set() {
  return build_migration_set(std::vector<MigrationFile>{
      file("1_a.up.sql", "CREATE TABLE a (id int);"),
      file("1_a.down.sql", "DROP TABLE a;"),
      file("2_b.up.sql", "CREATE TABLE b (id int);"),
      file("2_b.down.sql", "DROP TABLE b;"),
      file("3_c.up.sql", "CREATE TABLE c (id int);"),
      file("3_c.down.sql", "DROP TABLE c;"),
  });
}

long long g_next_id = 1;

Attempt attempt(const MigrationSet& set, Version v, Direction d, Outcome o, int done = 0,
                std::string checksum = {}) {
  Attempt a;
  a.id = g_next_id++;
  a.version = v;
  a.direction = d;
  a.outcome = o;
  a.statements_done = done;
  if (const auto* m = set.find(v)) {
    a.name = m->name;
    if (checksum.empty()) checksum = d == kUp ? m->up.checksum : m->down->checksum;
  } else {
    a.name = "unknown";
    if (checksum.empty()) checksum = sha256_hex("unknown");
  }
  a.checksum = std::move(checksum);
  return a;
}

History applied(const MigrationSet& set, std::vector<Version> versions) {
  std::vector<Attempt> attempts;
  for (auto v : versions) attempts.push_back(attempt(set, v, kUp, Outcome::kSucceeded));
  return History(std::move(attempts));
}

std::vector<Version> versions_of(const Plan& plan) {
  std::vector<Version> out;
  for (const auto& s : plan.steps) out.push_back(s.migration->version);
  return out;
}

std::string refusal(const MigrationSet& set, const History& h, const Target& t,
                    const PlanPolicy& p = {}) {
  try {
    (void)make_plan(set, h, t, p);
  } catch (const PlanRefused& e) {
    EXPECT_EQ(e.code(), ExitCode::kRefused);
    return e.what();
  }
  ADD_FAILURE() << "make_plan did not refuse";
  return {};
}

bool contains(const std::string& hay, std::string_view needle) {
  return hay.find(needle) != std::string::npos;
}

// ------------------------------------------------------------------ going up

TEST(MakePlan, FreshDatabaseRunsEveryStepInOrder) {
  const auto set = standard_set();
  const auto plan = make_plan(set, History(), Target::latest(), {});
  EXPECT_EQ(versions_of(plan), (std::vector<Version>{1, 2, 3, 4, 5}));
  for (const auto& s : plan.steps) {
    EXPECT_EQ(s.direction, kUp);
    EXPECT_EQ(s.resume_from, 0);
    EXPECT_FALSE(s.retries.has_value());
    EXPECT_EQ(&s.script(), &s.migration->up);
  }
  EXPECT_EQ(plan.from, 0);
  EXPECT_EQ(plan.to, 5);
  EXPECT_FALSE(plan.ahead);
  EXPECT_TRUE(plan.warnings.empty());
  EXPECT_FALSE(plan.empty());
}

TEST(MakePlan, MissingLogTableIsLikeFresh) {
  const auto set = small_set();
  History h;
  h.set_log_table_exists(false);
  EXPECT_EQ(versions_of(make_plan(set, h, Target::latest(), {})), (std::vector<Version>{1, 2, 3}));
}

TEST(MakePlan, PartiallyAppliedRunsTheRest) {
  const auto set = standard_set();
  const auto plan = make_plan(set, applied(set, {1, 2}), Target::latest(), {});
  EXPECT_EQ(versions_of(plan), (std::vector<Version>{3, 4, 5}));
  EXPECT_EQ(plan.from, 2);
  EXPECT_EQ(plan.to, 5);
}

TEST(MakePlan, NothingPendingIsEmpty) {
  const auto set = standard_set();
  const auto plan = make_plan(set, applied(set, {1, 2, 3, 4, 5}), Target::latest(), {});
  EXPECT_TRUE(plan.empty());
  EXPECT_EQ(plan.from, 5);
  EXPECT_EQ(plan.to, 5);
  EXPECT_FALSE(plan.ahead);
  EXPECT_TRUE(plan.warnings.empty());
}

TEST(MakePlan, EmptySetEmptyHistoryIsEmpty) {
  const auto plan = make_plan(MigrationSet(), History(), Target::latest(), {});
  EXPECT_TRUE(plan.empty());
  EXPECT_EQ(plan.from, 0);
  EXPECT_EQ(plan.to, 0);
}

TEST(MakePlan, OutOfOrderRefusedNamingTheFile) {
  const auto set = small_set();
  const auto msg = refusal(set, applied(set, {1, 3}), Target::latest());
  EXPECT_TRUE(contains(msg, "2_b.up.sql")) << msg;
  EXPECT_TRUE(contains(msg, "3")) << msg;
  EXPECT_FALSE(contains(msg, "1_a.up.sql")) << msg;
}

TEST(MakePlan, OutOfOrderRefusalNamesEveryLateFile) {
  const auto set = standard_set();
  const auto msg = refusal(set, applied(set, {1, 4}), Target::latest());
  EXPECT_TRUE(contains(msg, "2_b.up.sql")) << msg;
  EXPECT_TRUE(contains(msg, "3_c.up.sql")) << msg;
  EXPECT_FALSE(contains(msg, "5_e.up.sql")) << msg;
}

TEST(MakePlan, OutOfOrderAllowedByPolicy) {
  const auto set = small_set();
  PlanPolicy p;
  p.allow_out_of_order = true;
  const auto plan = make_plan(set, applied(set, {1, 3}), Target::latest(), p);
  EXPECT_EQ(versions_of(plan), (std::vector<Version>{2}));
  EXPECT_EQ(plan.steps[0].direction, kUp);
  EXPECT_EQ(plan.from, 3);
  EXPECT_EQ(plan.to, 3);
}

TEST(MakePlan, DatabaseAheadWithNothingPendingIsEmptyWithWarning) {
  const auto set = small_set();
  auto attempts = applied(set, {1, 2, 3}).attempts();
  attempts.push_back(attempt(set, 99, kUp, Outcome::kSucceeded));
  const auto plan = make_plan(set, History(attempts), Target::latest(), {});
  EXPECT_TRUE(plan.empty());
  EXPECT_TRUE(plan.ahead);
  ASSERT_EQ(plan.warnings.size(), 1u);
  EXPECT_TRUE(contains(plan.warnings[0], "99")) << plan.warnings[0];
  EXPECT_EQ(plan.from, 99);
  EXPECT_EQ(plan.to, 99);
}

TEST(MakePlan, UnknownAppliedPlusPendingRefused) {
  const auto set = small_set();
  auto attempts = applied(set, {1}).attempts();
  attempts.push_back(attempt(set, 99, kUp, Outcome::kSucceeded));
  const auto msg = refusal(set, History(attempts), Target::latest());
  EXPECT_TRUE(contains(msg, "99")) << msg;
  EXPECT_TRUE(contains(msg, "2")) << msg;
}

TEST(MakePlan, UnknownVersionRolledBackIsNotAhead) {
  const auto set = small_set();
  auto attempts = applied(set, {1, 2, 3}).attempts();
  attempts.push_back(attempt(set, 99, kUp, Outcome::kSucceeded));
  attempts.push_back(attempt(set, 99, kDown, Outcome::kSucceeded));
  const auto plan = make_plan(set, History(attempts), Target::latest(), {});
  EXPECT_TRUE(plan.empty());
  EXPECT_FALSE(plan.ahead);
  EXPECT_TRUE(plan.warnings.empty());
}

TEST(MakePlan, FailedStepIsRetried) {
  const auto set = small_set();
  auto attempts = applied(set, {1}).attempts();
  attempts.push_back(attempt(set, 2, kUp, Outcome::kFailed));
  const auto failed_id = attempts.back().id;
  const auto plan = make_plan(set, History(attempts), Target::latest(), {});
  ASSERT_EQ(versions_of(plan), (std::vector<Version>{2, 3}));
  ASSERT_TRUE(plan.steps[0].retries.has_value());
  EXPECT_EQ(plan.steps[0].retries->id, failed_id);
  EXPECT_EQ(plan.steps[0].retries->outcome, Outcome::kFailed);
  EXPECT_EQ(plan.steps[0].resume_from, 0);  // transactional: always from the start
  EXPECT_FALSE(plan.steps[1].retries.has_value());
}

TEST(MakePlan, InterruptedAndAbandonedStepsAreRetried) {
  const auto set = small_set();
  for (auto outcome : {Outcome::kInterrupted, Outcome::kAbandoned}) {
    const History h({attempt(set, 1, kUp, outcome)});
    const auto plan = make_plan(set, h, Target::latest(), {});
    ASSERT_EQ(versions_of(plan), (std::vector<Version>{1, 2, 3})) << to_string(outcome);
    ASSERT_TRUE(plan.steps[0].retries.has_value());
    EXPECT_EQ(plan.steps[0].retries->outcome, outcome);
  }
}

TEST(MakePlan, RunningNoTransactionStepResumesWhenChecksumMatches) {
  const auto set = standard_set();
  auto attempts = applied(set, {1, 2, 3, 4}).attempts();
  attempts.push_back(attempt(set, 5, kUp, Outcome::kRunning, 2));
  const auto plan = make_plan(set, History(attempts), Target::latest(), {});
  ASSERT_EQ(versions_of(plan), (std::vector<Version>{5}));
  EXPECT_EQ(plan.steps[0].resume_from, 2);
  ASSERT_TRUE(plan.steps[0].retries.has_value());
  EXPECT_EQ(plan.steps[0].retries->outcome, Outcome::kRunning);
  EXPECT_EQ(plan.steps[0].retries->statements_done, 2);
}

TEST(MakePlan, FailedNoTransactionStepResumesWhenChecksumMatches) {
  const auto set = standard_set();
  auto attempts = applied(set, {1, 2, 3, 4}).attempts();
  attempts.push_back(attempt(set, 5, kUp, Outcome::kFailed, 1));
  const auto plan = make_plan(set, History(attempts), Target::latest(), {});
  ASSERT_EQ(versions_of(plan), (std::vector<Version>{5}));
  EXPECT_EQ(plan.steps[0].resume_from, 1);
}

TEST(MakePlan, RunningNoTransactionStepStartsOverWhenFileChanged) {
  const auto set = standard_set();
  auto attempts = applied(set, {1, 2, 3, 4}).attempts();
  attempts.push_back(attempt(set, 5, kUp, Outcome::kRunning, 2, sha256_hex("an older file")));
  const auto plan = make_plan(set, History(attempts), Target::latest(), {});
  ASSERT_EQ(versions_of(plan), (std::vector<Version>{5}));
  EXPECT_EQ(plan.steps[0].resume_from, 0);
  EXPECT_TRUE(plan.steps[0].retries.has_value());  // still retries (and abandons) the old attempt
}

TEST(MakePlan, TransactionalStepNeverResumes) {
  const auto set = small_set();
  const History h({attempt(set, 1, kUp, Outcome::kRunning, 1)});
  const auto plan = make_plan(set, h, Target::latest(), {});
  ASSERT_FALSE(plan.empty());
  EXPECT_EQ(plan.steps[0].resume_from, 0);
  EXPECT_TRUE(plan.steps[0].retries.has_value());
}

TEST(MakePlan, UpToAnExplicitTarget) {
  const auto set = standard_set();
  const auto plan = make_plan(set, applied(set, {1}), Target::at(3), {});
  EXPECT_EQ(versions_of(plan), (std::vector<Version>{2, 3}));
  EXPECT_EQ(plan.from, 1);
  EXPECT_EQ(plan.to, 3);
}

// ------------------------------------------------------------------ going down

TEST(MakePlan, DownToTargetInReverseOrder) {
  const auto set = small_set();
  const auto plan = make_plan(set, applied(set, {1, 2, 3}), Target::at(1), {});
  EXPECT_EQ(versions_of(plan), (std::vector<Version>{3, 2}));
  for (const auto& s : plan.steps) {
    EXPECT_EQ(s.direction, kDown);
    EXPECT_EQ(&s.script(), &*s.migration->down);
  }
  EXPECT_EQ(plan.steps[0].script().file, "3_c.down.sql");
  EXPECT_EQ(plan.from, 3);
  EXPECT_EQ(plan.to, 1);
}

TEST(MakePlan, DownToZeroUndoesEverything) {
  const auto set = small_set();
  const auto plan = make_plan(set, applied(set, {1, 2, 3}), Target::at(0), {});
  EXPECT_EQ(versions_of(plan), (std::vector<Version>{3, 2, 1}));
  EXPECT_EQ(plan.to, 0);
}

TEST(MakePlan, TargetAtCurrentVersionIsEmpty) {
  const auto set = small_set();
  const auto plan = make_plan(set, applied(set, {1, 2}), Target::at(2), {});
  EXPECT_TRUE(plan.empty());
  EXPECT_EQ(plan.from, 2);
  EXPECT_EQ(plan.to, 2);
}

TEST(MakePlan, DownRefusedWhenDownFileMissingNamingTheFile) {
  const auto set = standard_set();
  const auto msg = refusal(set, applied(set, {1, 2, 3, 4, 5}), Target::at(2));
  EXPECT_TRUE(contains(msg, "4_d.down.sql")) << msg;
  EXPECT_TRUE(contains(msg, "5_e.down.sql")) << msg;
  EXPECT_FALSE(contains(msg, "3_c.down.sql")) << msg;
}

TEST(MakePlan, DownRefusedWhenAppliedVersionUnknown) {
  const auto set = small_set();
  auto attempts = applied(set, {1, 2, 3}).attempts();
  attempts.push_back(attempt(set, 99, kUp, Outcome::kSucceeded));
  const auto msg = refusal(set, History(attempts), Target::at(1));
  EXPECT_TRUE(contains(msg, "99")) << msg;
}

TEST(MakePlan, UnknownTargetRefused) {
  const auto set = small_set();
  const auto msg = refusal(set, applied(set, {1, 2}), Target::at(7));
  EXPECT_TRUE(contains(msg, "7")) << msg;
}

TEST(MakePlan, UnknownTargetRefusedOnEmptySet) {
  const auto msg = refusal(MigrationSet(), History(), Target::at(1));
  EXPECT_TRUE(contains(msg, "1")) << msg;
}

TEST(MakePlan, DownThenUpWhenTargetBelowAnOutOfOrderHole) {
  // 1 and 3 applied, 2 pending; going to 2 undoes 3 and then applies 2: not out of order.
  const auto set = small_set();
  const auto plan = make_plan(set, applied(set, {1, 3}), Target::at(2), {});
  ASSERT_EQ(plan.steps.size(), 2u);
  EXPECT_EQ(plan.steps[0].migration->version, 3);
  EXPECT_EQ(plan.steps[0].direction, kDown);
  EXPECT_EQ(plan.steps[1].migration->version, 2);
  EXPECT_EQ(plan.steps[1].direction, kUp);
  EXPECT_EQ(plan.to, 2);
}

TEST(MakePlan, FailedDownIsRetried) {
  const auto set = small_set();
  auto attempts = applied(set, {1, 2, 3}).attempts();
  attempts.push_back(attempt(set, 3, kDown, Outcome::kFailed));
  const auto plan = make_plan(set, History(attempts), Target::at(2), {});
  EXPECT_EQ(versions_of(plan), (std::vector<Version>{3}));
  EXPECT_EQ(plan.steps[0].direction, kDown);
}

TEST(MakePlan, UnfinishedDownIsFinishedWhenGoingDown) {
  // A no-transaction down was killed half way (its row still says running). Asking again for the
  // same target must finish the down, not report that there is nothing to do.
  const auto set = build_migration_set(std::vector<MigrationFile>{
      file("1_a.up.sql", "CREATE TABLE a (id int);"),
      file("1_a.down.sql", "DROP TABLE a;"),
      file("2_idx.up.sql", "-- stepwise:no-transaction\nCREATE INDEX CONCURRENTLY i ON a (id);"),
      file("2_idx.down.sql", "-- stepwise:no-transaction\nDROP INDEX CONCURRENTLY IF EXISTS i;"),
  });
  auto attempts = applied(set, {1, 2}).attempts();
  attempts.push_back(attempt(set, 2, kDown, Outcome::kRunning, 0));
  const auto plan = make_plan(set, History(attempts), Target::at(1), {});
  ASSERT_EQ(versions_of(plan), (std::vector<Version>{2}));
  EXPECT_EQ(plan.steps[0].direction, kDown);
}

// ------------------------------------------------------------------ checksums

TEST(ChecksumMismatches, NoneWhenFilesUnchanged) {
  const auto set = small_set();
  EXPECT_TRUE(checksum_mismatches(set, applied(set, {1, 2, 3})).empty());
}

TEST(ChecksumMismatches, ReportsChangedAppliedFile) {
  const auto set = small_set();
  const auto old_sum = sha256_hex("CREATE TABLE b (id bigint);");
  const History h({attempt(set, 1, kUp, Outcome::kSucceeded),
                   attempt(set, 2, kUp, Outcome::kSucceeded, 0, old_sum)});
  const auto mm = checksum_mismatches(set, h);
  ASSERT_EQ(mm.size(), 1u);
  EXPECT_TRUE(mm[0].starts_with("2_b.up.sql: ")) << mm[0];
  EXPECT_TRUE(contains(mm[0], old_sum.substr(0, 12))) << mm[0];
  EXPECT_TRUE(contains(mm[0], set.find(2)->up.checksum.substr(0, 12))) << mm[0];
}

TEST(ChecksumMismatches, IgnoresNotAppliedVersions) {
  const auto set = small_set();
  const History h({attempt(set, 1, kUp, Outcome::kFailed, 0, sha256_hex("other")),
                   attempt(set, 2, kUp, Outcome::kSucceeded, 0, sha256_hex("other")),
                   attempt(set, 2, kDown, Outcome::kSucceeded)});
  EXPECT_TRUE(checksum_mismatches(set, h).empty());
}

TEST(ChecksumMismatches, AppearAsPlanWarnings) {
  const auto set = small_set();
  const History h({attempt(set, 1, kUp, Outcome::kSucceeded, 0, sha256_hex("edited"))});
  const auto plan = make_plan(set, h, Target::latest(), {});
  EXPECT_EQ(versions_of(plan), (std::vector<Version>{2, 3}));
  ASSERT_EQ(plan.warnings.size(), 1u);
  EXPECT_TRUE(plan.warnings[0].starts_with("1_a.up.sql: ")) << plan.warnings[0];
}

}  // namespace
}  // namespace stepwise
