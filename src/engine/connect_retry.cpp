// Connecting while a server starts (stepwise/connect_retry.hpp).
#include "stepwise/connect_retry.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <thread>

#include "stepwise/duration.hpp"
#include "stepwise/errors.hpp"
#include "stepwise/retry.hpp"

namespace stepwise {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

int connect_attempt_seconds(milliseconds total) {
  return static_cast<int>(std::clamp<long long>(total.count() / 1000, 2, 10));
}

std::unique_ptr<Connection> connect_with_retry(const ConnectAttempt& attempt,
                                               const ConnectRetryOptions& options) {
  const auto now = [&] { return options.now ? options.now() : Clock::now(); };
  const auto start = now();
  const auto deadline = start + options.timeout;
  auto next_log = start;
  for (int failures = 0;; ++failures) {
    try {
      return attempt.open();
    } catch (const ConnectError& e) {
      const std::string why = e.what();
      const bool unresolved = attempt.is_unresolved_host(why);
      if (unresolved && options.mask_hosts) options.mask_hosts(attempt.hosts);
      const auto at = now();
      if (!attempt.is_transient(why))
        throw ConnectError(fmt::format("cannot connect to {}: {}", attempt.display, why),
                           "check the user, password and database name in --database-url");
      const auto backoff = connect_backoff(failures);
      if (at + backoff >= deadline || (options.stop != nullptr && options.stop->load()))
        throw ConnectError(
            fmt::format("cannot connect to {} within {}: {}", attempt.display,
                        format_duration(options.timeout), why),
            unresolved
                ? "check the host name (not shown: it may be part of a password, as when an '@' "
                  "in a URL's password is not written %40)"
                : "is the server up and reachable? raise --connect-timeout to wait longer");
      if (at >= next_log) {
        if (options.on_waiting)
          options.on_waiting(
              fmt::format("waiting for the database at {}: {} ({} elapsed)", attempt.display, why,
                          format_duration(std::chrono::duration_cast<milliseconds>(at - start))));
        next_log = at + milliseconds(5000);
      }
      if (options.sleep)
        options.sleep(backoff);
      else
        std::this_thread::sleep_for(backoff);
    }
  }
}

}  // namespace stepwise
