#include <fmt/format.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>

#include <algorithm>
#include <cmath>
#include <ctime>

#include "stepwise/duration.hpp"
#include "stepwise/redact.hpp"
#include "stepwise/serve.hpp"

namespace stepwise {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

namespace {
std::string utc_now() {
  const auto now = std::chrono::system_clock::now();
  const auto t = std::chrono::system_clock::to_time_t(now);
  const auto ms = std::chrono::duration_cast<milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  return fmt::format("{}.{:03}Z", buf, ms);
}

bool terminal(const std::string& type) {
  return type == "finished" || type == "failed" || type == "cancelled";
}
}  // namespace

EventLog::EventLog(std::vector<std::string> secrets) : secrets_(std::move(secrets)) {
  overall_start_ = Clock::now();
}

void EventLog::track_overall(std::size_t total_steps, std::map<Version, std::string> release_of) {
  std::lock_guard<std::mutex> g(mutex_);
  overall_total_ = total_steps;
  overall_done_ = 0;
  release_of_ = std::move(release_of);
  overall_start_ = Clock::now();
}

std::string EventLog::release_of(const Version& v) const {
  const auto it = release_of_.find(v);
  return it == release_of_.end() ? std::string() : it->second;
}

void EventLog::append_locked(const std::string& type, nlohmann::json fields) {
  if (closed_) return;
  if (!fields.is_object()) fields = nlohmann::json::object();
  Event e;
  e.id = events_.size() + 1;
  e.type = type;
  fields["type"] = type;
  fields["id"] = e.id;
  fields["time"] = utc_now();
  // Whatever an event carries (an error message, a holder, a path) passes the redaction.
  auto text =
      redact(fields.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace), secrets_);
  try {
    e.data = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception&) {
    e.data = {{"type", type}, {"id", e.id}, {"time", fields["time"]}};
  }
  events_.push_back(std::move(e));
  if (terminal(type)) closed_ = true;
  changed_.notify_all();
}

void EventLog::emit(const std::string& type, nlohmann::json fields) {
  std::lock_guard<std::mutex> g(mutex_);
  append_locked(type, std::move(fields));
}

std::vector<EventLog::Event> EventLog::after(std::uint64_t after, milliseconds wait) {
  std::unique_lock<std::mutex> lock(mutex_);
  changed_.wait_for(lock, wait, [&] { return events_.size() > after || closed_; });
  std::vector<Event> out;
  for (auto i = static_cast<std::size_t>(after); i < events_.size(); ++i) out.push_back(events_[i]);
  return out;
}

bool EventLog::closed() const {
  std::lock_guard<std::mutex> g(mutex_);
  return closed_;
}

std::uint64_t EventLog::last_id() const {
  std::lock_guard<std::mutex> g(mutex_);
  return events_.size();
}

void EventLog::wake_all() {
  changed_.notify_all();
}

nlohmann::json EventLog::current() const {
  std::lock_guard<std::mutex> g(mutex_);
  auto c = current_;
  c["steps_done"] = overall_done_;
  c["steps"] = overall_total_;
  c["elapsed_ms"] = std::chrono::duration_cast<milliseconds>(Clock::now() - overall_start_).count();
  return c;
}

std::uint64_t EventLog::lock_waits() const {
  std::lock_guard<std::mutex> g(mutex_);
  return lock_waits_;
}

milliseconds EventLog::lock_waited() const {
  std::lock_guard<std::mutex> g(mutex_);
  return lock_waited_;
}

std::string EventLog::current_file() const {
  std::lock_guard<std::mutex> g(mutex_);
  return current_file_;
}

void EventLog::warning(std::string_view message) {
  emit("warning", {{"message", std::string(message)}});
}

void EventLog::lock_waiting(milliseconds waited, const std::string& holder) {
  std::lock_guard<std::mutex> g(mutex_);
  if (waited <= last_wait_seen_ || last_wait_seen_.count() == 0) ++lock_waits_;
  lock_waited_ += waited > last_wait_seen_ ? waited - last_wait_seen_ : waited;
  last_wait_seen_ = waited;
  append_locked("lock_waiting", {{"waited_ms", waited.count()}, {"holder", holder}});
}

void EventLog::lock_acquired(milliseconds waited) {
  std::lock_guard<std::mutex> g(mutex_);
  last_wait_seen_ = milliseconds(0);
  append_locked("lock_acquired", {{"waited_ms", waited.count()}});
}

void EventLog::plan_ready(const Plan& plan) {
  if (plan.steps.empty())
    emit("plan_ready", {{"steps", 0}, {"note", "another runner applied the pending migrations"}});
}

void EventLog::step_started(const Step& step, std::size_t index, std::size_t total) {
  std::lock_guard<std::mutex> g(mutex_);
  step_start_ = Clock::now();
  current_file_ = step.script().file;
  const auto n = overall_total_ ? overall_done_ + 1 : index;
  const auto of = overall_total_ ? overall_total_ : total;
  nlohmann::json j{{"step", n},
                   {"steps", of},
                   {"release", release_of(step.migration->version)},
                   {"version", step.migration->version},
                   {"file", step.script().file},
                   {"direction", std::string(to_string(step.direction))},
                   {"transaction", step.script().tx == TxMode::kTransaction}};
  current_ = j;
  current_["state"] = "running";
  append_locked("step_started", std::move(j));
}

