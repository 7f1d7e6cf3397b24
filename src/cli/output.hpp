#pragma once
// Logging (stderr, redacted) and the runner's events rendered as log lines.
#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "stepwise/runner.hpp"

namespace stepwise::cli {

// Sets up spdlog on stderr. Every line passes through redact() with the secrets known at the
// time it is written; `secrets` is read live, so secrets learned later are masked too.
// format "text": "2026-11-26T11:00:00.000Z info message"; "json": one object per line with
// time, level, message and the fields of the current LogFields scope.
void setup_logging(const std::string& level, const std::string& format,
                   const std::vector<std::string>* secrets);

// Erases a progress line left on the terminal, before writing outside the logger.
void end_status_line();

// Structured fields (version, file, step, elapsed_ms ...) attached to the log lines written
// while this object lives, in JSON format; text lines carry them in their message already.
class LogFields {
 public:
  explicit LogFields(nlohmann::json fields);
  ~LogFields();
  LogFields(const LogFields&) = delete;
  LogFields& operator=(const LogFields&) = delete;

 private:
  nlohmann::json* previous_;
  nlohmann::json fields_;
};

// Logs runner events on stderr: plain lines that read well in `kubectl logs` (no animation).
class LogReporter final : public Reporter {
 public:
  // For a run made of several runner calls (upgrade stages): step n/N over the whole run, the
  // release each version belongs to, elapsed time and an estimate of the time remaining.
  void track_overall(std::size_t total_steps, std::map<Version, std::string> release_of);

  void warning(std::string_view message) override;
  void lock_waiting(std::chrono::milliseconds waited, const std::string& holder) override;
  void lock_acquired(std::chrono::milliseconds waited) override;
  void plan_ready(const Plan& plan) override;
  void step_started(const Step& step, std::size_t index, std::size_t total) override;
  void step_finished(const Step& step, std::size_t index, std::size_t total,
                     std::chrono::milliseconds took) override;
  void statement_skipped(const Step& step, std::string_view why) override;
  // One line per interval; on a terminal, one line updated in place.
  void step_progress(const Step& step, std::size_t index, std::size_t total,
                     const StepProgress& progress) override;

 private:
  std::size_t overall_total_ = 0;
  std::size_t overall_done_ = 0;
  std::map<Version, std::string> release_of_;
  std::chrono::steady_clock::time_point overall_start_{};
  void retrying(const Step& step, int attempt, int max_attempts, std::chrono::milliseconds wait,
                std::string_view reason) override;
};

}  // namespace stepwise::cli
