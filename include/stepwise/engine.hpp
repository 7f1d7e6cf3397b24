#pragma once
// The engine seam: PostgreSQL or CockroachDB. Every difference between the two lives behind
// EngineRules (src/engine/postgres_rules.cpp, src/engine/cockroach_rules.cpp): which lock a run
// takes, the session setup, how a step is executed, how the catalogs are read and normalised,
// which errors are retried. Callers ask the rules; none tests the engine's kind.
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "stepwise/database.hpp"
#include "stepwise/describe.hpp"
#include "stepwise/lock.hpp"
#include "stepwise/retry.hpp"
#include "stepwise/schema.hpp"

namespace stepwise {

enum class EngineKind { kPostgres, kCockroach };
[[nodiscard]] std::string_view to_string(EngineKind k);
// "postgres" / "cockroachdb"; nullopt otherwise ("auto" is the caller's business).
[[nodiscard]] std::optional<EngineKind> parse_engine(std::string_view s);

// --lock-strategy, and the lock a run takes.
enum class LockStrategy { kAuto, kAdvisory, kLease };
// "auto" / "advisory" / "lease"; nullopt otherwise.
[[nodiscard]] std::optional<LockStrategy> parse_lock_strategy(std::string_view s);
enum class LockKind { kAdvisory, kLease };

class EngineRules {
 public:
  virtual ~EngineRules() = default;
  [[nodiscard]] virtual EngineKind kind() const = 0;

  // --- the lock ---
  // Throws UsageError when `requested` cannot work on this engine.
  virtual void check_lock_strategy(LockStrategy requested) const = 0;
  // Whether a connection pooler in between changes the lock choice (and the step fences):
  // only then is behind_connection_pooler() asked.
  [[nodiscard]] virtual bool pooler_matters() const = 0;
  // The lock a run takes for `requested` (auto: the engine's own), `pooled` when a pooler sits
  // in between. Throws UsageError as check_lock_strategy.
  [[nodiscard]] virtual LockKind choose_lock(LockStrategy requested, bool pooled) const = 0;

  // --- the session and the steps ---
  // Session settings set explicitly (once, after taking the lock) instead of trusting server
  // defaults; empty: none.
  [[nodiscard]] virtual std::string session_setup() const = 0;
  // Whether every step runs its statements one per implicit transaction, with the attempt
  // recorded before and after (CockroachDB: DDL is not atomic inside explicit transactions).
  [[nodiscard]] virtual bool statement_by_statement() const = 0;
  // Whether each step's transaction proves first that it runs under the lock
  // (HistoryStore::step_fence): only where a step has a transaction of its own.
  [[nodiscard]] bool fence_steps() const { return !statement_by_statement(); }
  // Errors worth trying again (the same table on both engines today).
  [[nodiscard]] virtual Retry classify(std::string_view sqlstate) const {
    return classify_retry(sqlstate);
  }

