#pragma once
// Which errors are worth trying again, and how long to wait before the next try: pure
// functions of the SQLSTATE and the attempt number (the caller supplies the randomness).
#include <chrono>
#include <cstdint>
#include <optional>
#include <string_view>

namespace stepwise {

// Errors worth trying again, and how.
enum class Retry {
  kNo,
  kLockTimeout,    // 55P03: our lock_timeout expired; back off so traffic can pass
  kSerialization,  // 40001 (CockroachDB restarts, SERIALIZABLE conflicts), 40P01 deadlock
};
[[nodiscard]] Retry classify_retry(std::string_view sqlstate);

// What a runner that lost a race to create the same object sees (CREATE ... IF NOT EXISTS
// checks before it inserts into the catalog): 42P07 relation, 42P06 schema, 42710 type or
// other object, 23505 a catalog's unique index. The object is there: the race is harmless.
[[nodiscard]] bool is_concurrent_create_duplicate(std::string_view sqlstate);

// How many tries each kind of retry gets.
struct RetryLimits {
  // 0: lock timeouts are not retried (nor set: the statement waits for ever).
  std::chrono::milliseconds ddl_lock_timeout{5'000};
  int ddl_lock_retries = 10;
  int serialization_retries = 10;
};

struct Backoff {
  std::chrono::milliseconds wait{0};
  int max_attempts = 0;  // the retries this kind gets in all, for "retry 2 of 10"
};

// The wait before retry number `attempt + 1` (attempt counts the failed tries so far, from 0)
// after an error of kind `kind`; nullopt when no retry is left or the kind is not retried.
// Lock timeouts: 1 s, 2 s, 4 s ... capped at 30 s, plus jitter below 250 ms so that retries do
// not line up. Serialization failures: fully jittered, 50 ms, 100 ms ... capped at 2 s
// (contention clears fast or not at all). `jitter` is any random number.
[[nodiscard]] std::optional<Backoff> next_backoff(Retry kind, int attempt,
                                                  const RetryLimits& limits, std::uint32_t jitter);

// The wait after failed connect try number `attempt` (from 0) while a server starts: 200 ms,
// doubling, capped at 2 s. No jitter: the deadline (--connect-timeout) bounds the tries.
[[nodiscard]] std::chrono::milliseconds connect_backoff(int attempt);

}  // namespace stepwise
