// Connecting while a server starts, without a server or a clock: attempts that fail as scripted,
// a fake clock that only the backoff moves.
#include "stepwise/connect_retry.hpp"

#include <gtest/gtest.h>

#include <deque>
#include <optional>
#include <thread>

#include "stepwise/errors.hpp"

namespace stepwise {
namespace {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

class IdleConnection final : public Connection {
 public:
  Rows execute(std::string_view) override { return {}; }
  Rows query(std::string_view, const Params&) override { return {}; }
  std::string quote_identifier(std::string_view n) override { return std::string(n); }
  std::string quote_literal(std::string_view v) override { return std::string(v); }
  void cancel() noexcept override {}
  int backend_pid() const override { return 7; }
  void on_notice(std::function<void(std::string_view)>) override {}
};

constexpr const char* kRefused = "connection to server failed: Connection refused";
constexpr const char* kUnresolved =
    "could not translate host name \"***\" to address: Name or service not known";
constexpr const char* kBadPassword = "password authentication failed for user \"***\"";

// A server that fails each attempt with the next scripted message (nullopt: accepts), on a
// clock that moves only when the retry loop sleeps.
struct Script {
  std::deque<std::optional<std::string>> answers;
  int attempts = 0;
  std::vector<milliseconds> sleeps;
  std::vector<std::string> waiting;
  std::vector<std::vector<std::string>> masked;
  std::vector<std::string> events;  // "mask" and "wait", in order
  Clock::time_point clock{};
  std::atomic<bool> stop{false};

  ConnectAttempt attempt() {
    ConnectAttempt a;
    a.display = "db.internal:5432/app";
    a.hosts = {"db.internal"};
    a.open = [this]() -> std::unique_ptr<Connection> {
      ++attempts;
      if (answers.empty()) throw ConnectError(kRefused);
      auto next = answers.front();
      answers.pop_front();
      if (next) throw ConnectError(*next);
      return std::make_unique<IdleConnection>();
    };
    // The adapter's classification, in miniature.
    a.is_transient = [](const std::string& why) {
      return why.find("authentication failed") == std::string::npos;
    };
    a.is_unresolved_host = [](const std::string& why) {
      return why.find("could not translate host name") != std::string::npos;
    };
    return a;
  }

