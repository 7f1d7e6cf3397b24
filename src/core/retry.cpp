#include "stepwise/retry.hpp"

#include <algorithm>

namespace stepwise {

using std::chrono::milliseconds;

Retry classify_retry(std::string_view sqlstate) {
  if (sqlstate == "55P03") return Retry::kLockTimeout;
  if (sqlstate == "40001" || sqlstate == "40P01") return Retry::kSerialization;
  // 40003 (statement completion unknown) and XXA00 (CockroachDB: committed, schema change
  // failed) are deliberately not retried: the outcome must be looked at, not guessed.
  return Retry::kNo;
}

bool is_concurrent_create_duplicate(std::string_view sqlstate) {
  return sqlstate == "42P07" || sqlstate == "42P06" || sqlstate == "42710" || sqlstate == "23505";
}

std::optional<Backoff> next_backoff(Retry kind, int attempt, const RetryLimits& limits,
                                    std::uint32_t jitter) {
  Backoff b;
  switch (kind) {
    case Retry::kLockTimeout:
      if (limits.ddl_lock_timeout.count() <= 0) return std::nullopt;
      b.max_attempts = limits.ddl_lock_retries;
      b.wait = std::min(milliseconds(1000LL << std::min(attempt, 5)), milliseconds(30'000)) +
               milliseconds(jitter % 250);
      break;
    case Retry::kSerialization:
      b.max_attempts = limits.serialization_retries;
      b.wait = milliseconds(jitter % (std::min(50LL << std::min(attempt, 6), 2000LL) + 1));
      break;
    case Retry::kNo:
      return std::nullopt;
  }
  if (attempt >= b.max_attempts) return std::nullopt;
  return b;
}

milliseconds connect_backoff(int attempt) {
  return std::min(milliseconds(200LL << std::clamp(attempt, 0, 4)), milliseconds(2000));
}

}  // namespace stepwise
