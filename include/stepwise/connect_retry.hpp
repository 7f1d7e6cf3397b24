#pragma once
// Connecting while a server starts: retrying transient failures until --connect-timeout, the
// "waiting for the database" line, masking a host that does not resolve, and the two errors a
// failed connect ends with. Knows no libpq: one attempt and what its message means are the
// adapter's (src/pqxx: connect_with_retry(const ConnInfo&, ...)).
#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "stepwise/database.hpp"

namespace stepwise {

// Each attempt's own bound in whole seconds (libpq's connect_timeout), so that a black-holed
// host cannot outlast --connect-timeout `total`: `total` in seconds, between 2 and 10.
[[nodiscard]] int connect_attempt_seconds(std::chrono::milliseconds total);

// What is connected to, and one attempt at it.
struct ConnectAttempt {
  std::string display;             // host:port/db, no secrets: named in every message
  std::vector<std::string> hosts;  // the host names given (masked when one does not resolve)
  // One attempt; throws ConnectError, its message already redacted.
  std::function<std::unique_ptr<Connection>()> open;
  // Whether a failure is worth another try (the server starting, refusing, too busy) rather
  // than permanent (authentication, configuration).
  std::function<bool(const std::string& why)> is_transient;
  // Whether a failure says a host name did not resolve: it may be a password written where the
  // host goes (an unencoded '@' in a URL), so it is never shown from then on.
  std::function<bool(const std::string& why)> is_unresolved_host;
};

// The caller's side: how long, when to stop, where the messages go.
struct ConnectRetryOptions {
  std::chrono::milliseconds timeout{60'000};  // --connect-timeout
  // Set on SIGINT/SIGTERM, or by a caller that no longer needs the connection: give up at the
  // next failure, or while waiting for the next attempt (the wait wakes within milliseconds).
  const std::atomic<bool>* stop = nullptr;
  // "waiting for the database at ...: why (1.2s elapsed)": at the first transient failure, then
  // at most every 5 s.
  std::function<void(const std::string& message)> on_waiting;
  // A host did not resolve: mask these in every line printed from now on (the display too).
  std::function<void(const std::vector<std::string>& hosts)> mask_hosts;
  // Seams for tests; empty: the steady clock and std::this_thread::sleep_for.
  std::function<std::chrono::steady_clock::time_point()> now;
  std::function<void(std::chrono::milliseconds)> sleep;
};

// Tries `attempt.open` until it succeeds, backing off by connect_backoff between tries. Throws
// ConnectError "cannot connect to <display>: why" at once for a permanent failure, and
// "cannot connect to <display> within <timeout>: why" when the next try would pass the
// timeout or `stop` is set; each with a hint.
[[nodiscard]] std::unique_ptr<Connection> connect_with_retry(const ConnectAttempt& attempt,
                                                             const ConnectRetryOptions& options);

}  // namespace stepwise
