#include "output.hpp"

#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>

#include <sys/ioctl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <mutex>

#include "stepwise/duration.hpp"
#include "stepwise/errors.hpp"
#include "stepwise/redact.hpp"
#include "stepwise/text.hpp"

namespace stepwise::cli {
namespace {

thread_local nlohmann::json* t_fields = nullptr;

// A progress line updated in place, on a terminal only: every other line first erases it.
std::mutex g_stderr_mutex;
bool g_status_capable = false;
bool g_status_open = false;
const std::vector<std::string>* g_secrets = nullptr;
constexpr const char* kEraseLine = "\r\033[K";

void erase_status_line() {
  if (!g_status_open) return;
  std::fputs(kEraseLine, stderr);
  g_status_open = false;
}

// Writes `text` as the status line; false when stderr is no terminal (or logs are JSON).
bool write_status_line(const std::string& text) {
  if (!g_status_capable) return false;
  std::lock_guard<std::mutex> g(g_stderr_mutex);
  auto line = redact(text, g_secrets ? *g_secrets : std::vector<std::string>{});
  winsize ws{};
  // A line longer than the terminal wraps, and "\r" would then redraw only its last part.
  if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 1 && line.size() >= ws.ws_col)
    line = line.substr(0, ws.ws_col - 1);
  std::fputs(kEraseLine, stderr);
  std::fwrite(line.data(), 1, line.size(), stderr);
  std::fflush(stderr);
  g_status_open = true;
  return true;
}

class RedactingStderrSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  RedactingStderrSink(const std::vector<std::string>* secrets, bool json)
      : secrets_(secrets), json_(json) {}

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    const auto& secrets = secrets_ ? *secrets_ : std::vector<std::string>{};
    std::string line;
    if (json_) {
      nlohmann::json j = t_fields ? *t_fields : nlohmann::json::object();
      spdlog::memory_buf_t time;
      time_formatter_.format(msg, time);
      j["time"] = std::string(time.data(), time.size() - 1);  // without the pattern's newline
      j["level"] = std::string(spdlog::level::to_string_view(msg.level).data(),
                               spdlog::level::to_string_view(msg.level).size());
      j["message"] = redact(std::string_view(msg.payload.data(), msg.payload.size()), secrets);
      line = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
    } else {
      spdlog::memory_buf_t formatted;
      formatter_->format(msg, formatted);
      line = redact(std::string_view(formatted.data(), formatted.size()), secrets);
    }
    std::lock_guard<std::mutex> g(g_stderr_mutex);
    erase_status_line();
    std::fwrite(line.data(), 1, line.size(), stderr);
  }
  void flush_() override { std::fflush(stderr); }

 private:
  const std::vector<std::string>* secrets_;
  bool json_;
  spdlog::pattern_formatter time_formatter_{"%Y-%m-%dT%H:%M:%S.%eZ",
                                            spdlog::pattern_time_type::utc};
};

}  // namespace

void end_status_line() {
  std::lock_guard<std::mutex> g(g_stderr_mutex);
  erase_status_line();
  std::fflush(stderr);
}

LogFields::LogFields(nlohmann::json fields) : previous_(t_fields), fields_(std::move(fields)) {
  t_fields = &fields_;
}
LogFields::~LogFields() {
  t_fields = previous_;
}

void setup_logging(const std::string& level, const std::string& format,
                   const std::vector<std::string>* secrets) {
  if (format != "text" && format != "json")
    throw UsageError("--log-format: invalid value " + printable(format, 40) +
                     " (expected text or json)");
  const auto lvl = spdlog::level::from_str(level);
  if (lvl == spdlog::level::off && level != "off")
    throw UsageError("--log-level: invalid value " + printable(level, 40) +
                     " (expected trace, debug, info, warn, error or off)");
  auto sink = std::make_shared<RedactingStderrSink>(secrets, format == "json");
  const char* term = std::getenv("TERM");
  g_status_capable = format == "text" && isatty(STDERR_FILENO) == 1 &&
                     !(term != nullptr && std::string_view(term) == "dumb");
  g_secrets = secrets;
  auto logger = std::make_shared<spdlog::logger>("stepwise", sink);
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %l %v", spdlog::pattern_time_type::utc);
  logger->set_level(lvl);
  logger->flush_on(spdlog::level::trace);
  spdlog::set_default_logger(logger);
}

void LogReporter::warning(std::string_view message) {
  spdlog::warn("{}", message);
}

void LogReporter::lock_waiting(std::chrono::milliseconds waited, const std::string& holder) {
  LogFields fields({{"event", "lock_waiting"}, {"waited_ms", waited.count()}, {"holder", holder}});
  spdlog::info("waiting for the migration lock ({} so far), held by {}", format_duration(waited),
               holder);
}

void LogReporter::lock_acquired(std::chrono::milliseconds waited) {
  spdlog::debug("took the migration lock after {}", format_duration(waited));
}