  // --- the catalogs ---
  // The catalogs may lack some object kinds: describe reports those kinds as unknown.
  [[nodiscard]] virtual bool partial_catalog() const = 0;
  // Whether the log and the catalogs can be read in one read-only snapshot (validate).
  [[nodiscard]] virtual bool snapshot_reads() const = 0;
  // Reads the live schema: in a snapshot of its own, or in the caller's when
  // options.in_caller_transaction; normalised to PostgreSQL's spelling.
  [[nodiscard]] virtual SchemaDescription describe(Connection& conn,
                                                   const DescribeOptions& options) const = 0;
  // Rewrites a description read from this engine's catalogs in PostgreSQL's spelling.
  virtual void normalize_catalog(SchemaDescription& /*d*/) const {}
};

class PostgresRules final : public EngineRules {
 public:
  [[nodiscard]] EngineKind kind() const override { return EngineKind::kPostgres; }
  void check_lock_strategy(LockStrategy) const override {}
  [[nodiscard]] bool pooler_matters() const override { return true; }
  [[nodiscard]] LockKind choose_lock(LockStrategy requested, bool pooled) const override;
  [[nodiscard]] std::string session_setup() const override { return {}; }
  [[nodiscard]] bool statement_by_statement() const override { return false; }
  [[nodiscard]] bool partial_catalog() const override { return false; }
  [[nodiscard]] bool snapshot_reads() const override { return true; }
  [[nodiscard]] SchemaDescription describe(Connection& conn,
                                           const DescribeOptions& options) const override;
};

class CockroachRules final : public EngineRules {
 public:
  // `on_cockroach_server`: false when the rules are forced on PostgreSQL (--engine), where
  // CockroachDB-only session settings do not exist.
  explicit CockroachRules(bool on_cockroach_server) : on_server_(on_cockroach_server) {}
  [[nodiscard]] EngineKind kind() const override { return EngineKind::kCockroach; }
  void check_lock_strategy(LockStrategy requested) const override;
  [[nodiscard]] bool pooler_matters() const override { return false; }
  [[nodiscard]] LockKind choose_lock(LockStrategy requested, bool pooled) const override;
  [[nodiscard]] std::string session_setup() const override;
  [[nodiscard]] bool statement_by_statement() const override { return true; }
  [[nodiscard]] bool partial_catalog() const override { return true; }
  [[nodiscard]] bool snapshot_reads() const override { return false; }
  [[nodiscard]] SchemaDescription describe(Connection& conn,
                                           const DescribeOptions& options) const override;
  void normalize_catalog(SchemaDescription& d) const override;

 private:
  bool on_server_;
};

// PostgreSQL's rules: the default wherever no engine was detected (tests, tools).
[[nodiscard]] const EngineRules& postgres_rules();

// CockroachDB spells some types differently and shows a hidden primary key: "int8" is
// "bigint", "json" is "jsonb", "string" is "text", a table without a primary key has a hidden
// `rowid` column (default unique_rowid()) with its own primary key. Rewrites `d` in PostgreSQL's
// spelling and drops the hidden key, so that descriptions compare by meaning
// (CockroachRules::normalize_catalog).
void normalize_cockroach(SchemaDescription& d);
[[nodiscard]] std::string normalize_cockroach_type(std::string_view type);

// What the server said in its first answer, and the rules chosen for it.
struct Engine {
  // The server really is CockroachDB (crdb_version is set).
  bool cockroach_server = false;
  std::string server_version;
  // Read in the same query: a hot standby (in_hot_standby, or a read-only transaction while
  // default_transaction_read_only is off, which only recovery gives), or read-only sessions
  // (default_transaction_read_only on for the role, database or server). Nothing can be applied.
  bool hot_standby = false;
  bool read_only_session = false;
  std::shared_ptr<const EngineRules> rules_ptr;  // null: PostgreSQL's

  [[nodiscard]] const EngineRules& rules() const {
    return rules_ptr ? *rules_ptr : postgres_rules();
  }
  [[nodiscard]] EngineKind kind() const { return rules().kind(); }
};

// Decides from the server's first answer; one query: current_setting('crdb_version', true),
// and whether the session can write (see Engine::hot_standby, read_only_session).
// With `forced`, the engine's rules are used whatever the server is.
[[nodiscard]] Engine detect_engine(Connection& conn, std::optional<EngineKind> forced);

// The lock of kind `kind` on `conn`: an advisory lock keyed by options.log_table, or a lease
// with `options`.
[[nodiscard]] std::unique_ptr<Lock> make_lock(LockKind kind, Connection& conn,
                                              LeaseLock::Options options);

// Whether a connection pooler (PgBouncer, pgcat, a cloud proxy) sits between this connection
// and the server: the backend pid the connection was given at start-up is then the pooler's
// own, not the server session's. One query; ask only when there is work.
[[nodiscard]] bool behind_connection_pooler(Connection& conn);

}  // namespace stepwise
