#pragma once
// The engine seam: PostgreSQL or CockroachDB. The engine decides the lock strategy, how a step
// is executed, which errors are retried, and how the catalogs are read.
#include <optional>
#include <string>
#include <string_view>

#include "stepwise/database.hpp"

namespace stepwise {

enum class EngineKind { kPostgres, kCockroach };
[[nodiscard]] std::string_view to_string(EngineKind k);
// "postgres" / "cockroachdb"; nullopt otherwise ("auto" is the caller's business).
[[nodiscard]] std::optional<EngineKind> parse_engine(std::string_view s);

struct Engine {
  EngineKind kind = EngineKind::kPostgres;
  // The server really is CockroachDB (crdb_version is set); false when the CockroachDB rules
  // are forced on PostgreSQL, where CockroachDB-only session settings do not exist.
  bool cockroach_server = false;
  std::string server_version;
  // Read in the same query: a hot standby (in_hot_standby, or a read-only transaction while
  // default_transaction_read_only is off, which only recovery gives), or read-only sessions
  // (default_transaction_read_only on for the role, database or server). Nothing can be applied.
  bool hot_standby = false;
  bool read_only_session = false;

  // CockroachDB: DDL is not atomic inside explicit transactions, so every step runs its
  // statements one per implicit transaction, with the attempt recorded before and after.
  [[nodiscard]] bool statement_by_statement() const { return kind == EngineKind::kCockroach; }
  // CockroachDB: advisory locks are no-ops there; the lease row is the lock.
  [[nodiscard]] bool needs_lease() const { return kind == EngineKind::kCockroach; }
  // Session settings set explicitly instead of trusting server defaults.
  [[nodiscard]] std::string session_setup() const;
  // The catalogs may lack some object kinds: describe reports those kinds as unknown.
  [[nodiscard]] bool partial_catalog() const { return kind == EngineKind::kCockroach; }
};

// Decides from the server's first answer; one query: current_setting('crdb_version', true),
// and whether the session can write (see Engine::hot_standby, read_only_session).
// With `forced`, the engine's rules are used whatever the server is.
[[nodiscard]] Engine detect_engine(Connection& conn, std::optional<EngineKind> forced);

// Errors worth trying again, and how.
enum class Retry {
  kNo,
  kLockTimeout,    // 55P03: our lock_timeout expired; back off so traffic can pass
  kSerialization,  // 40001 (CockroachDB restarts, SERIALIZABLE conflicts), 40P01 deadlock
};
[[nodiscard]] Retry classify_retry(std::string_view sqlstate);

// What a runner that lost a race to create the same object sees (CREATE ... IF NOT EXISTS
// checks before it inserts into the catalog): 42P07 relation, 42P06 schema, 42710 type or
// other object, 23505 a catalog's unique index. The object is there: the race is harmless.
[[nodiscard]] bool is_concurrent_create_duplicate(std::string_view sqlstate);

// Whether a connection pooler (PgBouncer, pgcat, a cloud proxy) sits between this connection
// and the server: the backend pid the connection was given at start-up is then the pooler's
// own, not the server session's. One query; ask only when there is work.
[[nodiscard]] bool behind_connection_pooler(Connection& conn);

}  // namespace stepwise