void LogReporter::plan_ready(const Plan& plan) {
  if (plan.steps.empty())
    spdlog::info("nothing left to do: another runner applied the pending migrations");
  else
    spdlog::info("{} step(s) to run, version {} -> {}", plan.steps.size(), plan.from, plan.to);
}

void LogReporter::track_overall(std::size_t total_steps,
                                std::map<Version, std::string> release_of) {
  overall_total_ = total_steps;
  overall_done_ = 0;
  release_of_ = std::move(release_of);
  overall_start_ = std::chrono::steady_clock::now();
}

void LogReporter::step_started(const Step& step, std::size_t index, std::size_t total) {
  const auto verb = step.direction == Direction::kUp ? "applying" : "reverting";
  LogFields fields({{"event", "step_started"},
                    {"version", step.migration->version},
                    {"file", step.script().file},
                    {"direction", std::string(to_string(step.direction))},
                    {"step", overall_total_ ? overall_done_ + 1 : index},
                    {"steps", overall_total_ ? overall_total_ : total}});
  if (overall_total_ == 0) {
    spdlog::info("[{}/{}] {} {} ...", index, total, verb, step.script().file);
    return;
  }
  const auto it = release_of_.find(step.migration->version);
  spdlog::info("[{}/{}] release {}: {} {} ...", overall_done_ + 1, overall_total_,
               it == release_of_.end() ? "?" : it->second, verb, step.script().file);
}

void LogReporter::step_finished(const Step& step, std::size_t index, std::size_t total,
                                std::chrono::milliseconds took) {
  LogFields fields({{"event", "step_finished"},
                    {"version", step.migration->version},
                    {"file", step.script().file},
                    {"step", overall_total_ ? overall_done_ + 1 : index},
                    {"steps", overall_total_ ? overall_total_ : total},
                    {"duration_ms", took.count()}});
  if (overall_total_ == 0) {
    spdlog::info("[{}/{}] {} done in {}", index, total, step.script().file, format_duration(took));
    return;
  }
  ++overall_done_;
  const auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - overall_start_);
  const auto remaining = elapsed * static_cast<long long>(overall_total_ - overall_done_) /
                         static_cast<long long>(std::max<std::size_t>(overall_done_, 1));
  spdlog::info("[{}/{}] {} done in {}; elapsed {}, about {} remaining", overall_done_,
               overall_total_, step.script().file, format_duration(took), format_duration(elapsed),
               format_duration(remaining));
}

void LogReporter::retrying(const Step& step, int attempt, int max_attempts,
                           std::chrono::milliseconds wait, std::string_view reason) {
  LogFields fields({{"event", "retry"},
                    {"version", step.migration->version},
                    {"file", step.script().file},
                    {"attempt", attempt},
                    {"max_attempts", max_attempts},
                    {"wait_ms", wait.count()}});
  spdlog::warn("{}: {}; retry {}/{} in {}", step.script().file, reason, attempt, max_attempts,
               format_duration(wait));
}

void LogReporter::step_progress(const Step& step, std::size_t index, std::size_t total,
                                const StepProgress& p) {
  const auto n = overall_total_ ? overall_done_ + 1 : index;
  const auto of = overall_total_ ? overall_total_ : total;
  nlohmann::json blockers = nlohmann::json::array();
  for (const auto& b : p.blockers) {
    nlohmann::json j = {
        {"pid", b.pid}, {"application_name", b.application_name}, {"state", b.state}};
    if (b.transaction_age) j["transaction_age_ms"] = b.transaction_age->count();
    if (!b.query.empty()) j["query"] = b.query;
    blockers.push_back(std::move(j));
  }
  nlohmann::json fields = {{"event", "step_progress"},
                           {"version", step.migration->version},
                           {"file", step.script().file},
                           {"step", n},
                           {"steps", of},
                           {"elapsed_ms", p.elapsed.count()},
                           {"detailed", p.detailed}};
  if (!p.activity.empty()) fields["activity"] = p.activity;
  if (p.done) fields["done"] = *p.done;
  if (p.total) fields["total"] = *p.total;
  if (!p.unit.empty() && p.done) fields["unit"] = p.unit;
  if (p.remaining) fields["remaining_ms"] = p.remaining->count();
  if (!p.wait_event.empty()) fields["wait_event"] = p.wait_event;
  if (!p.blockers.empty()) fields["blocked_by"] = std::move(blockers);
  const auto text = fmt::format("[{}/{}] {}: {}", n, of, step.script().file, describe_progress(p));
  if (write_status_line(text)) return;
  LogFields scope(std::move(fields));
  spdlog::info("{}", text);
}

void LogReporter::statement_skipped(const Step& step, std::string_view why) {
  spdlog::info("{}: {}", step.script().file, why);
}

}  // namespace stepwise::cli
