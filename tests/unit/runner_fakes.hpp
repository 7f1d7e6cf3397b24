#pragma once
// The lock and reporter fakes of the runner's unit tests (runner_test.cpp over an in-memory
// attempt log, history_store_test.cpp over the real store and a fake server).
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <deque>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "stepwise/errors.hpp"
#include "stepwise/lock.hpp"
#include "stepwise/runner.hpp"

namespace stepwise::test_fakes {

// Everything the fakes see, in order: "sql: <text>", "lock: ...", "log: ...".
struct Trace {
  std::vector<std::string> events;
  [[nodiscard]] std::size_t index_of(std::string_view event, std::size_t from = 0) const {
    for (std::size_t i = from; i < events.size(); ++i)
      if (events[i] == event) return i;
    return std::string::npos;
  }
  [[nodiscard]] std::size_t count(std::string_view event) const {
    return static_cast<std::size_t>(std::count(events.begin(), events.end(), event));
  }
  [[nodiscard]] std::string dump() const {
    std::string out;
    for (const auto& e : events) out += "  " + e + "\n";
    return out;
  }
};

// A statement the fake server rejects: any text holding `needle`. With `line` > 0 the error
// carries a "LINE n" counted, as the server does, from the start of the text sent.
struct Failure {
  std::string needle;
  std::string message;
  std::string sqlstate;
  int line = 0;  // line within the needle
};
// Throws the DbError of the first failure whose needle `sql` holds.
inline void throw_if_failing(const std::vector<Failure>& failures, std::string_view sql) {
  for (const auto& f : failures) {
    const auto pos = sql.find(f.needle);
    if (pos == std::string_view::npos) continue;
    std::string detail = "ERROR:  " + f.message;
    if (f.line > 0) {
      const auto before =
          std::count(sql.begin(), sql.begin() + static_cast<std::ptrdiff_t>(pos), '\n');
      detail += "\nLINE " + std::to_string(before + f.line) + ": ...";
    }
    throw DbError(f.message, f.sqlstate, detail);
  }
}

class FakeLock final : public Lock {
 public:
  explicit FakeLock(Trace& trace) : trace_(trace) {}
  std::deque<bool> answers;  // each try takes the next; none left: the lock is free
  std::deque<bool> shared_answers;
  bool shared_mode = false;
  int attempts = 0, acquired = 0, released = 0, shared_attempts = 0, shared_held = 0;

  bool try_acquire() override {
    ++attempts;
    const bool ok = next(answers);
    trace_.events.emplace_back(ok ? "lock: acquire" : "lock: busy");
    if (ok) ++acquired;
    return ok;
  }
  void release() override {
    ++released;
    trace_.events.emplace_back("lock: release");
  }
  std::string holder() override { return "backend pid 99 (other-runner)"; }
  std::string describe() const override { return "fake lock"; }
  bool has_shared_mode() const override { return shared_mode; }
  std::string held_check_sql() override { return "held?"; }
  bool try_acquire_shared() override {
    ++shared_attempts;
    const bool ok = next(shared_answers);
    trace_.events.emplace_back(ok ? "lock: shared" : "lock: shared busy");
    if (ok) ++shared_held;
    return ok;
  }
  void release_shared() override {
    --shared_held;
    trace_.events.emplace_back("lock: shared release");
  }

 private:
  static bool next(std::deque<bool>& q) {
    if (q.empty()) return true;
    const bool ok = q.front();
    q.pop_front();
    return ok;
  }
  Trace& trace_;
};

class RecordingReporter final : public Reporter {
 public:
  void warning(std::string_view m) override { warnings.emplace_back(m); }
  void lock_acquired(std::chrono::milliseconds) override { ++locks; }
  void plan_ready(const Plan& p) override { plans.push_back(p.steps.size()); }
  void step_started(const Step& s, std::size_t i, std::size_t total) override {
    started.push_back(s.migration->version);
    indexes.emplace_back(i, total);
  }
  void step_finished(const Step& s, std::size_t, std::size_t, std::chrono::milliseconds) override {
    finished.push_back(s.migration->version);
  }
  void statement_skipped(const Step&, std::string_view why) override { skipped.emplace_back(why); }

  std::vector<std::string> warnings, skipped;
  int locks = 0;
  std::vector<std::size_t> plans;
  std::vector<Version> started, finished;
  std::vector<std::pair<std::size_t, std::size_t>> indexes;
};

}  // namespace stepwise::test_fakes
