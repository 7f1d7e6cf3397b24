#include <gtest/gtest.h>

#include <vector>

#include "stepwise/history.hpp"

namespace stepwise {
namespace {

Attempt attempt(long long id, Version v, Direction d, Outcome o, std::string checksum = "c",
                std::string name = "step") {
  Attempt a;
  a.id = id;
  a.version = v;
  a.name = std::move(name);
  a.direction = d;
  a.outcome = o;
  a.checksum = std::move(checksum);
  a.started_at = "2024-01-01T00:00:0" + std::to_string(id % 10) + ".000Z";
  if (o != Outcome::kRunning)
    a.finished_at = "2024-01-01T00:01:0" + std::to_string(id % 10) + ".000Z";
  return a;
}

constexpr auto kUp = Direction::kUp;
constexpr auto kDown = Direction::kDown;

TEST(Outcome, RoundTripsThroughText) {
  for (auto o : {Outcome::kRunning, Outcome::kSucceeded, Outcome::kFailed, Outcome::kInterrupted,
                 Outcome::kAbandoned}) {
    const auto parsed = parse_outcome(to_string(o));
    ASSERT_TRUE(parsed.has_value()) << to_string(o);
    EXPECT_EQ(*parsed, o);
  }
  EXPECT_EQ(to_string(Outcome::kSucceeded), "succeeded");
  EXPECT_EQ(to_string(Outcome::kRunning), "running");
  EXPECT_FALSE(parse_outcome("Succeeded").has_value());
  EXPECT_FALSE(parse_outcome("").has_value());
  EXPECT_FALSE(parse_outcome("done").has_value());
}

TEST(State, Names) {
  EXPECT_EQ(to_string(State::kApplied), "applied");
  EXPECT_EQ(to_string(State::kPending), "pending");
  EXPECT_EQ(to_string(State::kFailed), "failed");
  EXPECT_EQ(to_string(State::kUnfinished), "unfinished");
}

TEST(History, EmptyHistory) {
  const History h;
  EXPECT_TRUE(h.versions().empty());
  EXPECT_EQ(h.current_version(), 0);
  EXPECT_EQ(h.find(1), nullptr);
  EXPECT_FALSE(h.is_applied(1));
  EXPECT_TRUE(h.log_table_exists());
}

TEST(History, LogTableExistsFlag) {
  History h;
  h.set_log_table_exists(false);
  EXPECT_FALSE(h.log_table_exists());
}

TEST(History, SucceededUpIsApplied) {
  const History h({attempt(1, 10, kUp, Outcome::kSucceeded, "abc", "create_users")});
  const auto* st = h.find(10);
  ASSERT_NE(st, nullptr);
  EXPECT_EQ(st->version, 10);
  EXPECT_EQ(st->state, State::kApplied);
  EXPECT_TRUE(st->applied);
  EXPECT_EQ(st->applied_checksum, "abc");
  EXPECT_EQ(st->applied_at, "2024-01-01T00:01:01.000Z");
  EXPECT_EQ(st->name, "create_users");
  ASSERT_TRUE(st->latest.has_value());
  EXPECT_EQ(st->latest->id, 1);
  EXPECT_TRUE(h.is_applied(10));
  EXPECT_EQ(h.current_version(), 10);
}

TEST(History, SuccessfulDownMakesVersionPendingAgain) {
  const History h({attempt(1, 10, kUp, Outcome::kSucceeded, "abc"),
                   attempt(2, 10, kDown, Outcome::kSucceeded, "down-sum")});
  const auto* st = h.find(10);
  ASSERT_NE(st, nullptr);
  EXPECT_EQ(st->state, State::kPending);
  EXPECT_FALSE(st->applied);
  EXPECT_TRUE(st->applied_checksum.empty());
  EXPECT_TRUE(st->applied_at.empty());
  EXPECT_FALSE(h.is_applied(10));
  EXPECT_EQ(h.current_version(), 0);
  EXPECT_EQ(st->latest->direction, kDown);
}

TEST(History, UpDownUpIsAppliedWithLatestChecksum) {
  const History h({attempt(1, 10, kUp, Outcome::kSucceeded, "first"),
                   attempt(2, 10, kDown, Outcome::kSucceeded, "down"),
                   attempt(3, 10, kUp, Outcome::kSucceeded, "second")});
  const auto* st = h.find(10);
  ASSERT_NE(st, nullptr);
  EXPECT_EQ(st->state, State::kApplied);
  EXPECT_EQ(st->applied_checksum, "second");
}

TEST(History, FailedUpIsFailedAndNotApplied) {
  const History h({attempt(1, 10, kUp, Outcome::kFailed)});
  const auto* st = h.find(10);
  ASSERT_NE(st, nullptr);
  EXPECT_EQ(st->state, State::kFailed);
  EXPECT_FALSE(st->applied);
  EXPECT_FALSE(h.is_applied(10));
  EXPECT_EQ(h.current_version(), 0);
  EXPECT_TRUE(st->applied_checksum.empty());
}

TEST(History, RunningUpIsUnfinished) {
  const History h({attempt(1, 10, kUp, Outcome::kRunning)});
  const auto* st = h.find(10);
  ASSERT_NE(st, nullptr);
  EXPECT_EQ(st->state, State::kUnfinished);
  EXPECT_FALSE(st->applied);
  EXPECT_FALSE(h.is_applied(10));
  EXPECT_TRUE(st->latest->finished_at.empty());
}

TEST(History, InterruptedUpIsFailed) {
  const History h({attempt(1, 10, kUp, Outcome::kInterrupted)});
  EXPECT_EQ(h.find(10)->state, State::kFailed);
  EXPECT_FALSE(h.is_applied(10));
}

TEST(History, AbandonedUpIsFailed) {
  const History h({attempt(1, 10, kUp, Outcome::kAbandoned)});
  EXPECT_EQ(h.find(10)->state, State::kFailed);
  EXPECT_FALSE(h.is_applied(10));
}

TEST(History, FailedThenSucceededIsApplied) {
  const History h({attempt(1, 10, kUp, Outcome::kFailed, "old"),
                   attempt(2, 10, kUp, Outcome::kSucceeded, "new")});
  const auto* st = h.find(10);
  EXPECT_EQ(st->state, State::kApplied);
  EXPECT_EQ(st->applied_checksum, "new");
  EXPECT_EQ(st->latest->id, 2);
}

TEST(History, FailedDownLeavesVersionApplied) {
  const History h({attempt(1, 10, kUp, Outcome::kSucceeded, "up-sum"),
                   attempt(2, 10, kDown, Outcome::kFailed, "down-sum")});
  const auto* st = h.find(10);
  ASSERT_NE(st, nullptr);
  EXPECT_EQ(st->state, State::kApplied);
  EXPECT_TRUE(st->applied);
  EXPECT_EQ(st->applied_checksum, "up-sum");  // not the down file's
  EXPECT_EQ(st->latest->direction, kDown);
  EXPECT_EQ(st->latest->outcome, Outcome::kFailed);
  EXPECT_EQ(h.current_version(), 10);
}

TEST(History, RunningDownIsUnfinishedButEffectStillApplied) {
  const History h({attempt(1, 10, kUp, Outcome::kSucceeded, "up-sum"),
                   attempt(2, 10, kDown, Outcome::kRunning, "down-sum")});
  const auto* st = h.find(10);
  ASSERT_NE(st, nullptr);
  EXPECT_EQ(st->state, State::kUnfinished);
  EXPECT_TRUE(st->applied);
  EXPECT_EQ(st->applied_checksum, "up-sum");
}

TEST(History, AppliedChecksumComesFromTheApplyingAttempt) {
  // A later failed attempt (e.g. an edited file re-run by hand) does not change what was applied.
  const History h({attempt(1, 10, kUp, Outcome::kSucceeded, "applied-sum"),
                   attempt(2, 10, kDown, Outcome::kFailed, "down-sum"),
                   attempt(3, 10, kDown, Outcome::kInterrupted, "down-sum-2")});
  EXPECT_EQ(h.find(10)->applied_checksum, "applied-sum");
  EXPECT_EQ(h.find(10)->applied_at, "2024-01-01T00:01:01.000Z");
}

TEST(History, NameTakenFromUpAttempts) {
  const History h({attempt(1, 10, kUp, Outcome::kSucceeded, "c", "create_users"),
                   attempt(2, 10, kDown, Outcome::kFailed, "d", "something_else")});
  EXPECT_EQ(h.find(10)->name, "create_users");
}

TEST(History, NameFromDownWhenNoUpAttempt) {
  const History h({attempt(1, 10, kDown, Outcome::kFailed, "d", "only_down")});
  EXPECT_EQ(h.find(10)->name, "only_down");
}

TEST(History, CurrentVersionIsHighestApplied) {
  const History h({attempt(1, 1, kUp, Outcome::kSucceeded), attempt(2, 5, kUp, Outcome::kSucceeded),
                   attempt(3, 3, kUp, Outcome::kSucceeded), attempt(4, 9, kUp, Outcome::kFailed),
                   attempt(5, 7, kUp, Outcome::kRunning)});
  EXPECT_EQ(h.current_version(), 5);
  EXPECT_EQ(h.versions().size(), 5u);
  EXPECT_TRUE(h.is_applied(1));
  EXPECT_TRUE(h.is_applied(3));
  EXPECT_TRUE(h.is_applied(5));
  EXPECT_FALSE(h.is_applied(7));
  EXPECT_FALSE(h.is_applied(9));
}

TEST(History, CurrentVersionDropsAfterDownOfNewest) {
  const History h({attempt(1, 1, kUp, Outcome::kSucceeded), attempt(2, 2, kUp, Outcome::kSucceeded),
                   attempt(3, 2, kDown, Outcome::kSucceeded)});
  EXPECT_EQ(h.current_version(), 1);
}

TEST(History, AttemptsAreOrderedById) {
  // Given out of order, the latest attempt is the one with the highest id, not the last given.
  const History h({attempt(7, 10, kUp, Outcome::kSucceeded, "third"),
                   attempt(3, 10, kUp, Outcome::kFailed, "first"),
                   attempt(5, 10, kDown, Outcome::kSucceeded, "second")});
  ASSERT_EQ(h.attempts().size(), 3u);
  EXPECT_EQ(h.attempts()[0].id, 3);
  EXPECT_EQ(h.attempts()[1].id, 5);
  EXPECT_EQ(h.attempts()[2].id, 7);
  const auto* st = h.find(10);
  EXPECT_EQ(st->latest->id, 7);
  EXPECT_EQ(st->state, State::kApplied);
  EXPECT_EQ(st->applied_checksum, "third");
}

TEST(History, OrderByIdDecidesBetweenUpAndDown) {
  // Same two attempts, ids swapped: the down is now the latest and the version is pending.
  const History h(
      {attempt(9, 10, kDown, Outcome::kSucceeded), attempt(4, 10, kUp, Outcome::kSucceeded)});
  EXPECT_EQ(h.find(10)->state, State::kPending);
  EXPECT_FALSE(h.is_applied(10));
}

TEST(History, VersionsAreKeptSeparate) {
  const History h({attempt(1, 1, kUp, Outcome::kSucceeded, "a"),
                   attempt(2, 2, kUp, Outcome::kFailed, "b"),
                   attempt(3, 1, kDown, Outcome::kSucceeded, "a-down")});
  EXPECT_EQ(h.find(1)->state, State::kPending);
  EXPECT_EQ(h.find(2)->state, State::kFailed);
  EXPECT_EQ(h.find(2)->latest->checksum, "b");
  EXPECT_EQ(h.find(3), nullptr);
}

}  // namespace
}  // namespace stepwise
