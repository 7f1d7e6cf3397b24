#pragma once
// What every command gets: parsed global options, the migration source, and a way to connect.
#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "../pqxx/pqxx_connection.hpp"
#include "stepwise/connect_retry.hpp"
#include "stepwise/database.hpp"
#include "stepwise/describe.hpp"
#include "stepwise/engine.hpp"
#include "stepwise/history_store.hpp"
#include "stepwise/lock.hpp"
#include "stepwise/runner.hpp"
#include "stepwise/source.hpp"
#include "stepwise/table_name.hpp"

namespace stepwise::cli {

enum class OutputFormat { kText, kJson };

// Global options as typed on the command line (or taken from STEPWISE_* variables).
struct GlobalOptions {
  std::string database_url;
  std::string source_dir;
  std::string log_table = "public.stepwise_log";
  std::string connect_timeout = "60s";
  std::string lock_timeout = "10m";
  std::string statement_timeout = "0";
  std::string ddl_lock_timeout = "5s";
  int ddl_lock_retries = 10;
  std::string lock_strategy = "auto";
  std::string engine = "auto";
  std::string lease_ttl = "30s";
  std::string output = "text";
  std::string log_level = "info";
  std::string log_format = "text";
  std::string progress_interval = "5s";
  bool show_blocking_query = false;
  bool dry_run = false;
};

class Context {
 public:
  explicit Context(GlobalOptions options);

  // Validates option values (durations, table name, output format). Throws UsageError.
  void resolve();

  [[nodiscard]] const GlobalOptions& options() const noexcept { return options_; }
  [[nodiscard]] OutputFormat output() const noexcept { return output_; }
  [[nodiscard]] const TableName& log_table() const noexcept { return log_table_; }
  [[nodiscard]] std::chrono::milliseconds lock_timeout() const noexcept { return lock_timeout_; }
  [[nodiscard]] std::chrono::milliseconds statement_timeout() const noexcept {
    return statement_timeout_;
  }
  [[nodiscard]] std::chrono::milliseconds ddl_lock_timeout() const noexcept {
    return ddl_lock_timeout_;
  }

  // The embedded set, or --source DIR; loaded and validated once. Throws SourceError.
  [[nodiscard]] const Source& source();
  // Frees the JSON text of expected/<v>.json once a one-shot command has parsed it (18 MB at
  // 10,000 tables, held to the end otherwise); source().expected then has an empty text for v.
  void release_expected_text(const Version& v);
  // The migrations alone, for planning `up` and `migrate-to` (the start-up path): the embedded
  // set as stepwise-embed validated it, without releases or expected schemas; for --source, the
  // planning view of the folder (names, checksums, directives; no lexer pass), which
  // execution_profile() replaces by the fully validated source() before anything is applied;
  // a bundled set, validated fully. Throws SourceError.
  [[nodiscard]] const MigrationSet& migrations();

  // Starts the SIGINT/SIGTERM watcher (once): the first signal sets `stop` and cancels the
  // running statement; a second one exits at once. Until then the default disposition holds.
  void watch_signals();
  // The caller handles SIGINT/SIGTERM itself (serve): watch_signals() does nothing.
  void signals_watched_elsewhere() noexcept { watching_signals_ = true; }

