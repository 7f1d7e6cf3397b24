#pragma once
// Reads a canonical description of the live schema from the catalogs: one set-based query per
// object kind (never one per table), each ORDER BY'ed.
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "stepwise/database.hpp"
#include "stepwise/errors.hpp"
#include "stepwise/schema.hpp"
#include "stepwise/table_name.hpp"

namespace stepwise {

struct DescribeOptions {
  std::vector<std::string> schemas;  // empty: every schema but the system ones
  // stepwise's own objects, by schema and name: the log, the lock table and the no-op
  // summary's sequence and function (Context::own_tables)
  std::vector<TableName> exclude;
  // CockroachDB implements pg_catalog only in part: each kind is read on its own, and a kind
  // whose query fails is reported as unknown (never as missing).
  bool partial_catalog = false;
  // The caller already opened a (read-only, repeatable read) transaction, or set the session
  // up, with an empty search_path: validate reads the log and the catalogs in one snapshot.
  bool in_caller_transaction = false;
  // Opens another session to the same database: a large schema's catalogs are then read by two
  // sessions in one exported snapshot. Empty: one session reads everything.
  std::function<std::unique_ptr<Connection>()> open_helper;
  // Called with each object as it is read (canonicalize_object() applied), from any of the
  // reading threads: false leaves it out of the description (validate: it equals its expected
  // counterpart, see ExpectedMatcher in drift.hpp). A hint: an engine may not call it.
  std::function<bool(const SchemaObject&)> keep;
};

// Reads the catalogs (pg_catalog) as they are: in one read-only snapshot of its own, or in the
// caller's transaction (options.in_caller_transaction). No engine's normalisation: callers
// describe through EngineRules::describe (stepwise/engine.hpp), which calls this.
[[nodiscard]] SchemaDescription read_catalogs(Connection& conn, const DescribeOptions& options);

// Session settings pinned for every catalog read: each one changes how pg_get_expr,
// pg_get_*def, format_type or quote_ident print (dates and times in defaults and partition
// bounds, intervals, floats, bytea and string constants, money, identifiers). With them, the
// description does not depend on the client environment (PGDATESTYLE, PGTZ, PGOPTIONS) nor on
// the role's or the database's settings (ALTER ROLE / ALTER DATABASE ... SET).
inline constexpr const char* kPinnedCatalogSettings =
    "SET LOCAL search_path = ''; SET LOCAL DateStyle = 'ISO, MDY'; SET LOCAL TimeZone = 'UTC';"
    " SET LOCAL IntervalStyle = 'postgres'; SET LOCAL extra_float_digits = 1;"
    " SET LOCAL bytea_output = 'hex'; SET LOCAL standard_conforming_strings = on;"
    " SET LOCAL quote_all_identifiers = off; SET LOCAL lc_monetary = 'C';"
    " SET LOCAL lc_numeric = 'C'; SET LOCAL lc_time = 'C'; SET LOCAL xmlbinary = 'base64';"
    " SET LOCAL xmloption = 'content'";

// Runs `read` in one read-only REPEATABLE READ snapshot with the pinned settings above (an
// empty search_path among them, so that every name the server prints is schema-qualified the
// same way whatever the role's own search_path is). Commits after; rolls back on a database
// error.
template <typename Read>
auto in_read_only_snapshot(Connection& conn, Read&& read) -> decltype(read()) {
  conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
  try {
    conn.execute(kPinnedCatalogSettings);
  } catch (const DbError&) {
    try {
      conn.execute("ROLLBACK");
    } catch (const Error&) {
    }
    throw;
  }
  try {
    auto result = read();
    conn.execute("COMMIT");
    return result;
  } catch (const DbError&) {
    try {
      conn.execute("ROLLBACK");
    } catch (const Error&) {
    }
    throw;
  }
}

}  // namespace stepwise
