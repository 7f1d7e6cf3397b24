#pragma once
// The log table's qualified name, as given by --log-table.
#include <string>
#include <string_view>

namespace stepwise {

struct TableName {
  std::string schema;  // as stored in the catalog (unquoted parts folded to lower case)
  std::string table;
  [[nodiscard]] std::string display() const { return schema + "." + table; }
  bool operator==(const TableName&) const = default;
};

// Parses "table", "schema.table", or double-quoted parts ("My Schema"."log").
// Parts are limited to letters, digits, '_' and '$' (plus '-' and space when quoted) and 63
// bytes: a name with quotes, semicolons or other punctuation is refused (UsageError naming
// `flag`), never pasted into SQL.
[[nodiscard]] TableName parse_table_name(std::string_view flag, std::string_view text);

// The lock table that sits next to the log table (lease strategy).
[[nodiscard]] TableName lock_table_for(const TableName& log);

// The no-op summary kept next to the log table (PostgreSQL; HistoryStore::matches): a sequence
// that every change to the log moves (through an always-enabled statement trigger calling a
// function), whose comment records the log's digest as last verified and the sequence value
// and log file it answers for.
struct NoopSummaryNames {
  TableName sequence;  // <log>_gen; its comment: "stepwise-noop-summary <digest> <gen> <filenode>"
  TableName function;  // <log>_changed(), the trigger's function
  std::string trigger = "stepwise_log_changed";
};
[[nodiscard]] NoopSummaryNames noop_summary_for(const TableName& log);

// The 64-bit advisory-lock key of a log table: first 8 bytes of
// SHA-256("stepwise:" + schema + "." + table). Per database, by PostgreSQL's own scoping.
[[nodiscard]] long long lock_key(const TableName& log);

}  // namespace stepwise
