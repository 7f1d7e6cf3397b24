#include <fmt/format.h>

#include <charconv>

#include "stepwise/duration.hpp"
#include "stepwise/errors.hpp"
#include "stepwise/progress.hpp"
#include "stepwise/text.hpp"

namespace stepwise {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

namespace {

std::optional<long long> number(const Row& row, std::size_t i) {
  if (i >= row.size() || !row[i]) return std::nullopt;
  long long v = 0;
  const auto& s = *row[i];
  if (std::from_chars(s.data(), s.data() + s.size(), v).ec != std::errc()) return std::nullopt;
  return v;
}

std::string text_at(const Row& row, std::size_t i) {
  return i < row.size() && row[i] ? *row[i] : std::string();
}

// Columns of kProgressQuery, in order.
enum Column : std::size_t {
  kState,
  kWaitType,
  kWaitEvent,
  kIndexActivity,
  kIndexBlocksDone,
  kIndexBlocksTotal,
  kIndexTuplesDone,
  kIndexTuplesTotal,
  kCopyCommand,
  kCopyBytesDone,
  kCopyBytesTotal,
  kCopyTuplesDone,
  kClusterActivity,
  kClusterBlocksDone,
  kClusterBlocksTotal,
  kVacuumActivity,
  kVacuumBlocksDone,
  kVacuumBlocksTotal,
  kAnalyzeActivity,
  kAnalyzeBlocksDone,
  kAnalyzeBlocksTotal,
};

// One round trip: the step's session and whichever progress view has a row for it.
constexpr const char* kProgressQuery =
    "SELECT a.state, a.wait_event_type, a.wait_event,"
    " ci.command || ': ' || ci.phase, ci.blocks_done, ci.blocks_total, ci.tuples_done,"
    " ci.tuples_total,"
    " cp.command, cp.bytes_processed, cp.bytes_total, cp.tuples_processed,"
    " cl.command || ': ' || cl.phase, cl.heap_blks_scanned, cl.heap_blks_total,"
    " 'VACUUM: ' || va.phase, va.heap_blks_scanned, va.heap_blks_total,"
    " 'ANALYZE: ' || an.phase, an.sample_blks_scanned, an.sample_blks_total"
    " FROM pg_catalog.pg_stat_activity a"
    " LEFT JOIN pg_catalog.pg_stat_progress_create_index ci ON ci.pid = a.pid"
    " LEFT JOIN pg_catalog.pg_stat_progress_copy cp ON cp.pid = a.pid"
    " LEFT JOIN pg_catalog.pg_stat_progress_cluster cl ON cl.pid = a.pid"
    " LEFT JOIN pg_catalog.pg_stat_progress_vacuum va ON va.pid = a.pid"
    " LEFT JOIN pg_catalog.pg_stat_progress_analyze an ON an.pid = a.pid"
    " WHERE a.pid = $1";

// Before PostgreSQL 14 (no pg_stat_progress_copy) and on servers without progress views.
constexpr const char* kActivityQuery =
    "SELECT state, wait_event_type, wait_event FROM pg_catalog.pg_stat_activity WHERE pid = $1";

constexpr const char* kBlockersQuery =
    "SELECT b.pid, coalesce(b.application_name, ''), coalesce(b.state, ''),"
    " (extract(epoch FROM now() - b.xact_start) * 1000)::bigint,"
    " CASE WHEN $2::boolean THEN coalesce(b.query, '') ELSE '' END"
    " FROM pg_catalog.pg_stat_activity b"
    " WHERE b.pid = ANY (pg_catalog.pg_blocking_pids($1)) ORDER BY b.pid";

// A query on one line: runs of white space become one space; cut at `limit` characters.
std::string flattened(std::string_view query, std::size_t limit) {
  std::string out;
  for (char c : query) {
    const bool space = c == ' ' || c == '\n' || c == '\r' || c == '\t';
    if (space && (out.empty() || out.back() == ' ')) continue;
    out += space ? ' ' : c;
    if (out.size() >= limit) return one_line(out, limit) + "...";
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return one_line(out, limit);
}

}  // namespace

std::optional<milliseconds> PhaseRate::observe(const std::string& phase, long long done,
                                               long long total, Clock::time_point now) {
  if (phase != phase_ || done < first_done_) {
    phase_ = phase;
    first_done_ = done;
    first_seen_ = now;
    return std::nullopt;
  }
  const auto seen = std::chrono::duration_cast<milliseconds>(now - first_seen_).count();
  const auto progressed = done - first_done_;
  if (seen <= 0 || progressed <= 0 || total <= done) return std::nullopt;
  const double per_ms = static_cast<double>(progressed) / static_cast<double>(seen);
  return milliseconds(static_cast<long long>(static_cast<double>(total - done) / per_ms));
}

StepProgress progress_from_row(const Row& row) {
  StepProgress p;
  const auto wait_type = text_at(row, kWaitType);
  if (!wait_type.empty() && text_at(row, kState) == "active")
    p.wait_event = wait_type + "/" + text_at(row, kWaitEvent);
  const auto counted = [&p](const char* unit, std::optional<long long> done,
                            std::optional<long long> total) {
    p.unit = unit;
    p.done = done;
    p.total = total && *total > 0 ? total : std::nullopt;
  };
  if (auto index = text_at(row, kIndexActivity); !index.empty()) {
    p.activity = std::move(index);
    // Table and index scans count blocks; sorting and loading the tree count tuples.
    if (number(row, kIndexBlocksTotal).value_or(0) > 0)
      counted("blocks", number(row, kIndexBlocksDone), number(row, kIndexBlocksTotal));
    else if (number(row, kIndexTuplesTotal).value_or(0) > 0)
      counted("tuples", number(row, kIndexTuplesDone), number(row, kIndexTuplesTotal));
  } else if (auto copy = text_at(row, kCopyCommand); !copy.empty()) {
    p.activity = std::move(copy);
    if (number(row, kCopyBytesTotal).value_or(0) > 0)
      counted("bytes", number(row, kCopyBytesDone), number(row, kCopyBytesTotal));
    else
      counted("tuples", number(row, kCopyTuplesDone), std::nullopt);
  } else if (auto cluster = text_at(row, kClusterActivity); !cluster.empty()) {
    p.activity = std::move(cluster);
    counted("blocks", number(row, kClusterBlocksDone), number(row, kClusterBlocksTotal));
  } else if (auto vacuum = text_at(row, kVacuumActivity); !vacuum.empty()) {
    p.activity = std::move(vacuum);
    counted("blocks", number(row, kVacuumBlocksDone), number(row, kVacuumBlocksTotal));
  } else if (auto analyze = text_at(row, kAnalyzeActivity); !analyze.empty()) {
    p.activity = std::move(analyze);
    counted("blocks", number(row, kAnalyzeBlocksDone), number(row, kAnalyzeBlocksTotal));
  }
  return p;
}

std::string describe_progress(const StepProgress& p) {
  std::string out = format_duration(p.elapsed) + " elapsed";
  if (!p.activity.empty()) out += ", " + p.activity;
  if (p.done && p.total)
    out += fmt::format(", {} of {} {} ({}%)", *p.done, *p.total, p.unit,
                       *p.total > 0 ? *p.done * 100 / *p.total : 0);
  else if (p.done)
    out += fmt::format(", {} {} so far", *p.done, p.unit);
  if (p.remaining) out += ", about " + format_duration(*p.remaining) + " left in this phase";
  if (!p.wait_event.empty()) out += ", waiting for " + p.wait_event;
  for (const auto& b : p.blockers) {
    out += fmt::format(", blocked by pid {} ({}, {}", b.pid,
                       b.application_name.empty() ? "no application_name" : b.application_name,
                       b.state.empty() ? "state not visible to this role" : b.state);
    if (b.transaction_age) out += ", transaction open " + format_duration(*b.transaction_age);
    out += ")";
    if (!b.query.empty()) out += ": " + flattened(b.query, 200);
  }
  if (!p.detailed) out += " (no details: the monitor cannot see the step's session)";
  return out;
}

ProgressMonitor::ProgressMonitor(Options options) : options_(std::move(options)) {}

ProgressMonitor::~ProgressMonitor() {
  {
    std::lock_guard<std::mutex> g(mutex_);
    shutdown_ = true;
    ++generation_;
    if (busy_ != nullptr) busy_->cancel();
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

ProgressMonitor::Watch::Watch(ProgressMonitor& monitor, Sink sink) : monitor_(monitor) {
  monitor_.start(std::move(sink));
}

ProgressMonitor::Watch::~Watch() {
  monitor_.stop();
}

// One thread for the whole run, armed for each step: a step costs a notify, not a thread.
void ProgressMonitor::start(Sink sink) {
  stop();
  {
    std::lock_guard<std::mutex> g(mutex_);
    sink_ = std::move(sink);
    started_ = Clock::now();
    ++generation_;
    watching_ = true;
    stop_requested_ = false;
    if (!thread_.joinable()) thread_ = std::thread([this] { loop(); });
  }
  wake_.notify_all();
}

void ProgressMonitor::stop() {
  std::unique_lock<std::mutex> lk(mutex_);
  if (!watching_) return;
  watching_ = false;
  stop_requested_ = true;
  ++generation_;
  if (busy_ != nullptr) busy_->cancel();
  wake_.notify_all();
  // The sink refers to the step that is ending: no call may be under way when this returns.
  idle_.wait(lk, [this] { return !in_sink_; });
}

void ProgressMonitor::loop() {
  std::unique_lock<std::mutex> lk(mutex_);
  while (true) {
    wake_.wait(lk, [this] { return shutdown_ || watching_; });
    if (shutdown_) return;
    const auto generation = generation_;
    const auto started = started_;
    const Sink sink = sink_;
    const auto ended = [&] { return shutdown_ || generation_ != generation; };
    bool first = true;
    auto next = started + options_.interval;
    while (!wake_.wait_until(lk, next, ended)) {
      lk.unlock();
      if (first) rate_ = PhaseRate{};
      first = false;
      const auto elapsed = std::chrono::duration_cast<milliseconds>(Clock::now() - started);
      StepProgress progress;
      try {
        progress = look();
      } catch (...) {
        progress = StepProgress{};
        progress.detailed = false;
      }
      progress.elapsed = elapsed;
      lk.lock();
      if (ended()) break;  // the step ended while we looked: a late report would mislead
      in_sink_ = true;
      lk.unlock();
      try {
        sink(progress);
      } catch (...) {
      }
      lk.lock();
      in_sink_ = false;
      idle_.notify_all();
      next += options_.interval;
      if (next < Clock::now()) next = Clock::now() + options_.interval;
    }
  }
}

void ProgressMonitor::degrade(const std::string& why) {
  if (degraded_) return;
  degraded_ = true;
  conn_.reset();
  if (options_.on_degraded) options_.on_degraded(why);
}

StepProgress ProgressMonitor::look() {
  StepProgress p;
  p.detailed = false;
  if (options_.backend_pid == 0)
    degrade("the step's server session is unknown through a connection pooler");
  if (degraded_) return p;
  const Params pid{std::to_string(options_.backend_pid)};
  try {
    if (!conn_) {
      conn_ = options_.open_connection();
      // Read-only and short: looking must never hold anything up.
      conn_->execute(
          "SET default_transaction_read_only = on; SET statement_timeout = 2000;"
          " SET lock_timeout = 1000; SET application_name = 'stepwise progress'");
    }
    {
      std::lock_guard<std::mutex> g(mutex_);
      busy_ = conn_.get();
    }
    Rows rows;
    try {
      rows = conn_->query(kProgressQuery, pid);
    } catch (const DbError& e) {
      // 42P01 / 42703: an older server without some progress view or column.
      if (e.sqlstate() != "42P01" && e.sqlstate() != "42703") throw;
      rows = conn_->query(kActivityQuery, pid);
    }
    if (rows.empty()) {
      std::lock_guard<std::mutex> g(mutex_);
      busy_ = nullptr;
      return p;  // the statement just ended
    }
    p = progress_from_row(rows[0]);
    if (p.done && p.total) p.remaining = rate_.observe(p.activity, *p.done, *p.total, Clock::now());
    if (p.wait_event.starts_with("Lock/")) {
      for (const auto& r :
           conn_->query(kBlockersQuery, {std::to_string(options_.backend_pid),
                                         options_.show_blocking_query ? "true" : "false"})) {
        Blocker b;
        b.pid = static_cast<int>(number(r, 0).value_or(0));
        b.application_name = text_at(r, 1);
        b.state = text_at(r, 2);
        if (auto age = number(r, 3)) b.transaction_age = milliseconds(*age);
        b.query = text_at(r, 4);
        p.blockers.push_back(std::move(b));
      }
    }
    std::lock_guard<std::mutex> g(mutex_);
    busy_ = nullptr;
  } catch (const Error& e) {
    {
      std::lock_guard<std::mutex> g(mutex_);
      busy_ = nullptr;
      if (stop_requested_ || shutdown_) return p;
    }
    degrade(fmt::format("cannot read the step's progress: {}", first_line(e.what())));
    p = StepProgress{};
    p.detailed = false;
  }
  return p;
}

}  // namespace stepwise