  // Connects, retrying transient failures until --connect-timeout. Throws ConnectError.
  [[nodiscard]] Connection& connect();
  // Which set connect_while_loading() loads meanwhile.
  enum class Load { kMigrations, kSource };
  // connect(), with the --source folder loading meanwhile on a second thread (migrations() or
  // source()): the no-op waits for the slower of the two rather than their sum. A folder that
  // does not load wins: it sets `stop`, which ends the connect retry at once, and its error is
  // thrown even when the connect failed too; else as connect(). Without --source, once loaded
  // or connected: connect() alone, on this thread (the caller loads when it did before).
  [[nodiscard]] Connection& connect_while_loading(Load load);
  // A connection to another server (check's --scratch-url), retrying as connect() does; its
  // secrets are masked from then on.
  [[nodiscard]] std::unique_ptr<Connection> connect_to(const ConnInfo& info);
  // `url` parsed for connect_to(): each attempt bounded as connect()'s (--connect-timeout).
  [[nodiscard]] ConnInfo conninfo_for(const std::string& url) const {
    return parse_conninfo(url, connect_attempt_seconds(connect_timeout_));
  }
  // One more connection to the same database (single attempt), e.g. for a lease heartbeat.
  [[nodiscard]] std::unique_ptr<Connection> open_another() const;
  // A connection to another database on the same server (single attempt).
  [[nodiscard]] std::unique_ptr<Connection> open_database(const std::string& dbname) const;
  [[nodiscard]] const ConnInfo& conninfo() const noexcept { return conninfo_; }
  // stepwise's own tables, left out of describe and drift.
  [[nodiscard]] std::vector<TableName> own_tables() const;
  // The engine (detected with one query on first use, or forced by --engine).
  [[nodiscard]] const Engine& engine();
  // The lock chosen by --lock-strategy (auto: the engine's), on the main connection.
  [[nodiscard]] std::unique_ptr<Lock> make_lock();
  // Engine detection, lock and executor settings, resolved only once there is work to do; also
  // starts the signal watcher, and names the fully validated set when migrations() planned from
  // a planning view. Throws Error(kReadOnly) on a hot standby or read-only sessions (see
  // require_writable), SourceError for a folder that does not validate.
  [[nodiscard]] ExecutionProfile execution_profile();
  // Takes execution_profile()'s lock for a command's own log writes (repair, adopt, upgrade's
  // backup row), waiting up to --lock-timeout as `up` does; `who` prefixes the messages
  // ("repair: "). Released when the holder goes, on every path. Throws LockTimeout,
  // Interrupted, and as execution_profile().
  [[nodiscard]] HeldLock hold_lock(std::string who);
  // Throws Error(kReadOnly), one line naming the server and the cause, when the session cannot
  // write: a hot standby, or default_transaction_read_only on. Uses engine()'s one query.
  void require_writable();
  // describe's options for this engine, leaving out stepwise's own tables.
  [[nodiscard]] DescribeOptions describe_options(std::vector<std::string> schemas);
  // The live schema as this engine's rules read it (EngineRules::describe), on `conn`.
  [[nodiscard]] SchemaDescription describe(Connection& conn, const DescribeOptions& options);
  // Secrets to mask in every line printed (password, PGPASSWORD); filled by connect().
  [[nodiscard]] const std::vector<std::string>& secrets() const noexcept { return secrets_; }
  // More secrets to mask (e.g. the password of check's --scratch-url).
  void add_secrets(const std::vector<std::string>& more) {
    secrets_.insert(secrets_.end(), more.begin(), more.end());
  }

  // Fleets (fleet.cpp): a target's context takes the fleet's validated source, and leaves
  // signals to the fleet's own watcher (which sets `stop` and cancels `active`).
  void use_source(const Source& s) { source_ = s; }

  std::atomic<bool> stop{false};             // set by SIGINT/SIGTERM
  std::atomic<Connection*> active{nullptr};  // the connection a signal cancels

  // Prints a result document on stdout (JSON mode).
  void print_json(const nlohmann::json& doc) const;

 private:
  // connect()'s: --connect-timeout, `stop`, the waiting line, hosts masked once one fails.
  [[nodiscard]] ConnectRetryOptions retry_options();

  GlobalOptions options_;
  OutputFormat output_ = OutputFormat::kText;
  TableName log_table_;
  std::chrono::milliseconds connect_timeout_{60'000};
  std::chrono::milliseconds lock_timeout_{600'000};
  std::chrono::milliseconds statement_timeout_{0};
  std::chrono::milliseconds ddl_lock_timeout_{5'000};
  std::optional<Source> source_;
  std::optional<SourceFiles> planning_files_;  // what planning_ views into (--source)
  std::optional<MigrationSet> planning_;
  bool planning_view_ = false;  // planning_ is not validated through: source() before work
  bool watching_signals_ = false;
  std::unique_ptr<Connection> conn_;
  std::optional<Engine> engine_;
  LockStrategy lock_strategy_ = LockStrategy::kAuto;
  std::unique_ptr<Lock> lock_;
  bool pooled_ = false;  // a connection pooler is in between (asked only when there is work)
  std::chrono::milliseconds progress_interval_{5'000};
  std::unique_ptr<ProgressMonitor> progress_;
  ConnInfo conninfo_;
  std::chrono::milliseconds lease_ttl_{30'000};
  std::vector<std::string> secrets_;
};

// The embedded (or bundled) set, or the folder `dir` when given; validated. Throws SourceError.
[[nodiscard]] Source load_source(const std::string& dir);
// "embedded set, 10 migration(s), newest 20240315100000, digest 1a2b3c4d5e6f".
[[nodiscard]] std::string describe_set(const Source& s);

// Identity recorded in the log: host name, pid, tool version.
[[nodiscard]] RunnerIdentity runner_identity();

}  // namespace stepwise::cli
