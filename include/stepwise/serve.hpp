#pragma once
// The parts of `stepwise serve` that need no HTTP and no database: the upgrade's event log (a
// Reporter that fans its events out to any number of subscribers, replaying the past to a late
// one), the bearer-token check, and the maintenance page.
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "stepwise/runner.hpp"

namespace stepwise {

// The events of one upgrade, in order, numbered from 1. Written by the upgrade's thread (and
// the progress monitor's), read by any number of Server-Sent Events streams: each waits for
// the events after the last one it sent, so a subscriber that connects late gets everything
// from the start (or from its Last-Event-ID) and never misses or reorders an event.
class EventLog final : public Reporter {
 public:
  struct Event {
    std::uint64_t id = 0;
    std::string type;     // "step_started", "step_finished", "finished", "failed" ...
    nlohmann::json data;  // the event's fields, `type` and `id` included
  };

  // Every event's text is passed through redact() with these before it is stored.
  explicit EventLog(std::vector<std::string> secrets = {});

  // For a run made of several runner calls (upgrade stages): step n/N over the whole run, the
  // release each version belongs to, elapsed time and an estimate of the time remaining.
  void track_overall(std::size_t total_steps, std::map<Version, std::string> release_of);

  // Appends an event (fields `type`, `id` and `time` are added). A terminal event ("finished",
  // "failed", "cancelled") closes the log: later appends are dropped.
  void emit(const std::string& type, nlohmann::json fields = nlohmann::json::object());
  // Events with id > after, waiting up to `wait` for one when there is none yet. Empty when
  // the wait ran out (or the log is closed and nothing is left).
  [[nodiscard]] std::vector<Event> after(std::uint64_t after, std::chrono::milliseconds wait);
  [[nodiscard]] bool closed() const;
  [[nodiscard]] std::uint64_t last_id() const;
  // Wakes every waiting subscriber (server shutdown).
  void wake_all();

  // What the page and GET /v1/upgrades/{id} show of the current step.
  [[nodiscard]] nlohmann::json current() const;
  // Lock waits seen (for /metrics).
  [[nodiscard]] std::uint64_t lock_waits() const;
  [[nodiscard]] std::chrono::milliseconds lock_waited() const;
  // The file of the step that started last (empty before the first), for "failed" events.
  [[nodiscard]] std::string current_file() const;

  void warning(std::string_view message) override;
  void lock_waiting(std::chrono::milliseconds waited, const std::string& holder) override;
  void lock_acquired(std::chrono::milliseconds waited) override;
  void plan_ready(const Plan& plan) override;
  void step_started(const Step& step, std::size_t index, std::size_t total) override;
  void step_finished(const Step& step, std::size_t index, std::size_t total,
                     std::chrono::milliseconds took) override;
  void statement_skipped(const Step& step, std::string_view why) override;
  void step_progress(const Step& step, std::size_t index, std::size_t total,
                     const StepProgress& progress) override;
  void retrying(const Step& step, int attempt, int max_attempts, std::chrono::milliseconds wait,
                std::string_view reason) override;

 private:
  void append_locked(const std::string& type, nlohmann::json fields);
  [[nodiscard]] std::string release_of(const Version& v) const;

  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<Event> events_;
  std::vector<std::string> secrets_;
  bool closed_ = false;
  std::size_t overall_total_ = 0;
  std::size_t overall_done_ = 0;
  std::map<Version, std::string> release_of_;
  std::chrono::steady_clock::time_point overall_start_{};
  std::chrono::steady_clock::time_point step_start_{};
  nlohmann::json current_ = nlohmann::json::object();
  std::string current_file_;
  std::uint64_t lock_waits_ = 0;
  std::chrono::milliseconds lock_waited_{0};
  std::chrono::milliseconds last_wait_seen_{0};
};

// One Server-Sent Events frame: "id: N\nevent: TYPE\ndata: {...}\n\n".
[[nodiscard]] std::string sse_frame(const EventLog::Event& e);

enum class AuthResult { kOk, kMissing, kWrong };
// Checks an Authorization header against the expected token: "Bearer <token>", compared in
// constant time (SHA-256 of both, then CRYPTO_memcmp, so neither length nor content leaks
// through timing). kMissing: no header, or not a bearer one.
[[nodiscard]] AuthResult check_bearer(std::string_view authorization, std::string_view token);
[[nodiscard]] bool equal_constant_time(std::string_view a, std::string_view b);

// The maintenance page: one self-contained HTML document (CSS and JS inline, no external
// assets), compiled into the binary.
[[nodiscard]] std::string_view maintenance_page();

// Prometheus text exposition: "# HELP name help\n# TYPE name type\nname{labels} value\n".
class Metrics {
 public:
  void gauge(const std::string& name, const std::string& help, double value,
             const std::string& labels = {});
  void counter(const std::string& name, const std::string& help, double value,
               const std::string& labels = {});
  [[nodiscard]] const std::string& text() const noexcept { return text_; }

 private:
  void add(const std::string& name, const std::string& help, const char* type, double value,
           const std::string& labels);
  std::string text_;
  std::vector<std::string> declared_;
};

}  // namespace stepwise