void EventLog::step_finished(const Step& step, std::size_t index, std::size_t total,
                             milliseconds took) {
  std::lock_guard<std::mutex> g(mutex_);
  const auto n = overall_total_ ? overall_done_ + 1 : index;
  const auto of = overall_total_ ? overall_total_ : total;
  if (overall_total_) ++overall_done_;
  const auto done = overall_total_ ? overall_done_ : index;
  const auto elapsed = std::chrono::duration_cast<milliseconds>(Clock::now() - overall_start_);
  const auto remaining = elapsed * static_cast<long long>(of > done ? of - done : 0) /
                         static_cast<long long>(std::max<std::size_t>(done, 1));
  nlohmann::json j{{"step", n},
                   {"steps", of},
                   {"release", release_of(step.migration->version)},
                   {"version", step.migration->version},
                   {"file", step.script().file},
                   {"duration_ms", took.count()},
                   {"elapsed_ms", elapsed.count()},
                   {"remaining_ms", remaining.count()}};
  current_ = j;
  current_["state"] = "done";
  append_locked("step_finished", std::move(j));
}

void EventLog::statement_skipped(const Step& step, std::string_view why) {
  emit("statement_skipped", {{"file", step.script().file}, {"why", std::string(why)}});
}

void EventLog::step_progress(const Step& step, std::size_t index, std::size_t total,
                             const StepProgress& p) {
  std::lock_guard<std::mutex> g(mutex_);
  nlohmann::json j{{"step", overall_total_ ? overall_done_ + 1 : index},
                   {"steps", overall_total_ ? overall_total_ : total},
                   {"release", release_of(step.migration->version)},
                   {"file", step.script().file},
                   {"elapsed_ms", p.elapsed.count()},
                   {"detailed", p.detailed},
                   {"text", describe_progress(p)}};
  if (!p.activity.empty()) j["activity"] = p.activity;
  if (p.done) j["done"] = *p.done;
  if (p.total) j["total"] = *p.total;
  if (!p.unit.empty() && p.done) j["unit"] = p.unit;
  if (p.remaining) j["remaining_ms"] = p.remaining->count();
  if (!p.wait_event.empty()) j["wait_event"] = p.wait_event;
  if (!p.blockers.empty()) {
    nlohmann::json b = nlohmann::json::array();
    for (const auto& x : p.blockers)
      b.push_back({{"pid", x.pid}, {"application_name", x.application_name}, {"state", x.state}});
    j["blocked_by"] = std::move(b);
  }
  append_locked("step_progress", std::move(j));
}

void EventLog::retrying(const Step& step, int attempt, int max_attempts, milliseconds wait,
                        std::string_view reason) {
  emit("retrying", {{"file", step.script().file},
                    {"attempt", attempt},
                    {"max_attempts", max_attempts},
                    {"wait_ms", wait.count()},
                    {"reason", std::string(reason)}});
}

std::string sse_frame(const EventLog::Event& e) {
  // One data line: the JSON is dumped without newlines.
  return fmt::format("id: {}\nevent: {}\ndata: {}\n\n", e.id, e.type,
                     e.data.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}

bool equal_constant_time(std::string_view a, std::string_view b) {
  unsigned char da[SHA256_DIGEST_LENGTH];
  unsigned char db[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(a.data()), a.size(), da);
  SHA256(reinterpret_cast<const unsigned char*>(b.data()), b.size(), db);
  return CRYPTO_memcmp(da, db, SHA256_DIGEST_LENGTH) == 0;
}

AuthResult check_bearer(std::string_view authorization, std::string_view token) {
  constexpr std::string_view kScheme = "bearer ";
  if (authorization.size() <= kScheme.size()) return AuthResult::kMissing;
  for (std::size_t i = 0; i < kScheme.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(authorization[i])) != kScheme[i])
      return AuthResult::kMissing;
  auto given = authorization.substr(kScheme.size());
  while (!given.empty() && given.front() == ' ') given.remove_prefix(1);
  while (!given.empty() && (given.back() == ' ' || given.back() == '\t')) given.remove_suffix(1);
  if (given.empty()) return AuthResult::kMissing;
  return equal_constant_time(given, token) ? AuthResult::kOk : AuthResult::kWrong;
}

void Metrics::add(const std::string& name, const std::string& help, const char* type, double value,
                  const std::string& labels) {
  if (std::find(declared_.begin(), declared_.end(), name) == declared_.end()) {
    declared_.push_back(name);
    text_ += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
  }
  std::string v;
  if (std::isnan(value))
    v = "NaN";
  else if (value == std::floor(value) && std::fabs(value) < 1e15)
    v = fmt::format("{}", static_cast<long long>(value));
  else
    v = fmt::format("{}", value);
  text_ += labels.empty() ? fmt::format("{} {}\n", name, v)
                          : fmt::format("{}{{{}}} {}\n", name, labels, v);
}

void Metrics::gauge(const std::string& name, const std::string& help, double value,
                    const std::string& labels) {
  add(name, help, "gauge", value, labels);
}

void Metrics::counter(const std::string& name, const std::string& help, double value,
                      const std::string& labels) {
  add(name, help, "counter", value, labels);
}

}  // namespace stepwise
