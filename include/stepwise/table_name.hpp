#pragma once
// The log table's qualified name, as given by --log-table.
#include <optional>
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

// The no-op summary kept next to the log table (PostgreSQL; HistoryStore::matches): a counter
// sequence that every change to the log moves (through always-enabled triggers calling a
// function), and a second sequence whose value is a hash of the log's digest as last verified
// with the counter value and log file it answers for.
struct NoopSummaryNames {
  TableName counter;   // <log>_gen
  TableName summary;   // <log>_noop
  TableName function;  // <log>_changed(), the triggers' function
  std::string row_trigger = "stepwise_log_changed";
  std::string truncate_trigger = "stepwise_log_truncated";
};
// nullopt when the log's name leaves no room for the suffixes (over 57 bytes): no summary.
[[nodiscard]] std::optional<NoopSummaryNames> noop_summary_for(const TableName& log);

// The 64-bit advisory-lock key of a log table: first 8 bytes of
// SHA-256("stepwise:" + schema + "." + table). Per database, by PostgreSQL's own scoping.
[[nodiscard]] long long lock_key(const TableName& log);

}  // namespace stepwise
