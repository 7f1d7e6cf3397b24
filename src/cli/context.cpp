#include "context.hpp"

#include <fmt/format.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <system_error>
#include <thread>

#include "output.hpp"
#include "stepwise/bundle.hpp"
#include "stepwise/connect_retry.hpp"
#include "stepwise/duration.hpp"
#include "stepwise/errors.hpp"
#include "stepwise/lock_policy.hpp"
#include "stepwise/redact.hpp"
#include "stepwise/text.hpp"
#include "stepwise/version.hpp"

namespace stepwise::cli {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

Context::Context(GlobalOptions options) : options_(std::move(options)) {}

void Context::resolve() {
  if (options_.output == "text")
    output_ = OutputFormat::kText;
  else if (options_.output == "json")
    output_ = OutputFormat::kJson;
  else
    throw UsageError(fmt::format("--output: invalid value {} (expected text or json)",
                                 printable(options_.output, 40)));
  log_table_ = parse_table_name("--log-table", options_.log_table);
  connect_timeout_ = parse_duration("--connect-timeout", options_.connect_timeout);
  lock_timeout_ = parse_duration("--lock-timeout", options_.lock_timeout);
  statement_timeout_ = parse_duration("--statement-timeout", options_.statement_timeout);
  const auto strategy = parse_lock_strategy(options_.lock_strategy);
  if (!strategy)
    throw UsageError(
        fmt::format("--lock-strategy: invalid value {} (expected auto, advisory or lease)",
                    printable(options_.lock_strategy, 40)));
  lock_strategy_ = *strategy;
  if (options_.engine != "auto" && !parse_engine(options_.engine))
    throw UsageError(
        fmt::format("--engine: invalid value {} (expected auto, postgres or cockroachdb)",
                    printable(options_.engine, 40)));
  lease_ttl_ = parse_duration("--lease-ttl", options_.lease_ttl);
  if (lease_ttl_ < milliseconds(1000))
    throw UsageError(fmt::format("--lease-ttl: {} is too short (at least 1s)",
                                 printable(options_.lease_ttl, 40)));
  ddl_lock_timeout_ = parse_duration("--ddl-lock-timeout", options_.ddl_lock_timeout);
  progress_interval_ = parse_duration("--progress-interval", options_.progress_interval);
  if (progress_interval_.count() > 0 && progress_interval_ < milliseconds(100))
    throw UsageError(
        fmt::format("--progress-interval: {} is too short (at least 100ms, or 0 for none)",
                    printable(options_.progress_interval, 40)));
  if (options_.ddl_lock_retries < 0 || options_.ddl_lock_retries > 1000)
    throw UsageError(fmt::format("--ddl-lock-retries: {} is out of range (0 to 1000)",
                                 options_.ddl_lock_retries));
}

const Source& Context::source() {
  if (!source_) source_ = load_source(options_.source_dir);
  return *source_;
}

void Context::release_expected_text(const Version& v) {
  if (!source_) return;
  const auto it = source_->expected.find(v);
  if (it != source_->expected.end()) std::string().swap(it->second);
}

namespace {
std::string self_exe() {
  char exe[4096] = {};
  const auto n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  return n > 0 ? std::string(exe, static_cast<std::size_t>(n)) : "/proc/self/exe";
}
}  // namespace

const MigrationSet& Context::migrations() {
  if (source_) return source_->migrations;
  if (planning_) return *planning_;
  if (!options_.source_dir.empty()) {
    // Every file is read and hashed (the plan compares checksums); the lexer pass, releases.json
    // and expected/ wait until there is work (execution_profile).
    planning_files_ = load_directory(options_.source_dir, /*migrations_only=*/true);
    try {
      planning_ = build_planning_set(planning_files_->files);
    } catch (const SourceError&) {
      // A broken folder: every problem at once, releases.json's and expected/'s included.
      return source().migrations;
    }
    planning_view_ = true;
    return *planning_;
  }
  // A bundle was not made by stepwise-embed: validated through, as any folder.
  if (auto bundled = load_bundle(self_exe())) {
    source_ = validate_source(*bundled);
    return source_->migrations;
  }
  planning_ = embedded_migrations();  // validated at build time
  return *planning_;
}

void Context::watch_signals() {
  if (watching_signals_) return;
  watching_signals_ = true;
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  std::thread([set, this]() mutable {
    int sig = 0;
    while (sigwait(&set, &sig) == 0) {
      if (stop.exchange(true)) std::_Exit(static_cast<int>(ExitCode::kInterrupted));
      spdlog::warn("received {}: cancelling the running statement",
                   sig == SIGTERM ? "SIGTERM" : "SIGINT");
      if (auto* conn = active.load()) conn->cancel();
    }
  }).detach();
}

Source load_source(const std::string& dir) {
  if (!dir.empty()) return validate_source(load_directory(dir));
  // A set bundled into this executable (stepwise bundle) wins over the one compiled in.
  if (auto bundled = load_bundle(self_exe())) return validate_source(*bundled);
  return validate_source(load_embedded());
}

std::string describe_set(const Source& s) {
  return fmt::format("{} set, {} migration(s), newest {}, digest {}", s.origin, s.migrations.size(),
                     s.migrations.latest(), s.migrations.digest());
}

namespace {
std::string database_url(const GlobalOptions& o) {
  if (!o.database_url.empty()) return o.database_url;
  for (const char* var : {"STEPWISE_DATABASE_URL", "DATABASE_URL"})
    if (const char* v = std::getenv(var); v != nullptr && *v != '\0') return v;
  return {};  // libpq reads PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE ...
}
}  // namespace

ConnectRetryOptions Context::retry_options() {
  ConnectRetryOptions retry;
  retry.timeout = connect_timeout_;
  retry.stop = &stop;
  retry.on_waiting = [](const std::string& message) { spdlog::info("{}", message); };
  // A host that did not resolve may be a misplaced password: masked in every line from now on.
  retry.mask_hosts = [this](const std::vector<std::string>& hosts) {
    for (const auto& h : hosts)
      if (std::find(secrets_.begin(), secrets_.end(), h) == secrets_.end()) secrets_.push_back(h);
  };
  return retry;
}

std::unique_ptr<Connection> Context::connect_to(const ConnInfo& info) {
  add_secrets(info.secrets);
  return connect_with_retry(info, retry_options());
}

Connection& Context::connect() {
  if (conn_) return *conn_;
  // Known before parsing: a malformed connection string must not leak PGPASSWORD either.
  if (const char* pw = std::getenv("PGPASSWORD"); pw && *pw) secrets_.emplace_back(pw);
  conninfo_ = parse_conninfo(database_url(options_), connect_attempt_seconds(connect_timeout_));
  secrets_ = conninfo_.secrets;
  conn_ = connect_with_retry(conninfo_, retry_options());
  conn_->on_notice([](std::string_view notice) { spdlog::debug("server: {}", notice); });
  active.store(conn_.get());
  spdlog::debug("connected to {} (backend pid {})", conninfo_.display, conn_->backend_pid());
  return *conn_;
}

Connection& Context::connect_while_loading(Load load) {
  const bool loaded = load == Load::kSource ? source_.has_value() : source_ || planning_;
  if (options_.source_dir.empty() || loaded || conn_) return connect();
  // The loader touches only the set's members (source_, planning_files_, planning_,
  // planning_view_) and reads options_; connect() only the connection's (conn_, conninfo_,
  // secrets_, active) and `stop`. The loader prints nothing, so every line the logger masks
  // with secrets_ comes from this thread. Its outcome is read after the join.
  std::exception_ptr load_error;
  std::thread loader;
  try {
    loader = std::thread([this, load, &load_error]() noexcept {
      try {
        if (load == Load::kSource)
          (void)source();
        else
          (void)migrations();
      } catch (...) {
        load_error = std::current_exception();
        stop.store(true);  // no connection needed: the retry gives up at once
      }
    });
  } catch (const std::system_error&) {
    return connect();  // no thread to be had: one after the other, as before
  }
  Connection* conn = nullptr;
  std::exception_ptr connect_error;
  try {
    conn = &connect();
  } catch (...) {
    connect_error = std::current_exception();
  }
  loader.join();  // before anything is thrown: the loader uses this Context
  if (load_error) std::rethrow_exception(load_error);
  if (connect_error) std::rethrow_exception(connect_error);
  return *conn;
}

std::unique_ptr<Connection> Context::open_another() const {
  return open_connection(conninfo_);
}

std::unique_ptr<Connection> Context::open_database(const std::string& dbname) const {
  return open_connection(with_database(conninfo_, dbname));
}

std::vector<TableName> Context::own_tables() const {
  std::vector<TableName> own{log_table_, lock_table_for(log_table_)};
  // The function shares the exclusion list: describe leaves out functions by the same names.
  if (const auto summary = noop_summary_for(log_table_))
    own.insert(own.end(), {summary->counter, summary->summary, summary->function});
  return own;
}

const Engine& Context::engine() {
  if (!engine_) {
    const auto forced = options_.engine == "auto" ? std::nullopt : parse_engine(options_.engine);
    engine_ = detect_engine(connect(), forced);
    spdlog::debug("engine: {} ({}{})", to_string(engine_->kind()), engine_->server_version,
                  forced ? ", forced by --engine" : "");
    engine_->rules().check_lock_strategy(lock_strategy_);
  }
  return *engine_;
}

void Context::require_writable() {
  const auto& e = engine();
  if (e.hot_standby)
    throw Error(ExitCode::kReadOnly,
                fmt::format("the server at {} is a read-only hot standby: migrations must run "
                            "against the primary; nothing was applied",
                            conninfo_.display),
                "connect to the primary (with several hosts, add target_session_attrs=read-write "
                "to the connection string); validate and status work on a standby");
  if (e.read_only_session)
    throw Error(
        ExitCode::kReadOnly,
        fmt::format("the server at {}: sessions are read-only (default_transaction_read_only is "
                    "on for this role or database); nothing was applied",
                    conninfo_.display),
        "connect as a role that may write, or reset it: ALTER ROLE ... RESET "
        "default_transaction_read_only / ALTER DATABASE ... RESET default_transaction_read_only");
}

ExecutionProfile Context::execution_profile() {
  watch_signals();
  // The folder planned from is validated through before anything is applied.
  const MigrationSet* validated = planning_view_ ? &source().migrations : nullptr;
  require_writable();
  const auto& rules = engine().rules();
  if (!lock_) lock_ = make_lock();
  ExecutionProfile p{lock_.get(), rules.statement_by_statement(), rules.session_setup()};
  p.migrations = validated;
  p.fence_steps = rules.fence_steps();
  p.rules = &rules;
  p.pooled = pooled_;
  if (progress_interval_.count() > 0) {
    if (!progress_) {
      ProgressMonitor::Options o;
      o.interval = progress_interval_;
      o.show_blocking_query = options_.show_blocking_query;
      // Through a pooler the step's server session changes from one transaction to the next.
      o.backend_pid = pooled_ ? 0 : connect().backend_pid();
      o.open_connection = [this] { return open_another(); };
      o.on_degraded = [](const std::string& why) {
        spdlog::warn("progress reports show elapsed time only: {}", why);
      };
      progress_ = std::make_unique<ProgressMonitor>(std::move(o));
    }
    p.progress = progress_.get();
  }
  return p;
}

HeldLock Context::hold_lock(std::string who) {
  auto& lock = *execution_profile().lock;
  LockWait wait;
  wait.timeout = lock_timeout_;
  wait.stop = &stop;
  wait.who = std::move(who);
  wait.on_waiting = [](milliseconds waited, const std::string& holder) {
    LogReporter().lock_waiting(waited, holder);
  };
  if (!wait_for_lock(lock, wait))
    throw Error(ExitCode::kFailed, "the migration lock was not taken");  // no nothing_left
  return HeldLock(lock);
}

DescribeOptions Context::describe_options(std::vector<std::string> schemas) {
  DescribeOptions d;
  d.schemas = std::move(schemas);
  d.exclude = own_tables();
  d.partial_catalog = engine().rules().partial_catalog();
  d.open_helper = [this] { return open_another(); };
  return d;
}

SchemaDescription Context::describe(Connection& conn, const DescribeOptions& options) {
  return engine().rules().describe(conn, options);
}

std::unique_ptr<Lock> Context::make_lock() {
  auto& conn = connect();
  const auto decision = decide_lock(engine().rules(), lock_strategy_,
                                    [&conn] { return behind_connection_pooler(conn); });
  pooled_ = decision.pooled;
  if (decision.level == LockDecision::Level::kInfo) spdlog::info("{}", decision.message);
  if (decision.level == LockDecision::Level::kWarn) spdlog::warn("{}", decision.message);
  const auto who = runner_identity();
  LeaseSetup lease;
  lease.log_table = log_table_;
  lease.ttl = lease_ttl_;
  lease.host = who.host;
  lease.pid = who.pid;
  lease.nonce = static_cast<std::uint32_t>(Clock::now().time_since_epoch().count());
  lease.open_connection = [this] { return open_another(); };
  lease.stop = &stop;
  lease.active = &active;
  lease.log_error = [](const std::string& message) { spdlog::error("{}", message); };
  return stepwise::make_lock(decision.kind, conn, lease_options(std::move(lease)));
}

void Context::print_json(const nlohmann::json& doc) const {
  const auto text = redact(doc.dump(2), secrets_) + "\n";
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fflush(stdout);
}

RunnerIdentity runner_identity() {
  char host[256] = {};
  if (gethostname(host, sizeof host - 1) != 0) std::snprintf(host, sizeof host, "unknown");
  return RunnerIdentity{host, static_cast<int>(getpid()), kToolVersion};
}

}  // namespace stepwise::cli
