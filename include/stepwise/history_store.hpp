#pragma once
// The attempt log table: its DDL, reading it, and writing attempts. All log-table SQL lives in
// history_store.cpp.
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "stepwise/database.hpp"
#include "stepwise/errors.hpp"
#include "stepwise/history.hpp"
#include "stepwise/plan.hpp"
#include "stepwise/table_name.hpp"

namespace stepwise {

// Who runs: written into every attempt row.
struct RunnerIdentity {
  std::string host;
  int pid = 0;
  std::string tool_version;
};

// A row `stepwise adopt` records: the migration, and when the other tool applied it.
struct AdoptedRow {
  const Migration* migration = nullptr;
  std::optional<long long> applied_at_ms;  // ms since the epoch; none: now
  std::string notes;                       // the other tool's entry, accepted drift findings
};

// Raised by a step fence: the step ran on a session that does not hold the migration lock.
inline constexpr std::string_view kFenceSqlstate = "SWLCK";

class HistoryStore {
 public:
  HistoryStore(Connection& conn, TableName table, RunnerIdentity who);

  enum class Detail {
    kPlanning,  // what the planner needs: the no-op `up` path, kept as lean as it can be
    kFull,      // plus names, times and error texts, for status and validate
  };
  // Reads every attempt in one round trip. A missing table (or schema) reads as an empty
  // history with log_table_exists() == false; nothing is created.
  [[nodiscard]] History read(Detail detail = Detail::kPlanning);
  // Creates the schema and table when missing, and upgrades an older layout of the table in
  // place (format 1, version bigint -> format 2, version text -> format 3, origin and notes
  // columns). Call only under the lock.
  // With `refuse_if_present` (other tools' history tables): the same one catalog query also
  // looks for them, and when one exists, returns it and creates or alters nothing.
  std::optional<TableName> ensure_table(const std::vector<TableName>& refuse_if_present = {});

  // A transactional step is one round trip: prefix + script + suffix. The prefix is
  // "BEGIN; <setup> INSERT attempt;" ending in a newline; the suffix ends any statement the
  // script left open, marks the attempt finished and commits. The attempt is found by the log
  // sequence's currval, which only this session's insert can have set.
  [[nodiscard]] std::string transactional_prefix(const Step& step, std::string_view setup);
  // The prefix without its "BEGIN;\n": "<setup> INSERT attempt;\n", for a transaction that
  // begin_fenced() opened.
  [[nodiscard]] std::string attempt_row_sql(const Step& step, std::string_view setup);
  [[nodiscard]] std::string transactional_suffix();

  // The first statement of a step's transaction, for locks that a connection pooler can lose
  // between server sessions: it waits for any other step transaction on this log to end, then
  // aborts the transaction with SQLSTATE kFenceSqlstate unless `held_check` (Lock::
  // held_check_sql) is true in this session and the newest attempt of the step's version is
  // still `latest_attempt`, the one this run planned from. Exactly once, whatever the pooler.
  [[nodiscard]] std::string step_fence(const Step& step, std::optional<long long> latest_attempt,
                                       std::string_view held_check);
  // Opens a step's transaction behind `fence` (step_fence()): "BEGIN;\n" + fence.
  [[nodiscard]] static std::string begin_fenced(std::string_view fence);
  // insert_running() behind step_fence(), in one transaction.
  [[nodiscard]] long long insert_running_fenced(const Step& step, std::string_view fence);

  // Autocommit rows for no-transaction steps and for recording failures after a rollback.
  [[nodiscard]] long long insert_running(const Step& step);
  void set_progress(long long id, int statements_done);
  // set_progress()'s statement, to commit in the same transaction as a statement of the step.
  [[nodiscard]] std::string progress_sql(long long id, int statements_done);
  void finish(long long id, Outcome outcome, int statements_done, const DbError* error);
  void insert_finished(const Step& step, Outcome outcome, double seconds, int statements_done,
                       const DbError* error);
  // A pg_dump taken before an upgrade: a row of kind 'backup' (not a migration attempt).
  void record_backup(const Version& database_version, const std::string& path,
                     const std::string& checksum, double seconds);
  // `stepwise repair`: a person decided what an interrupted step left behind. "applied" records
  // a succeeded attempt; "rolled back" an abandoned one with nothing done (run again in full).
  void record_repair(const Step& step, bool applied);
  // `stepwise adopt`: succeeded up attempts that stepwise never ran, origin "baseline" or
  // "adopted:<tool>", in one transaction. `held_check` (Lock::held_check_sql) is checked first
  // in that transaction when not empty. Call under the lock, after ensure_table().
  void record_adopted(const std::vector<AdoptedRow>& rows, std::string_view origin,
                      std::string_view held_check);
  // Marks an attempt whose runner is gone (found under the lock).
  void mark_abandoned(long long id);

  [[nodiscard]] const TableName& table() const noexcept { return table_; }
  [[nodiscard]] std::string qualified();  // quoted "schema"."table"

 private:
  void upgrade_layout(bool cockroach, bool version_text, bool has_origin);
  std::string insert_sql(const Step& step, Outcome outcome, std::string_view extra_cols,
                         std::string_view extra_vals);
  std::string running_sql(const Step& step);

  Connection& conn_;
  TableName table_;
  RunnerIdentity who_;
  std::string qualified_;
};

}  // namespace stepwise
