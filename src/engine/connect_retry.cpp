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

namespace {
// The backoff, cut short when `stop` is set: a stop (a signal, or a caller that no longer needs
// the connection) is answered within a few milliseconds, not after up to two seconds.
void wait_unless_stopped(milliseconds backoff, const std::atomic<bool>* stop) {
  constexpr milliseconds kSlice{10};
  const auto until = Clock::now() + backoff;
  for (auto now = Clock::now(); now < until; now = Clock::now()) {
    if (stop != nullptr && stop->load()) return;
    std::this_thread::sleep_for(std::min<Clock::duration>(kSlice, until - now));
  }
}
}  // namespace

std::unique_ptr<Connection> connect_with_retry(const ConnectAttempt& attempt,
                                               const ConnectRetryOptions& options) {
  const auto now = [&] { return options.now ? options.now() : Clock::now(); };
  const auto stopped = [&] { return options.stop != nullptr && options.stop->load(); };
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
      const auto gave_up = [&] {
        return ConnectError(
            fmt::format("cannot connect to {} within {}: {}", attempt.display,
                        format_duration(options.timeout), why),
            unresolved
                ? "check the host name (not shown: it may be part of a password, as when an '@' "
                  "in a URL's password is not written %40)"
                : "is the server up and reachable? raise --connect-timeout to wait longer");
      };
      const auto backoff = connect_backoff(failures);
      if (at + backoff >= deadline || stopped()) throw gave_up();
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
        wait_unless_stopped(backoff, options.stop);
      // Set while waiting: no further attempt.
      if (stopped()) throw gave_up();
    }
  }
}

}  // namespace stepwise
