// stepwise serve: the upgrades API (Sourcegraph RFC 850's VerifyDatabase, the upgrade plan, the
// upgrade itself with live progress) and the maintenance page, over HTTP (an HttpTransport:
// cpp-httplib in the stepwise-http.so module, loaded here only).
#include <fmt/format.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <signal.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <mutex>
#include <sstream>
#include <thread>

#include "../serve/http_transport.hpp"
#include "commands.hpp"
#include "output.hpp"
#include "stepwise/duration.hpp"
#include "stepwise/redact.hpp"
#include "stepwise/serve.hpp"
#include "stepwise/text.hpp"
#include "stepwise/upgrade.hpp"
#include "stepwise/version.hpp"

namespace stepwise::cli {

using serve::ChunkSink;
using serve::HttpRequest;
using serve::HttpResponse;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

namespace {

std::string utc_time() {
  const auto t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string random_id() {
  unsigned char bytes[12];
  if (RAND_bytes(bytes, sizeof bytes) != 1)
    throw Error(ExitCode::kFailed, "cannot draw random bytes for an upgrade id");
  std::string out;
  for (auto b : bytes) out += fmt::format("{:02x}", b);
  return out;
}

std::string exit_code_meaning(int code) {
  switch (code) {
    case 0:
      return "the database is what this build expects";
    case 10:
      return "migrations are pending (or stepwise's log table is missing)";
    case 11:
      return "the database has versions this build does not know (a newer release ran)";
    case 12:
      return "an applied migration's file changed since it ran";
    case 13:
      return "the latest attempt of a migration failed or did not finish";
    case 14:
      return "the schema differs from the one this release expects (drift)";
    default:
      return "";
  }
}

// The connection string as `Context::connect` would choose it (for learning its secrets).
std::string main_database_url(const GlobalOptions& o) {
  if (!o.database_url.empty()) return o.database_url;
  for (const char* var : {"STEPWISE_DATABASE_URL", "DATABASE_URL"})
    if (const char* v = std::getenv(var); v != nullptr && *v != '\0') return v;
  return {};
}

struct HttpError {
  HttpError(int s, std::string m, std::string h = {})
      : status(s), message(std::move(m)), hint(std::move(h)) {}
  int status;
  std::string message;
  std::string hint;
};

// The runner's events to the upgrade's event log and to stderr, as `upgrade` logs them.
class TeeReporter final : public Reporter {
 public:
  TeeReporter(Reporter& a, Reporter& b) : a_(a), b_(b) {}
  void warning(std::string_view m) override {
    a_.warning(m);
    b_.warning(m);
  }
  void lock_waiting(milliseconds w, const std::string& h) override {
    a_.lock_waiting(w, h);
    b_.lock_waiting(w, h);
  }
  void lock_acquired(milliseconds w) override {
    a_.lock_acquired(w);
    b_.lock_acquired(w);
  }
  void plan_ready(const Plan& p) override {
    a_.plan_ready(p);
    b_.plan_ready(p);
  }
  void step_started(const Step& s, std::size_t i, std::size_t n) override {
    a_.step_started(s, i, n);
    b_.step_started(s, i, n);
  }
  void step_finished(const Step& s, std::size_t i, std::size_t n, milliseconds t) override {
    a_.step_finished(s, i, n, t);
    b_.step_finished(s, i, n, t);
  }
  void statement_skipped(const Step& s, std::string_view why) override {
    a_.statement_skipped(s, why);
    b_.statement_skipped(s, why);
  }
  void step_progress(const Step& s, std::size_t i, std::size_t n, const StepProgress& p) override {
    a_.step_progress(s, i, n, p);
    b_.step_progress(s, i, n, p);
  }
  void retrying(const Step& s, int at, int max, milliseconds w, std::string_view r) override {
    a_.retrying(s, at, max, w, r);
    b_.retrying(s, at, max, w, r);
  }

 private:
  Reporter& a_;
  Reporter& b_;
};

// One upgrade started by this process.
struct Job {
  std::string id;
  std::string to;
  bool offline = false;
  bool skip_drift_check = false;
  std::string backup;
  std::string started_at;
  Clock::time_point started{};
  std::unique_ptr<Context> ctx;
  std::unique_ptr<Lock> hold;  // the migration lock, held for the whole upgrade (advisory)
  std::unique_ptr<EventLog> events;
  std::thread thread;
  std::atomic<bool> cancel_requested{false};
  mutable std::mutex mutex;
  std::string state = "running";  // running, succeeded, halted, failed, cancelled, interrupted
  std::string from;
  std::string finished_at;
  milliseconds took{0};
  nlohmann::json result;  // the terminal event

  [[nodiscard]] nlohmann::json to_json() const {
    std::lock_guard<std::mutex> g(mutex);
    nlohmann::json j{{"id", id},
                     {"state", state},
                     {"to", to},
                     {"from", from},
                     {"offline", offline},
                     {"started_at", started_at},
                     {"events", events->last_id()},
                     {"current", events->current()},
                     {"cancel_requested", cancel_requested.load()}};
    if (!backup.empty()) j["backup"] = backup;
    if (!finished_at.empty()) {
      j["finished_at"] = finished_at;
      j["duration_ms"] = took.count();
      j["result"] = result;
    }
    return j;
  }
};

class Server {
 public:
  Server(Context& base, const ServeOptions& options) : base_(base), options_(options) {}

  int run();

 private:
  // --- helpers -----------------------------------------------------------------------------
  void add_secrets(const std::vector<std::string>& more) {
    std::lock_guard<std::mutex> g(secrets_mutex_);
    for (const auto& s : more)
      if (!s.empty() && std::find(secrets_.begin(), secrets_.end(), s) == secrets_.end())
        secrets_.push_back(s);
  }
  [[nodiscard]] std::vector<std::string> secrets() const {
    std::lock_guard<std::mutex> g(secrets_mutex_);
    return secrets_;
  }
  [[nodiscard]] std::string clean(const std::string& text) const { return redact(text, secrets()); }
  void send_json(HttpResponse& res, int status, const nlohmann::json& doc) const {
    res.status = status;
    res.set_content(clean(doc.dump(2, ' ', false, nlohmann::json::error_handler_t::replace)) + "\n",
                    "application/json");
  }
  void send_error(HttpResponse& res, const HttpError& e) const {
    nlohmann::json doc{{"error", e.message}};
    if (!e.hint.empty()) doc["hint"] = e.hint;
    send_json(res, e.status, doc);
  }
  // The bearer token check: true when the request may go on (else the response is set).
  bool authorized(const HttpRequest& req, HttpResponse& res, bool mutating) const {
    if (!mutating && options_.public_read) return true;
    if (token_.empty()) {
      send_error(res, {403, "upgrades are disabled: serve was started without a token",
                       "start serve with --token-file FILE or STEPWISE_TOKEN"});
      return false;
    }
    switch (check_bearer(req.header("Authorization"), token_)) {
      case AuthResult::kOk:
        return true;
      case AuthResult::kMissing:
        res.set_header("WWW-Authenticate", "Bearer realm=\"stepwise\"");
        send_error(res, {401, "this endpoint needs the token: Authorization: Bearer TOKEN"});
        return false;
      case AuthResult::kWrong:
        send_error(res, {403, "wrong token"});
        return false;
    }
    return false;
  }
  // Runs `f` on the read connection (one at a time); a lost or failed connection is dropped
  // so that the next request connects again.
  template <typename F>
  auto with_read(F&& f) -> decltype(f(std::declval<Context&>())) {
    std::lock_guard<std::mutex> g(read_mutex_);
    if (!read_ctx_) {
      auto o = base_.options();
      if (!options_.read_database_url.empty()) o.database_url = options_.read_database_url;
      // A read answers quickly or not at all: at most 5 s to connect.
      if (parse_duration("--connect-timeout", o.connect_timeout) > milliseconds(5000))
        o.connect_timeout = "5s";
      o.output = "json";
      read_ctx_ = std::make_unique<Context>(o);
      read_ctx_->resolve();
      read_ctx_->signals_watched_elsewhere();
    }
    try {
      auto result = f(*read_ctx_);
      add_secrets(read_ctx_->secrets());
      return result;
    } catch (const Error& e) {
      add_secrets(read_ctx_->secrets());
      if (e.code() == ExitCode::kConnect || e.code() == ExitCode::kConnectionLost ||
          dynamic_cast<const DbError*>(&e) != nullptr)
        read_ctx_.reset();
      throw;
    } catch (...) {
      read_ctx_.reset();
      throw;
    }
  }
  // Maps stepwise's errors to HTTP answers.
  template <typename F>
  void guarded(HttpResponse& res, F&& f) {
    try {
      f();
    } catch (const HttpError& e) {
      send_error(res, e);
    } catch (const ConnectError& e) {
      send_error(res, {503, e.what(), e.hint()});
    } catch (const PlanRefused& e) {
      send_error(res, {422, e.what(), e.hint()});
    } catch (const UsageError& e) {
      send_error(res, {400, e.what(), e.hint()});
    } catch (const Error& e) {
      send_error(res, {e.code() == ExitCode::kConnectionLost ? 503 : 500, e.what(), e.hint()});
    } catch (const std::exception& e) {
      send_error(res, {500, fmt::format("internal error: {}", e.what())});
    }
  }
  [[nodiscard]] ValidateOptions checks() const {
    ValidateOptions v;
    v.ignore = options_.ignore;
    return v;
  }
  [[nodiscard]] std::shared_ptr<Job> find_job(const std::string& id) const {
    std::lock_guard<std::mutex> g(jobs_mutex_);
    const auto it = jobs_.find(id);
    return it == jobs_.end() ? nullptr : it->second;
  }

  // --- endpoints ----------------------------------------------------------------------------
  void routes();
  void get_database(const HttpRequest& req, HttpResponse& res);
  void get_releases(HttpResponse& res);
  void get_plan(const HttpRequest& req, HttpResponse& res);
  void post_upgrade(const HttpRequest& req, HttpResponse& res);
  void get_events(const HttpRequest& req, HttpResponse& res, const std::shared_ptr<Job>& job);
  void get_metrics(HttpResponse& res);
  void run_job(Job& job);
  void finish_job(Job& job, const std::string& state, const std::string& type,
                  nlohmann::json fields);
  void shut_down();

  Context& base_;
  ServeOptions options_;
  std::string token_;
  std::unique_ptr<serve::HttpTransport> http_;  // loaded by run()
  std::atomic<bool> shutting_down_{false};
  std::mutex read_mutex_;
  std::unique_ptr<Context> read_ctx_;
  mutable std::mutex secrets_mutex_;
  std::vector<std::string> secrets_;
  mutable std::mutex jobs_mutex_;
  std::map<std::string, std::shared_ptr<Job>> jobs_;
  std::vector<std::string> order_;  // job ids, oldest first
  std::shared_ptr<Job> running_;
  // /metrics: outcomes of this process's upgrades.
  std::map<std::string, long long> outcomes_;
  std::string last_outcome_;
  double last_duration_s_ = 0;
  double last_finished_unix_ = 0;
  unsigned long long lock_waits_ = 0;
  double lock_waited_s_ = 0;
};

// --- the upgrade --------------------------------------------------------------------------

void Server::finish_job(Job& job, const std::string& state, const std::string& type,
                        nlohmann::json fields) {
  const auto took = std::chrono::duration_cast<milliseconds>(Clock::now() - job.started);
  fields["duration_ms"] = took.count();
  fields["state"] = state;
  job.events->emit(type, fields);
  {
    std::lock_guard<std::mutex> g(job.mutex);
    job.state = state;
    job.finished_at = utc_time();
    job.took = took;
    job.result = fields;
  }
  std::lock_guard<std::mutex> g(jobs_mutex_);
  ++outcomes_[state];
  last_outcome_ = state;
  last_duration_s_ = static_cast<double>(took.count()) / 1000.0;
  last_finished_unix_ = static_cast<double>(std::chrono::duration_cast<std::chrono::seconds>(
                                                std::chrono::system_clock::now().time_since_epoch())
                                                .count());
  lock_waits_ += job.events->lock_waits();
  lock_waited_s_ += static_cast<double>(job.events->lock_waited().count()) / 1000.0;
  if (running_.get() == &job) running_.reset();
}

void Server::run_job(Job& job) {
  auto& ctx = *job.ctx;
  auto& events = *job.events;
  try {
    const auto& source = ctx.source();
    auto& conn = ctx.connect();
    HistoryStore store(conn, ctx.log_table(), runner_identity());
    const auto history = store.read(HistoryStore::Detail::kFull);
    const Release* from = &release_at(source.releases, history.current_version());
    {
      std::lock_guard<std::mutex> g(job.mutex);
      job.from = from->name;
    }
    auto pre_checks = checks();
    pre_checks.skip_drift = job.skip_drift_check;
    const Expectation at_from{from->schema, from->schema,
                              fmt::format("release {} (version {})", from->name, from->schema)};
    events.emit("checking", {{"release", from->name}, {"schema", from->schema}});
    const auto pre = check_database(ctx, pre_checks, at_from);
    if (!pre.ok()) {
      finish_job(
          job, "failed", "failed",
          {{"error", fmt::format("the database does not match release {}: {} finding(s); "
                                 "refusing to upgrade; nothing was applied",
                                 from->name, pre.findings.size())},
           {"hint", pre.exit_code() == ExitCode::kDrift
                        ? "repair the drift (see the findings), or start with skip_drift_check"
                        : "see GET /v1/database for details"},
           {"exit_code", static_cast<int>(pre.exit_code())},
           {"validation", validation_json(pre)}});
      return;
    }
    const auto plan = plan_upgrade(source.migrations, source.releases, history, *from, job.to);
    events.emit("plan", {{"plan", plan_json(plan, source.migrations)}, {"offline", job.offline}});
    if (plan.step_count() > 0) ctx.require_writable();
    if (!job.backup.empty()) {
      UpgradeOptions u;
      u.backup = job.backup;
      u.pg_dump = options_.pg_dump;
      events.emit("backup_started", {{"file", job.backup}});
      backup(ctx, u, history.current_version());
      events.emit("backup_finished", {{"file", job.backup}});
    }
    std::map<Version, std::string> release_of;
    for (const auto& s : plan.stages)
      for (auto v : s.versions) release_of[v] = s.release.name;
    events.track_overall(plan.step_count(), release_of);
    LogReporter log;
    log.track_overall(plan.step_count(), release_of);
    TeeReporter tee(events, log);
    const Release* reached = from;
    std::optional<std::string> halted;
    std::size_t applied = 0;
    for (const auto& stage : plan.stages) {
      if (stage.stop_before && !job.offline) {
        halted = *stage.stop_before;
        events.emit("stop_reached",
                    {{"roll_out", *stage.stop_before},
                     {"reached", reached->name},
                     {"next", stage.release.name},
                     {"message", fmt::format("roll out release {} everywhere, then start the "
                                             "upgrade to {} again (or offline, when no "
                                             "application instance is running)",
                                             *stage.stop_before, plan.to.name)}});
        break;
      }
      if (ctx.stop.load()) throw Interrupted("cancelled before release " + stage.release.name);
      events.emit("release_started", {{"release", stage.release.name},
                                      {"schema", stage.release.schema},
                                      {"migrations", stage.versions.size()}});
      auto run = run_options(ctx);
      run.target = Target::at(stage.release.schema);
      const auto result = apply(ctx, run, tee);
      applied += result.applied.size();
      reached = &stage.release;
      events.emit("release_reached", {{"release", reached->name}, {"schema", reached->schema}});
    }
    const Expectation at_reached{
        reached->schema, reached->schema,
        fmt::format("release {} (version {})", reached->name, reached->schema)};
    const auto post = check_database(ctx, checks(), at_reached);
    nlohmann::json fields{{"reached", reached->name},
                          {"schema", reached->schema},
                          {"applied", applied},
                          {"ok", post.ok()},
                          {"exit_code", static_cast<int>(post.exit_code())},
                          {"validation", validation_json(post)}};
    if (halted) fields["halted_before_rollout_of"] = *halted;
    finish_job(job, halted ? "halted" : (post.ok() ? "succeeded" : "failed"), "finished",
               std::move(fields));
  } catch (const StepFailed& e) {
    finish_job(job, "failed", "failed",
               {{"error", e.what()},
                {"hint", e.hint()},
                {"exit_code", static_cast<int>(e.code())},
                {"sqlstate", e.sqlstate()},
                {"file", events.current_file()}});
  } catch (const Interrupted& e) {
    if (job.cancel_requested.load())
      finish_job(job, "cancelled", "cancelled",
                 {{"error", fmt::format("cancelled: {}", e.what())},
                  {"hint", "finished steps are recorded; start the upgrade again to go on"},
                  {"exit_code", static_cast<int>(e.code())}});
    else
      finish_job(job, "interrupted", "failed",
                 {{"error", fmt::format("serve is shutting down: {}", e.what())},
                  {"hint", e.hint()},
                  {"exit_code", static_cast<int>(e.code())},
                  {"file", events.current_file()}});
  } catch (const Error& e) {
    finish_job(job, "failed", "failed",
               {{"error", e.what()},
                {"hint", e.hint()},
                {"exit_code", static_cast<int>(e.code())},
                {"file", events.current_file()}});
  } catch (const std::exception& e) {
    finish_job(job, "failed", "failed",
               {{"error", fmt::format("internal error: {}", e.what())}, {"exit_code", 1}});
  }
  add_secrets(ctx.secrets());
  if (job.hold) {
    try {
      job.hold->release();
    } catch (const std::exception& e) {
      spdlog::warn("upgrade {}: releasing the migration lock: {}", job.id, e.what());
    }
  }
  spdlog::info("upgrade {} ended: {}", job.id, job.to_json().value("state", "?"));
}

void Server::post_upgrade(const HttpRequest& req, HttpResponse& res) {
  if (!authorized(req, res, true)) return;
  guarded(res, [&] {
    if (shutting_down_.load()) throw HttpError{503, "serve is shutting down"};
    // Everything about the request is checked before the database is touched.
    nlohmann::json body;
    try {
      body = nlohmann::json::parse(req.body);
    } catch (const nlohmann::json::exception&) {
      throw HttpError{400, "the body is not JSON", R"(send {"to": "RELEASE"})"};
    }
    if (!body.is_object()) throw HttpError{400, "the body must be a JSON object"};
    for (const auto& [key, value] : body.items())
      if (key != "to" && key != "offline" && key != "backup" && key != "skip_drift_check")
        throw HttpError{400, fmt::format("unknown field {}", printable(key, 40)),
                        "fields: to, offline, backup, skip_drift_check"};
    if (!body.contains("to") || !body["to"].is_string() || body["to"].get<std::string>().empty())
      throw HttpError{400, R"("to" is required: the release to reach, a string)"};
    for (const char* flag : {"offline", "skip_drift_check"})
      if (body.contains(flag) && !body[flag].is_boolean())
        throw HttpError{400, fmt::format(R"("{}" must be true or false)", flag)};
    if (body.contains("backup") && !body["backup"].is_string() && !body["backup"].is_null())
      throw HttpError{400, R"("backup" must be a file path (string))"};
    auto job = std::make_shared<Job>();
    job->to = body["to"].get<std::string>();
    job->offline = body.value("offline", false);
    job->skip_drift_check = body.value("skip_drift_check", false);
    if (body.contains("backup") && body["backup"].is_string())
      job->backup = body["backup"].get<std::string>();
    if (!job->backup.empty()) check_backup_path(job->backup);
    {
      std::lock_guard<std::mutex> g(jobs_mutex_);
      if (running_)
        throw HttpError{409, fmt::format("an upgrade is running: {}", running_->id),
                        "GET /v1/upgrades/" + running_->id};
    }
    auto o = base_.options();
    o.output = "json";
    o.dry_run = false;
    job->ctx = std::make_unique<Context>(o);
    job->ctx->resolve();
    job->ctx->signals_watched_elsewhere();
    const auto& source = job->ctx->source();
    if (source.releases.empty()) throw HttpError{422, "this build has no releases.json"};
    if (source.releases.find(job->to) == nullptr)
      throw HttpError{
          422, fmt::format("to: {} is not a release in releases.json", printable(job->to, 40)),
          "GET /v1/releases lists them"};
    // The migration lock decides, across replicas and CLI runs: try it once, without waiting.
    auto& conn = job->ctx->connect();
    add_secrets(job->ctx->secrets());
    auto lock = job->ctx->make_lock();
    if (!lock->try_acquire())
      throw HttpError{409,
                      fmt::format("an upgrade or migration is running elsewhere: the migration "
                                  "lock is held by {}",
                                  lock->holder()),
                      "wait for it to finish; GET /v1/database shows the state"};
    if (dynamic_cast<AdvisoryLock*>(lock.get()) != nullptr) {
      // Held for the whole upgrade: the runner takes it again on the same session (advisory
      // locks stack), so no other runner gets in between the stages.
      job->hold = std::move(lock);
    } else {
      lock->release();  // a lease: the runner takes its own
    }
    (void)conn;
    std::lock_guard<std::mutex> g(jobs_mutex_);
    if (running_) {
      if (job->hold) job->hold->release();
      throw HttpError{409, fmt::format("an upgrade is running: {}", running_->id)};
    }
    job->id = random_id();
    job->started_at = utc_time();
    job->started = Clock::now();
    job->events = std::make_unique<EventLog>(job->ctx->secrets());
    // ("id" is the event's number; the upgrade's id is "upgrade".)
    nlohmann::json first{{"upgrade", job->id}, {"to", job->to}, {"offline", job->offline}};
    if (!job->backup.empty()) first["backup"] = job->backup;
    job->events->emit("started", std::move(first));
    jobs_[job->id] = job;
    order_.push_back(job->id);
    running_ = job;
    spdlog::info("upgrade {} to release {} started{}", job->id, job->to,
                 job->offline ? " (offline)" : "");
    job->thread = std::thread([this, j = job.get()] { run_job(*j); });
    res.set_header("Location", "/v1/upgrades/" + job->id);
    send_json(res, 202,
              {{"id", job->id},
               {"state", "running"},
               {"to", job->to},
               {"status_url", "/v1/upgrades/" + job->id},
               {"events_url", "/v1/upgrades/" + job->id + "/events"}});
  });
}

void Server::get_events(const HttpRequest& req, HttpResponse& res,
                        const std::shared_ptr<Job>& job) {
  std::uint64_t from = 0;
  auto resume = req.header("Last-Event-ID");
  if (resume.empty() && req.has_param("after")) resume = req.param("after");
  if (!resume.empty()) {
    try {
      from = std::stoull(resume);
    } catch (const std::exception&) {
      send_error(res, {400, "Last-Event-ID / after: not a number"});
      return;
    }
  }
  res.set_header("Cache-Control", "no-store");
  res.set_header("X-Accel-Buffering", "no");
  auto last_write = std::make_shared<Clock::time_point>(Clock::now());
  res.content_type = "text/event-stream";
  res.stream = [this, job, pos = from, last_write](ChunkSink& sink) mutable {
    if (shutting_down_.load() && job->events->closed() && pos >= job->events->last_id()) {
      sink.done();
      return true;
    }
    const auto batch = job->events->after(pos, milliseconds(500));
    if (batch.empty()) {
      if (job->events->closed() || shutting_down_.load()) {
        sink.done();
        return true;
      }
      if (Clock::now() - *last_write > std::chrono::seconds(10)) {
        static constexpr std::string_view kKeepAlive = ": keep-alive\n\n";
        if (!sink.write(kKeepAlive)) return false;
        *last_write = Clock::now();
      }
      return true;
    }
    std::string text;
    for (const auto& e : batch) {
      text += sse_frame(e);
      pos = e.id;
    }
    text = clean(text);
    if (!sink.write(text)) return false;
    *last_write = Clock::now();
    if (job->events->closed() && pos >= job->events->last_id()) sink.done();
    return true;
  };
}

// --- read endpoints -------------------------------------------------------------------------

void Server::get_database(const HttpRequest& req, HttpResponse& res) {
  if (!authorized(req, res, false)) return;
  guarded(res, [&] {
    std::optional<std::string> release;
    if (req.has_param("release")) release = req.param("release");
    auto doc = with_read([&](Context& ctx) {
      const auto& source = ctx.source();
      const auto exp = expectation_for(source.migrations, source.releases, release);
      return validation_json(check_database(ctx, checks(), exp));
    });
    doc["meaning"] = exit_code_meaning(doc.value("exit_code", 0));
    send_json(res, 200, doc);
  });
}

void Server::get_releases(HttpResponse& res) {
  guarded(res, [&] {
    auto doc = with_read([&](Context& ctx) {
      const auto& source = ctx.source();
      HistoryStore store(ctx.connect(), ctx.log_table(), runner_identity());
      const auto version = store.read(HistoryStore::Detail::kFull).current_version();
      nlohmann::json list = nlohmann::json::array();
      for (const auto& r : source.releases.all())
        list.push_back({{"name", r.name}, {"schema", r.schema}, {"min_schema", r.min_schema}});
      const auto* current = source.releases.with_schema(version);
      return nlohmann::json{
          {"releases", list},
          {"database_version", version},
          {"current", current ? nlohmann::json(current->name) : nlohmann::json(nullptr)},
          {"latest", source.releases.empty() ? nlohmann::json(nullptr)
                                             : nlohmann::json(source.releases.all().back().name)},
          {"build", kToolVersion}};
    });
    send_json(res, 200, doc);
  });
}

void Server::get_plan(const HttpRequest& req, HttpResponse& res) {
  guarded(res, [&] {
    if (!req.has_param("to") || req.param("to").empty())
      throw HttpError{400, "to: required (the release to reach), e.g. /v1/plan?to=2.0.0"};
    const auto to = req.param("to");
    const auto offline_text = req.has_param("offline") ? req.param("offline") : "false";
    if (offline_text != "true" && offline_text != "false")
      throw HttpError{400, "offline: expected true or false"};
    const bool offline = offline_text == "true";
    auto doc = with_read([&](Context& ctx) {
      const auto& source = ctx.source();
      if (source.releases.empty()) throw PlanRefused("this build has no releases.json");
      HistoryStore store(ctx.connect(), ctx.log_table(), runner_identity());
      const auto history = store.read(HistoryStore::Detail::kFull);
      const auto& from = release_at(source.releases, history.current_version());
      const Expectation at_from{from.schema, from.schema,
                                fmt::format("release {} (version {})", from.name, from.schema)};
      const auto pre = check_database(ctx, checks(), at_from);
      const auto plan = plan_upgrade(source.migrations, source.releases, history, from, to);
      nlohmann::json d{{"command", "upgrade"},
                       {"ok", pre.ok()},
                       {"dry_run", true},
                       {"offline", offline},
                       {"plan", plan_json(plan, source.migrations)},
                       {"precheck", validation_json(pre)}};
      if (!offline)
        for (const auto& s : plan.stages)
          if (s.stop_before) {
            d["halts_before_rollout_of"] = *s.stop_before;
            break;
          }
      return d;
    });
    send_json(res, 200, doc);
  });
}

void Server::get_metrics(HttpResponse& res) {
  guarded(res, [&] {
    Metrics m;
    m.gauge("stepwise_serve_up", "1 while stepwise serve runs", 1);
    bool reachable = true;
    try {
      with_read([&](Context& ctx) {
        const auto& source = ctx.source();
        HistoryStore store(ctx.connect(), ctx.log_table(), runner_identity());
        const auto history = store.read(HistoryStore::Detail::kFull);
        std::size_t pending = 0;
        for (const auto& mig : source.migrations.all())
          if (!history.is_applied(mig.version)) ++pending;
        const auto v = check_database(
            ctx, checks(), expectation_for(source.migrations, source.releases, std::nullopt));
        std::size_t drift = 0;
        for (const auto& f : v.findings)
          if (f.kind == FindingKind::kDrift) ++drift;
        const auto version = history.current_version();
        m.gauge("stepwise_schema_version", "the database's schema version (newest applied)",
                version.to_int64() ? static_cast<double>(*version.to_int64()) : std::nan(""));
        m.gauge("stepwise_pending_migrations", "migrations of this build not yet applied",
                static_cast<double>(pending));
        m.gauge("stepwise_drift_findings", "schema drift findings against the expected schema",
                static_cast<double>(drift));
        m.gauge("stepwise_validation_exit_code", "validate's exit code (0: as expected)",
                static_cast<int>(v.exit_code()));
        return 0;
      });
    } catch (const Error&) {
      reachable = false;
    }
    m.gauge("stepwise_database_reachable", "1 when the read connection works", reachable ? 1 : 0);
    std::lock_guard<std::mutex> g(jobs_mutex_);
    for (const char* outcome : {"succeeded", "halted", "failed", "cancelled", "interrupted"})
      m.counter("stepwise_upgrades_total", "upgrades this process ran, by outcome",
                static_cast<double>(outcomes_.count(outcome) ? outcomes_.at(outcome) : 0),
                fmt::format("outcome=\"{}\"", outcome));
    m.gauge("stepwise_upgrade_running", "1 while an upgrade of this process runs",
            running_ ? 1 : 0);
    if (!last_outcome_.empty()) {
      m.gauge("stepwise_last_upgrade_success",
              "1 when the last upgrade succeeded (or halted at a stop)",
              last_outcome_ == "succeeded" || last_outcome_ == "halted" ? 1 : 0);
      m.gauge("stepwise_last_upgrade_duration_seconds", "how long the last upgrade took",
              last_duration_s_);
      m.gauge("stepwise_last_upgrade_finished_timestamp_seconds",
              "when the last upgrade ended (Unix time)", last_finished_unix_);
    }
    auto waits = lock_waits_;
    auto waited = lock_waited_s_;
    if (running_) {
      waits += running_->events->lock_waits();
      waited += static_cast<double>(running_->events->lock_waited().count()) / 1000.0;
    }
    m.counter("stepwise_lock_waits_total", "times an upgrade waited for the migration lock",
              static_cast<double>(waits));
    m.counter("stepwise_lock_wait_seconds_total", "time upgrades spent waiting for the lock",
              waited);
    res.status = 200;
    res.set_content(clean(m.text()), "text/plain; version=0.0.4");
  });
}

void Server::routes() {
  http_->route("GET", "/", [](const HttpRequest&, HttpResponse& res) {
    res.set_header("Content-Security-Policy",
                   "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
                   "connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; "
                   "frame-ancestors 'none'");
    const auto page = maintenance_page();
    res.set_content(std::string(page), "text/html; charset=utf-8");
  });
  http_->route("GET", "/healthz", [](const HttpRequest&, HttpResponse& res) {
    res.set_content("ok\n", "text/plain");
  });
  http_->route("GET", "/readyz", [this](const HttpRequest&, HttpResponse& res) {
    try {
      with_read([](Context& ctx) {
        (void)ctx.connect().execute("SELECT 1");
        return 0;
      });
      res.set_content("ok\n", "text/plain");
    } catch (const std::exception&) {
      res.status = 503;
      res.set_content("the database is not reachable\n", "text/plain");
    }
  });
  http_->route("GET", "/v1/database",
               [this](const HttpRequest& req, HttpResponse& res) { get_database(req, res); });
  http_->route("GET", "/v1/releases", [this](const HttpRequest& req, HttpResponse& res) {
    if (authorized(req, res, false)) get_releases(res);
  });
  http_->route("GET", "/v1/plan", [this](const HttpRequest& req, HttpResponse& res) {
    if (authorized(req, res, false)) get_plan(req, res);
  });
  http_->route("POST", "/v1/upgrades",
               [this](const HttpRequest& req, HttpResponse& res) { post_upgrade(req, res); });
  http_->route("GET", "/v1/upgrades", [this](const HttpRequest& req, HttpResponse& res) {
    if (!authorized(req, res, false)) return;
    nlohmann::json list = nlohmann::json::array();
    std::vector<std::shared_ptr<Job>> jobs;
    {
      std::lock_guard<std::mutex> g(jobs_mutex_);
      for (auto it = order_.rbegin(); it != order_.rend(); ++it) jobs.push_back(jobs_.at(*it));
    }
    for (const auto& j : jobs) list.push_back(j->to_json());
    send_json(res, 200, {{"upgrades", list}});
  });
  http_->route("GET", R"(/v1/upgrades/([0-9a-f]+))",
               [this](const HttpRequest& req, HttpResponse& res) {
                 if (!authorized(req, res, false)) return;
                 const auto job = find_job(req.matches[1]);
                 if (!job) return send_error(res, {404, "no such upgrade"});
                 send_json(res, 200, job->to_json());
               });
  http_->route("GET", R"(/v1/upgrades/([0-9a-f]+)/events)",
               [this](const HttpRequest& req, HttpResponse& res) {
                 if (!authorized(req, res, false)) return;
                 const auto job = find_job(req.matches[1]);
                 if (!job) return send_error(res, {404, "no such upgrade"});
                 get_events(req, res, job);
               });
  http_->route(
      "POST", R"(/v1/upgrades/([0-9a-f]+)/cancel)",
      [this](const HttpRequest& req, HttpResponse& res) {
        if (!authorized(req, res, true)) return;
        const auto job = find_job(req.matches[1]);
        if (!job) return send_error(res, {404, "no such upgrade"});
        if (job->events->closed())
          return send_error(res, {409, "the upgrade has ended", "nothing to cancel"});
        job->cancel_requested.store(true);
        job->ctx->stop.store(true);  // the runner stops at the next step boundary
        job->events->emit("cancel_requested", {{"message", "stopping at the next step boundary"}});
        spdlog::info("upgrade {}: cancel requested", job->id);
        send_json(res, 202, {{"id", job->id}, {"state", "cancelling"}});
      });
  http_->route("GET", "/metrics", [this](const HttpRequest& req, HttpResponse& res) {
    if (authorized(req, res, false)) get_metrics(res);
  });
  http_->on_error([this](const HttpRequest&, HttpResponse& res) {
    if (!res.body.empty()) return;
    const char* what = res.status == 413   ? "the request body is too large"
                       : res.status == 404 ? "not found"
                       : res.status == 400 ? "bad request"
                                           : "error";
    send_json(res, res.status, {{"error", what}});
  });
  http_->on_exception([this](const HttpRequest&, HttpResponse& res) {
    send_error(res, {500, "internal error"});
  });
}

void Server::shut_down() {
  if (shutting_down_.exchange(true)) return;
  std::shared_ptr<Job> job;
  {
    std::lock_guard<std::mutex> g(jobs_mutex_);
    job = running_;
  }
  if (job) {
    // As `up` does on a signal: stop, cancel the running statement (recorded as interrupted).
    spdlog::warn("upgrade {}: interrupting the running step", job->id);
    job->ctx->stop.store(true);
    if (auto* c = job->ctx->active.load()) c->cancel();
  }
  if (http_) http_->stop();
}

int Server::run() {
  // The token, and the passwords of both connection strings (masked in every answer).
  if (!options_.token_file.empty()) {
    std::ifstream in(options_.token_file, std::ios::binary);
    if (!in)
      throw UsageError(
          fmt::format("--token-file {}: cannot read it", display_name(options_.token_file)));
    std::stringstream ss;
    ss << in.rdbuf();
    token_ = std::string(trim(ss.str()));
    if (token_.empty())
      throw UsageError(
          fmt::format("--token-file {}: the file is empty", display_name(options_.token_file)));
  } else if (const char* t = std::getenv("STEPWISE_TOKEN"); t != nullptr && *t != '\0') {
    token_ = std::string(trim(t));
  }
  if (token_.empty() && !options_.public_read)
    throw UsageError(
        "serve: no token (--token-file FILE or STEPWISE_TOKEN) and no --public-read: no "
        "endpoint could be used",
        "give a token; --public-read opens the read endpoints without one");
  if (!token_.empty() && token_.size() < 16)
    spdlog::warn(
        "the token is short ({} characters): use 32 random bytes, e.g. `openssl rand "
        "-hex 32`",
        token_.size());
  if (const char* pw = std::getenv("PGPASSWORD"); pw && *pw) add_secrets({pw});
  for (const auto& url : {main_database_url(base_.options()), options_.read_database_url})
    if (!url.empty()) add_secrets(parse_conninfo(url, 5).secrets);
  add_secrets({token_});

  const auto colon = options_.listen.rfind(':');
  if (colon == std::string::npos)
    throw UsageError(
        fmt::format("--listen {}: expected HOST:PORT", printable(options_.listen, 80)));
  auto host = options_.listen.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  if (host.empty()) host = "0.0.0.0";
  int port = -1;
  try {
    std::size_t used = 0;
    port = std::stoi(options_.listen.substr(colon + 1), &used);
    if (used != options_.listen.size() - colon - 1) port = -1;
  } catch (const std::exception&) {
  }
  if (port < 0 || port > 65535)
    throw UsageError(
        fmt::format("--listen {}: the port must be 0 to 65535", printable(options_.listen, 80)));
  if (options_.max_body < 1) throw UsageError("--max-body: must be at least 1");
  const auto read_timeout = parse_duration("--read-timeout", options_.read_timeout);
  const auto write_timeout = parse_duration("--write-timeout", options_.write_timeout);

  http_ = serve::load_http_transport();

  // Signals: blocked here (and so in every thread started from now on), taken by one thread.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  base_.signals_watched_elsewhere();

  serve::HttpSettings settings;
  settings.max_body = options_.max_body;
  settings.read_timeout = std::chrono::duration_cast<std::chrono::microseconds>(read_timeout);
  settings.write_timeout = std::chrono::duration_cast<std::chrono::microseconds>(write_timeout);
  settings.default_headers = {{"Cache-Control", "no-store"},
                              {"X-Content-Type-Options", "nosniff"},
                              {"Referrer-Policy", "no-referrer"},
                              {"X-Frame-Options", "DENY"}};
  http_->configure(settings);
  routes();
  const int bound = http_->bind(host, port);
  if (bound < 0)
    throw UsageError(fmt::format("--listen {}: cannot listen there (in use, or no such address)",
                                 printable(options_.listen, 80)));
  std::thread([set, this]() mutable {
    int sig = 0;
    while (sigwait(&set, &sig) == 0) {
      if (shutting_down_.load()) std::_Exit(static_cast<int>(ExitCode::kInterrupted));
      spdlog::warn("received {}: shutting down", sig == SIGTERM ? "SIGTERM" : "SIGINT");
      shut_down();
    }
  }).detach();
  spdlog::info("serve: listening on http://{}:{}/ ({})",
               host.find(':') != std::string::npos ? "[" + host + "]" : host, bound,
               options_.public_read ? "read endpoints public" : "every endpoint needs the token");
  http_->listen();
  // Stopped: let the upgrade record its interrupted step, then end.
  std::vector<std::shared_ptr<Job>> jobs;
  {
    std::lock_guard<std::mutex> g(jobs_mutex_);
    for (auto& [id, job] : jobs_) jobs.push_back(job);
  }
  for (auto& job : jobs) {
    if (job->thread.joinable()) job->thread.join();
    job->events->wake_all();
  }
  spdlog::info("serve: stopped");
  return 0;
}

}  // namespace

int run_serve(Context& ctx, const ServeOptions& options) {
  Server server(ctx, options);
  return server.run();
}

}  // namespace stepwise::cli
