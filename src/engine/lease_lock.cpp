#include <fmt/format.h>

#include "pg_operator.hpp"
#include "stepwise/duration.hpp"
#include "stepwise/engine.hpp"
#include "stepwise/errors.hpp"
#include "stepwise/lock.hpp"

namespace stepwise {
namespace {
// "now() + ttl", the ttl in milliseconds as $3; PostgreSQL's own operators (pg_operator.hpp).
std::string expiry_sql() {
  return pg_op("pg_catalog.now()", "+", pg_op("$3::bigint", "*", "interval '1 millisecond'"));
}
// The lease row of this log ($1) held by this runner ($2).
std::string ours_sql() {
  return fmt::format("{} AND {}", pg_eq("name", "$1"), pg_eq("holder", "$2"));
}
}  // namespace

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

LeaseLock::LeaseLock(Connection& conn, Options options)
    : conn_(conn), options_(std::move(options)), table_(lock_table_for(options_.log_table)) {
  qualified_ = conn_.quote_identifier(table_.schema) + "." + conn_.quote_identifier(table_.table);
}

LeaseLock::~LeaseLock() {
  stop_heartbeat();
}

std::string LeaseLock::describe() const {
  return fmt::format("lease {} in {} (ttl {})", options_.log_table.display(), table_.display(),
                     format_duration(options_.ttl));
}

void LeaseLock::ensure_table() {
  if (table_checked_) return;
  const auto rows = conn_.query(
      "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = $1),"
      " EXISTS (SELECT 1 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n"
      " ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2)",
      {table_.schema, table_.table});
  if (rows.at(0).at(1).value_or("f") != "t") {
    std::string sql;
    if (rows.at(0).at(0).value_or("f") != "t")
      sql +=
          fmt::format("CREATE SCHEMA IF NOT EXISTS {};\n", conn_.quote_identifier(table_.schema));
    sql += fmt::format(
        "CREATE TABLE IF NOT EXISTS {} (name text PRIMARY KEY, holder text NOT NULL,"
        " acquired_at timestamptz NOT NULL, expires_at timestamptz NOT NULL)",
        qualified_);
    try {
      conn_.execute(sql);
    } catch (const DbError& e) {
      // Two runners creating it at once: the loser sees a duplicate; the table is there.
      if (!is_concurrent_create_duplicate(e.sqlstate())) throw;
    }
  }
  table_checked_ = true;
}

bool LeaseLock::try_acquire() {
  ensure_table();
  // Insert, or take over an expired lease (or our own), in one statement, by the database clock.
  // A serialization failure (racing runners on CockroachDB) is just "not this time".
  Rows rows;
  try {
    rows = conn_.query(
        fmt::format("INSERT INTO {} AS l (name, holder, acquired_at, expires_at)"
                    " VALUES ($1, $2, pg_catalog.now(), {})"
                    " ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder,"
                    " acquired_at = EXCLUDED.acquired_at, expires_at = EXCLUDED.expires_at"
                    " WHERE {} OR {} RETURNING l.holder",
                    qualified_, expiry_sql(), pg_op("l.expires_at", "<", "pg_catalog.now()"),
                    pg_eq("l.holder", "EXCLUDED.holder")),
        {options_.log_table.display(), options_.holder_id, std::to_string(options_.ttl.count())});
  } catch (const DbError& e) {
    if (e.sqlstate() == "40001") return false;
    throw;
  }
  if (rows.empty()) return false;
  stop_heartbeat();
  {
    std::lock_guard<std::mutex> g(mutex_);
    stopping_ = false;
  }
  heartbeat_ = std::thread([this] { heartbeat_loop(); });
  return true;
}

void LeaseLock::heartbeat_loop() {
  std::unique_ptr<Connection> hb;
  auto expires = Clock::now() + options_.ttl;
  const auto period = std::max(options_.ttl / 3, milliseconds(100));
  std::unique_lock<std::mutex> lk(mutex_);
  while (!stopping_) {
    wake_.wait_for(lk, period, [this] { return stopping_; });
    if (stopping_) break;
    lk.unlock();
    std::string lost;
    try {
      if (!hb) hb = options_.open_connection();
      const auto rows = hb->query(
          fmt::format("UPDATE {} SET expires_at = {} WHERE {} RETURNING 1", qualified_,
                      expiry_sql(), ours_sql()),
          {options_.log_table.display(), options_.holder_id, std::to_string(options_.ttl.count())});
      if (rows.empty())
        lost = "the lease row is gone or held by another runner";
      else
        expires = Clock::now() + options_.ttl;
    } catch (const Error& e) {
      hb.reset();  // reconnect on the next beat
      if (Clock::now() + period >= expires)
        lost = fmt::format("could not renew the lease before it expired: {}", e.what());
    }
    lk.lock();
    if (!lost.empty() && !stopping_) {
      stopping_ = true;
      lk.unlock();
      if (options_.on_lost) options_.on_lost(lost);
      return;
    }
  }
}

void LeaseLock::stop_heartbeat() {
  {
    std::lock_guard<std::mutex> g(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (heartbeat_.joinable()) heartbeat_.join();
}

void LeaseLock::release() {
  stop_heartbeat();
  const auto rows =
      conn_.query(fmt::format("DELETE FROM {} WHERE {} RETURNING 1", qualified_, ours_sql()),
                  {options_.log_table.display(), options_.holder_id});
  if (rows.empty())
    throw Error(
        ExitCode::kFailed,
        fmt::format("the {} was not held at release: it expired and another runner may have "
                    "taken it over",
                    describe()));
}

std::string LeaseLock::held_check_sql() {
  // By the clock of the moment, not the transaction's start: a lease that expired while the
  // step waited must not count.
  return fmt::format("EXISTS (SELECT 1 FROM {} WHERE {} AND {} AND {})", qualified_,
                     pg_eq("name", conn_.quote_literal(options_.log_table.display())),
                     pg_eq("holder", conn_.quote_literal(options_.holder_id)),
                     pg_op("expires_at", ">", "pg_catalog.clock_timestamp()"));
}

std::string LeaseLock::holder() {
  try {
    const auto rows = conn_.query(
        fmt::format("SELECT holder, pg_catalog.to_char(greatest({}, interval '0'), 'HH24:MI:SS')"
                    " FROM {} WHERE {}",
                    pg_op("expires_at", "-", "pg_catalog.now()"), qualified_, pg_eq("name", "$1")),
        {options_.log_table.display()});
    if (rows.empty()) return "nobody (the lease was just released)";
    return fmt::format("{} (lease expires in {})", rows[0][0].value_or("?"),
                       rows[0][1].value_or("?"));
  } catch (const DbError&) {
    return "an unknown runner";
  }
}

}  // namespace stepwise