  ConnectRetryOptions options(milliseconds timeout) {
    ConnectRetryOptions o;
    o.timeout = timeout;
    o.stop = &stop;
    o.on_waiting = [this](const std::string& m) {
      waiting.push_back(m);
      events.emplace_back("wait");
    };
    o.mask_hosts = [this](const std::vector<std::string>& h) {
      masked.push_back(h);
      events.emplace_back("mask");
    };
    o.now = [this] { return clock; };
    o.sleep = [this](milliseconds d) {
      sleeps.push_back(d);
      clock += d;
    };
    return o;
  }
};

TEST(ConnectRetry, EachAttemptIsBoundByTheTimeoutInSecondsBetweenTwoAndTen) {
  EXPECT_EQ(connect_attempt_seconds(milliseconds(0)), 2);
  EXPECT_EQ(connect_attempt_seconds(milliseconds(1000)), 2);
  EXPECT_EQ(connect_attempt_seconds(milliseconds(5999)), 5);
  EXPECT_EQ(connect_attempt_seconds(milliseconds(10'000)), 10);
  EXPECT_EQ(connect_attempt_seconds(milliseconds(60'000)), 10);
}

TEST(ConnectRetry, RetriesTransientFailuresWithBackoffUntilTheServerAccepts) {
  Script s;
  s.answers = {kRefused, kRefused, kRefused, std::nullopt};
  auto conn = connect_with_retry(s.attempt(), s.options(milliseconds(60'000)));
  ASSERT_NE(conn, nullptr);
  EXPECT_EQ(conn->backend_pid(), 7);
  EXPECT_EQ(s.attempts, 4);
  EXPECT_EQ(s.sleeps,
            (std::vector<milliseconds>{milliseconds(200), milliseconds(400), milliseconds(800)}));
  // Said at the first failure, not again within 5 s.
  ASSERT_EQ(s.waiting.size(), 1U);
  EXPECT_EQ(s.waiting[0], std::string("waiting for the database at db.internal:5432/app: ") +
                              kRefused + " (0ms elapsed)");
  EXPECT_TRUE(s.masked.empty());
}

TEST(ConnectRetry, SaysItIsWaitingAtTheFirstFailureThenEveryFiveSeconds) {
  Script s;
  for (int i = 0; i < 10; ++i) s.answers.emplace_back(kRefused);
  s.answers.emplace_back(std::nullopt);
  (void)connect_with_retry(s.attempt(), s.options(milliseconds(60'000)));
  // Failures at 0, 0.2, 0.6, 1.4, 3, 5, 7, 9, 11, 13 s: said at 0, 5 and 11 s.
  ASSERT_EQ(s.waiting.size(), 3U);
  EXPECT_NE(s.waiting[0].find("(0ms elapsed)"), std::string::npos) << s.waiting[0];
  EXPECT_NE(s.waiting[1].find("(5.0s elapsed)"), std::string::npos) << s.waiting[1];
  EXPECT_NE(s.waiting[2].find("(11.0s elapsed)"), std::string::npos) << s.waiting[2];
  EXPECT_EQ(s.sleeps.back(), milliseconds(2000));
}

TEST(ConnectRetry, APermanentFailureEndsAtOnceWithTheCredentialsHint) {
  Script s;
  s.answers = {kBadPassword};
  try {
    (void)connect_with_retry(s.attempt(), s.options(milliseconds(60'000)));
    FAIL() << "no error";
  } catch (const ConnectError& e) {
    EXPECT_EQ(std::string(e.what()),
              std::string("cannot connect to db.internal:5432/app: ") + kBadPassword);
    EXPECT_EQ(e.hint(), "check the user, password and database name in --database-url");
    EXPECT_EQ(e.code(), ExitCode::kConnect);
  }
  EXPECT_EQ(s.attempts, 1);
  EXPECT_TRUE(s.sleeps.empty());
  EXPECT_TRUE(s.waiting.empty());
}

TEST(ConnectRetry, GivesUpWhenTheNextTryWouldPassTheTimeout) {
  Script s;  // refuses every attempt
  try {
    (void)connect_with_retry(s.attempt(), s.options(milliseconds(1000)));
    FAIL() << "no error";
  } catch (const ConnectError& e) {
    EXPECT_EQ(std::string(e.what()),
              std::string("cannot connect to db.internal:5432/app within 1.0s: ") + kRefused);
    EXPECT_EQ(e.hint(), "is the server up and reachable? raise --connect-timeout to wait longer");
  }
  // Failures at 0 and 0.2 s wait; at 0.6 s the next wait (0.8 s) would end past 1 s.
  EXPECT_EQ(s.attempts, 3);
  EXPECT_EQ(s.sleeps, (std::vector<milliseconds>{milliseconds(200), milliseconds(400)}));
}

TEST(ConnectRetry, AHostThatDoesNotResolveIsMaskedAndNamedInTheHintOnly) {
  Script s;
  for (int i = 0; i < 5; ++i) s.answers.emplace_back(kUnresolved);
  try {
    (void)connect_with_retry(s.attempt(), s.options(milliseconds(1000)));
    FAIL() << "no error";
  } catch (const ConnectError& e) {
    EXPECT_NE(std::string(e.what()).find("within 1.0s: could not translate host name"),
              std::string::npos)
        << e.what();
    EXPECT_EQ(e.hint(),
              "check the host name (not shown: it may be part of a password, as when an '@' in "
              "a URL's password is not written %40)");
  }
  // Masked at every failure, before the waiting line (which names the display) is said.
  ASSERT_EQ(s.masked.size(), 3U);
  EXPECT_EQ(s.masked[0], std::vector<std::string>{"db.internal"});
  EXPECT_EQ(s.events, (std::vector<std::string>{"mask", "wait", "mask", "mask"}));
}

TEST(ConnectRetry, AStopEndsTheWaitAtTheNextFailure) {
  Script s;
  s.stop = true;
  s.answers = {kRefused, std::nullopt};
  EXPECT_THROW((void)connect_with_retry(s.attempt(), s.options(milliseconds(60'000))),
               ConnectError);
  EXPECT_EQ(s.attempts, 1);
  EXPECT_TRUE(s.sleeps.empty());
}

TEST(ConnectRetry, AStopSetWhileWaitingEndsTheWaitWithoutAnotherAttempt) {
  Script s;
  s.answers = {kRefused, std::nullopt};
  auto options = s.options(milliseconds(60'000));
  options.sleep = [&s](milliseconds d) {
    s.sleeps.push_back(d);
    s.stop = true;  // e.g. the --source folder failed to load meanwhile
  };
  try {
    (void)connect_with_retry(s.attempt(), options);
    FAIL() << "connected after a stop";
  } catch (const ConnectError& e) {
    EXPECT_NE(std::string(e.what()).find("within 1m00s"), std::string::npos) << e.what();
  }
  EXPECT_EQ(s.attempts, 1);
  EXPECT_EQ(s.sleeps.size(), 1U);
}

TEST(ConnectRetry, TheRealWaitWakesPromptlyOnAStop) {
  Script s;
  auto options = s.options(milliseconds(60'000));
  options.now = nullptr;
  options.sleep = nullptr;  // the steady clock and the stop-aware wait (200 ms after one failure)
  const auto began = Clock::now();
  std::thread stopper([&s] {
    std::this_thread::sleep_for(milliseconds(30));
    s.stop = true;
  });
  EXPECT_THROW((void)connect_with_retry(s.attempt(), options), ConnectError);
  const auto took = Clock::now() - began;
  stopper.join();
  EXPECT_EQ(s.attempts, 1);
  EXPECT_LT(took, milliseconds(150));
}

TEST(ConnectRetry, OtherErrorsAreNotRetried) {
  ConnectAttempt a;
  int attempts = 0;
  a.open = [&]() -> std::unique_ptr<Connection> {
    ++attempts;
    throw UsageError("not a connect error");
  };
  a.is_transient = [](const std::string&) { return true; };
  a.is_unresolved_host = [](const std::string&) { return false; };
  ConnectRetryOptions o;
  o.sleep = [](milliseconds) { ADD_FAILURE() << "slept"; };
  EXPECT_THROW((void)connect_with_retry(a, o), UsageError);
  EXPECT_EQ(attempts, 1);
}

}  // namespace
}  // namespace stepwise
