// Backoff without a clock or a server: pure functions of the retry kind, the attempt and jitter.
#include <gtest/gtest.h>

#include "stepwise/engine.hpp"
#include "stepwise/errors.hpp"
#include "stepwise/retry.hpp"

namespace stepwise {
namespace {

using std::chrono::milliseconds;

TEST(Backoff, LockTimeoutsDoubleFromOneSecondUpToThirtyWithJitterBelow250ms) {
  RetryLimits limits;
  limits.ddl_lock_retries = 10;
  const std::int64_t expected[] = {1000, 2000, 4000, 8000, 16000, 30000, 30000};
  for (int attempt = 0; attempt < 7; ++attempt) {
    const auto b = next_backoff(Retry::kLockTimeout, attempt, limits, 0);
    ASSERT_TRUE(b) << attempt;
    EXPECT_EQ(b->wait, milliseconds(expected[attempt])) << attempt;
    EXPECT_EQ(b->max_attempts, 10);
  }
  EXPECT_EQ(next_backoff(Retry::kLockTimeout, 0, limits, 249)->wait, milliseconds(1249));
  EXPECT_EQ(next_backoff(Retry::kLockTimeout, 0, limits, 250)->wait, milliseconds(1000));
}

TEST(Backoff, SerializationFailuresAreFullyJitteredUnderACapOfTwoSeconds) {
  RetryLimits limits;
  limits.serialization_retries = 20;
  EXPECT_EQ(next_backoff(Retry::kSerialization, 0, limits, 0)->wait, milliseconds(0));
  EXPECT_EQ(next_backoff(Retry::kSerialization, 0, limits, 50)->wait, milliseconds(50));
  EXPECT_EQ(next_backoff(Retry::kSerialization, 0, limits, 51)->wait, milliseconds(0));
  EXPECT_EQ(next_backoff(Retry::kSerialization, 1, limits, 100)->wait, milliseconds(100));
  // 50 << 6 = 3200 is capped at 2000: the largest wait is 2 s, whatever the attempt.
  EXPECT_EQ(next_backoff(Retry::kSerialization, 5, limits, 1600)->wait, milliseconds(1600));
  for (int attempt : {6, 12})
    EXPECT_EQ(next_backoff(Retry::kSerialization, attempt, limits, 2000)->wait, milliseconds(2000))
        << attempt;
  EXPECT_EQ(next_backoff(Retry::kSerialization, 12, limits, 2001)->wait, milliseconds(0));
  EXPECT_EQ(next_backoff(Retry::kSerialization, 0, limits, 7)->max_attempts, 20);
}

TEST(Backoff, GivesUpAfterTheLimitAndNeverRetriesTheRest) {
  RetryLimits limits;
  limits.ddl_lock_retries = 2;
  limits.serialization_retries = 1;
  EXPECT_TRUE(next_backoff(Retry::kLockTimeout, 1, limits, 0));
  EXPECT_FALSE(next_backoff(Retry::kLockTimeout, 2, limits, 0));
  EXPECT_TRUE(next_backoff(Retry::kSerialization, 0, limits, 0));
  EXPECT_FALSE(next_backoff(Retry::kSerialization, 1, limits, 0));
  EXPECT_FALSE(next_backoff(Retry::kNo, 0, limits, 0));
  // --ddl-lock-timeout 0: the statement waits for ever, so a lock timeout is never ours.
  limits.ddl_lock_timeout = milliseconds(0);
  EXPECT_FALSE(next_backoff(Retry::kLockTimeout, 0, limits, 0));
  limits.ddl_lock_retries = 0;
  limits.ddl_lock_timeout = milliseconds(5000);
  EXPECT_FALSE(next_backoff(Retry::kLockTimeout, 0, limits, 0));
}

TEST(Backoff, ConnectTriesWait200msDoublingUpToTwoSeconds) {
  const std::int64_t expected[] = {200, 400, 800, 1600, 2000, 2000};
  for (int attempt = 0; attempt < 6; ++attempt)
    EXPECT_EQ(connect_backoff(attempt), milliseconds(expected[attempt])) << attempt;
  EXPECT_EQ(connect_backoff(1000), milliseconds(2000));  // no overflow, however many tries
  EXPECT_EQ(connect_backoff(-1), milliseconds(200));
}

TEST(EngineRules, LockChoiceFollowsTheStrategyThePoolerAndTheEngine) {
  const PostgresRules pg;
  EXPECT_EQ(pg.choose_lock(LockStrategy::kAuto, false), LockKind::kAdvisory);
  EXPECT_EQ(pg.choose_lock(LockStrategy::kAuto, true), LockKind::kLease);
  EXPECT_EQ(pg.choose_lock(LockStrategy::kAdvisory, true), LockKind::kAdvisory);
  EXPECT_EQ(pg.choose_lock(LockStrategy::kLease, false), LockKind::kLease);
  EXPECT_TRUE(pg.pooler_matters());
  EXPECT_TRUE(pg.fence_steps());
  EXPECT_TRUE(pg.snapshot_reads());
  const CockroachRules crdb(true);
  EXPECT_EQ(crdb.choose_lock(LockStrategy::kAuto, false), LockKind::kLease);
  EXPECT_EQ(crdb.choose_lock(LockStrategy::kLease, false), LockKind::kLease);
  EXPECT_THROW(crdb.check_lock_strategy(LockStrategy::kAdvisory), UsageError);
  EXPECT_THROW((void)crdb.choose_lock(LockStrategy::kAdvisory, false), UsageError);
  EXPECT_NO_THROW(crdb.check_lock_strategy(LockStrategy::kAuto));
  EXPECT_FALSE(crdb.pooler_matters());
  EXPECT_FALSE(crdb.fence_steps());
  EXPECT_FALSE(crdb.snapshot_reads());
  EXPECT_EQ(parse_lock_strategy("lease"), LockStrategy::kLease);
  EXPECT_EQ(parse_lock_strategy("auto"), LockStrategy::kAuto);
  EXPECT_FALSE(parse_lock_strategy("Advisory"));
}

TEST(EngineRules, OnlyCockroachNormalisesTheCatalog) {
  SchemaDescription d;
  d.objects.push_back({"column", "public", "t", "v", {{"type", "STRING"}}});
  auto pg = d;
  PostgresRules().normalize_catalog(pg);
  EXPECT_EQ(pg.objects.at(0).attr("type"), "STRING");
  CockroachRules(false).normalize_catalog(d);
  EXPECT_EQ(d.objects.at(0).attr("type"), "text");
}

TEST(ConcurrentCreate, OnlyDuplicatesOfTheObjectBeingCreatedAreHarmless) {
  for (const char* s : {"42P07", "42P06", "42710", "23505"})
    EXPECT_TRUE(is_concurrent_create_duplicate(s)) << s;
  for (const char* s : {"42501", "42601", "40001", "3F000", ""})
    EXPECT_FALSE(is_concurrent_create_duplicate(s)) << s;
}

}  // namespace
}  // namespace stepwise
