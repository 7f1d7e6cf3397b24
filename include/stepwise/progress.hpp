#pragma once
// Live progress of a long step: what its statement is doing, read from PostgreSQL's progress
// views and pg_stat_activity on a second connection, opened only once a step has run longer
// than the interval. Read-only and best effort: a monitor that cannot look degrades to
// elapsed-time reports, never to a failed step.
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "stepwise/database.hpp"

namespace stepwise {

// A session the step waits for (pg_blocking_pids). Its query text only when asked for: it may
// hold data.
struct Blocker {
  int pid = 0;
  std::string application_name;
  std::string state;  // "idle in transaction", "active" ...
  std::optional<std::chrono::milliseconds> transaction_age;
  std::string query;  // empty unless --show-blocking-query
};

struct StepProgress {
  std::chrono::milliseconds elapsed{0};
  // What the statement does: "building index: scanning table", "COPY FROM", "CLUSTER: ...".
  std::string activity;
  std::optional<long long> done;
  std::optional<long long> total;
  std::string unit;                                    // "blocks", "tuples", "bytes"
  std::optional<std::chrono::milliseconds> remaining;  // for the current phase
  std::string wait_event;                              // "Lock/relation"; empty when running
  std::vector<Blocker> blockers;
  // False when the monitor could not look (no permission, a pooler, an error): elapsed only.
  bool detailed = true;
};

// Estimates the time left in a phase from the rate seen since the phase was first observed.
class PhaseRate {
 public:
  // Feed one observation; returns the estimate, if the rate allows one.
  std::optional<std::chrono::milliseconds> observe(const std::string& phase, long long done,
                                                   long long total,
                                                   std::chrono::steady_clock::time_point now);

 private:
  std::string phase_;
  long long first_done_ = 0;
  std::chrono::steady_clock::time_point first_seen_{};
};

// Turns the monitor query's row into a StepProgress (pure; unit-tested). Columns: state,
// wait_event_type, wait_event, then per progress view (create_index, copy, cluster, vacuum,
// analyze) its phase/command and done/total counters; see progress_monitor.cpp.
[[nodiscard]] StepProgress progress_from_row(const Row& row);

// One line for logs: "12s: building index: scanning table, 1200 of 2667 blocks (45%), about 15s
// left" / "12s: waiting for Lock/relation, blocked by pid 4242 (psql, idle in transaction,
// transaction open 2m10s)".
[[nodiscard]] std::string describe_progress(const StepProgress& p);

class ProgressMonitor {
 public:
  struct Options {
    std::chrono::milliseconds interval{5'000};  // first report after this, then every interval
    bool show_blocking_query = false;
    // The server session running the steps; 0 when unknown (through a pooler): elapsed only.
    int backend_pid = 0;
    std::function<std::unique_ptr<Connection>()> open_connection;
    // Called once, the first time the monitor cannot look (then it reports elapsed time only).
    std::function<void(const std::string&)> on_degraded;
  };
  using Sink = std::function<void(const StepProgress&)>;

  explicit ProgressMonitor(Options options);
  ~ProgressMonitor();
  ProgressMonitor(const ProgressMonitor&) = delete;
  ProgressMonitor& operator=(const ProgressMonitor&) = delete;

  // Reports to `sink` (from the monitor's thread) while the returned Watch lives.
  class Watch {
   public:
    Watch(ProgressMonitor& monitor, Sink sink);
    ~Watch();
    Watch(const Watch&) = delete;
    Watch& operator=(const Watch&) = delete;

   private:
    ProgressMonitor& monitor_;
  };

 private:
  void start(Sink sink);
  void stop();
  void loop();
  [[nodiscard]] StepProgress look();
  void degrade(const std::string& why);

  Options options_;
  std::unique_ptr<Connection> conn_;  // used by the monitor thread only
  bool degraded_ = false;
  PhaseRate rate_;
  std::thread thread_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable idle_;
  Sink sink_;
  std::chrono::steady_clock::time_point started_{};
  unsigned long long generation_ = 0;  // changes at every start, stop and shutdown
  bool watching_ = false;
  bool stop_requested_ = false;
  bool in_sink_ = false;
  bool shutdown_ = false;
  Connection* busy_ = nullptr;  // the connection a look is running on, to cancel at stop
};

}  // namespace stepwise
