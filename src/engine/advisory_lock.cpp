#include <fmt/format.h>

#include "pg_operator.hpp"
#include "stepwise/errors.hpp"
#include "stepwise/lock.hpp"

namespace stepwise {

AdvisoryLock::AdvisoryLock(Connection& conn, const TableName& log_table)
    : conn_(conn), table_(log_table), key_(lock_key(log_table)) {}

std::string AdvisoryLock::describe() const {
  return fmt::format("advisory lock {} (log table {})", key_, table_.display());
}

bool AdvisoryLock::try_acquire() {
  const auto rows =
      conn_.query("SELECT pg_catalog.pg_try_advisory_lock($1::bigint)", {std::to_string(key_)});
  return rows.at(0).at(0).value_or("f") == "t";
}

bool AdvisoryLock::try_acquire_shared() {
  const auto rows = conn_.query("SELECT pg_catalog.pg_try_advisory_lock_shared($1::bigint)",
                                {std::to_string(key_)});
  return rows.at(0).at(0).value_or("f") == "t";
}

void AdvisoryLock::release_shared() {
  (void)conn_.query("SELECT pg_catalog.pg_advisory_unlock_shared($1::bigint)",
                    {std::to_string(key_)});
}

std::string AdvisoryLock::held_check_sql() {
  // pg_locks shows a bigint key as classid = high 32 bits, objid = low 32 bits, objsubid = 1.
  const auto k = static_cast<unsigned long long>(key_);
  // PostgreSQL's own operators throughout: a step's fence trusts this answer.
  return fmt::format(
      "EXISTS (SELECT 1 FROM pg_catalog.pg_locks WHERE {} AND {} AND granted AND {} AND {} AND {}"
      " AND {} AND {})",
      pg_eq("locktype", "'advisory'"), pg_eq("pid", "pg_catalog.pg_backend_pid()"),
      pg_eq("mode", "'ExclusiveLock'"),
      pg_eq("database", fmt::format("SELECT d.oid FROM pg_catalog.pg_database d WHERE {}",
                                    pg_eq("d.datname", "pg_catalog.current_database()"))),
      pg_eq("classid", fmt::format("{}::pg_catalog.oid", k >> 32)),
      pg_eq("objid", fmt::format("{}::pg_catalog.oid", k & 0xffffffffull)), pg_eq("objsubid", "1"));
}

std::string AdvisoryLock::holder() {
  // A bigint advisory key shows in pg_locks as classid = high 32 bits, objid = low 32 bits.
  const auto k = static_cast<unsigned long long>(key_);
  try {
    const auto rows = conn_.query(
        "SELECT a.pid, coalesce(a.application_name, ''), coalesce(host(a.client_addr), 'local'),"
        " coalesce(to_char(now() - a.backend_start, 'HH24:MI:SS'), '')"
        " FROM pg_catalog.pg_locks l JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid"
        " WHERE l.locktype = 'advisory' AND l.granted AND l.database ="
        " (SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database())"
        " AND l.classid = $1::bigint::oid AND l.objid = $2::bigint::oid AND l.objsubid = 1",
        {std::to_string(k >> 32), std::to_string(k & 0xffffffffull)});
    if (rows.empty()) return "an unknown session";
    const auto& r = rows[0];
    return fmt::format("backend pid {} ({} from {}, connected {})", r[0].value_or("?"),
                       r[1].value_or("").empty() ? "no application_name" : *r[1],
                       r[2].value_or("?"), r[3].value_or("?"));
  } catch (const DbError&) {
    return "an unknown session";
  }
}

void AdvisoryLock::release() {
  const auto rows =
      conn_.query("SELECT pg_catalog.pg_advisory_unlock($1::bigint)", {std::to_string(key_)});
  if (rows.at(0).at(0).value_or("f") != "t")
    throw Error(
        ExitCode::kFailed,
        fmt::format("the {} was not held at release; another runner may have run concurrently",
                    describe()));
}

}  // namespace stepwise
