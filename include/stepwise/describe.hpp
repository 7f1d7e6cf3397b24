#pragma once
// Reads a canonical description of the live schema from the catalogs: one set-based query per
// object kind (never one per table), each ORDER BY'ed.
#include <string>
#include <vector>

#include "stepwise/database.hpp"
#include "stepwise/errors.hpp"
#include "stepwise/schema.hpp"
#include "stepwise/table_name.hpp"

namespace stepwise {

struct DescribeOptions {
  std::vector<std::string> schemas;  // empty: every schema but the system ones
  std::vector<TableName> exclude;    // stepwise's own tables (log, lock)
  // CockroachDB implements pg_catalog only in part: each kind is read on its own, and a kind
  // whose query fails is reported as unknown (never as missing).
  bool partial_catalog = false;
  // The caller already opened a (read-only, repeatable read) transaction with an empty
  // search_path: validate reads the log and the catalogs in one snapshot.
  bool in_caller_transaction = false;
};

[[nodiscard]] SchemaDescription describe_postgres(Connection& conn, const DescribeOptions& options);

// Runs `read` in one read-only REPEATABLE READ snapshot with an empty search_path, so that every
// name the server prints (types, referenced tables, view bodies) is schema-qualified the same
// way whatever the role's own search_path is. Commits after; rolls back on a database error.
template <typename Read>
auto in_read_only_snapshot(Connection& conn, Read&& read) -> decltype(read()) {
  conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET LOCAL search_path = ''");
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
