#include "stepwise/engine.hpp"

namespace stepwise {

std::string_view to_string(EngineKind k) {
  return k == EngineKind::kCockroach ? "cockroachdb" : "postgres";
}

std::optional<EngineKind> parse_engine(std::string_view s) {
  if (s == "postgres" || s == "postgresql") return EngineKind::kPostgres;
  if (s == "cockroachdb" || s == "cockroach" || s == "crdb") return EngineKind::kCockroach;
  return std::nullopt;
}

Engine detect_engine(Connection& conn, std::optional<EngineKind> forced) {
  Engine e;
  // in_hot_standby is PostgreSQL 14+; before that a standby still shows transaction_read_only
  // on with default_transaction_read_only off (this query runs outside any explicit
  // transaction, so only recovery makes it read-only then). Same answer as pg_is_in_recovery()
  // for a server that accepts connections, without a function CockroachDB may lack.
  Rows rows;
  try {
    rows = conn.query(
        "SELECT pg_catalog.current_setting('crdb_version', true), "
        "pg_catalog.current_setting('server_version'),"
        " pg_catalog.current_setting('in_hot_standby', true), "
        "pg_catalog.current_setting('transaction_read_only', true),"
        " pg_catalog.current_setting('default_transaction_read_only', true)",
        {});
  } catch (const DbError&) {
    // A server that rejects one of the settings outright (rather than answering NULL): ask
    // only what engine detection itself needs, and assume it can write.
    rows = conn.query(
        "SELECT pg_catalog.current_setting('crdb_version', true), "
        "pg_catalog.current_setting('server_version')",
        {});
  }
  const auto& row = rows.at(0);
  const auto on = [&](std::size_t i) { return i < row.size() && row[i].value_or("") == "on"; };
  e.read_only_session = on(4);
  e.hot_standby = on(2) || (on(3) && !on(4));
  const auto crdb = rows.at(0).at(0).value_or("");
  e.cockroach_server = !crdb.empty();
  e.server_version = e.cockroach_server ? crdb : "PostgreSQL " + rows.at(0).at(1).value_or("?");
  const auto kind =
      forced ? *forced : (e.cockroach_server ? EngineKind::kCockroach : EngineKind::kPostgres);
  // The one place that looks at the kind: from here on, callers ask the rules.
  if (kind == EngineKind::kCockroach)
    e.rules_ptr = std::make_shared<CockroachRules>(e.cockroach_server);
  return e;
}

std::optional<LockStrategy> parse_lock_strategy(std::string_view s) {
  if (s == "auto") return LockStrategy::kAuto;
  if (s == "advisory") return LockStrategy::kAdvisory;
  if (s == "lease") return LockStrategy::kLease;
  return std::nullopt;
}

std::unique_ptr<Lock> make_lock(LockKind kind, Connection& conn, LeaseLock::Options options) {
  if (kind == LockKind::kAdvisory) return std::make_unique<AdvisoryLock>(conn, options.log_table);
  return std::make_unique<LeaseLock>(conn, std::move(options));
}

bool behind_connection_pooler(Connection& conn) {
  const auto rows = conn.query("SELECT pg_catalog.pg_backend_pid()", {});
  return rows.at(0).at(0).value_or("") != std::to_string(conn.backend_pid());
}

}  // namespace stepwise
