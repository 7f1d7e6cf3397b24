#pragma once
// The attempt log table: its DDL, reading it, and writing attempts (AttemptLog for the runner,
// plus the rows adopt, repair and upgrade --backup record). All log-table SQL lives in
// history_store.cpp.
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "stepwise/attempt_log.hpp"
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

class HistoryStore final : public AttemptLog {
 public:
  HistoryStore(Connection& conn, TableName table, RunnerIdentity who);

  // Reads the no-op summary (one row) when it is current, the log's server-side digest
  // otherwise.
  [[nodiscard]] bool matches(std::string_view log_digest) override;
  [[nodiscard]] History read(Detail detail = Detail::kPlanning) override;
  // Creates the schema and table when missing, and upgrades an older layout of the table in
  // place (format 1, version bigint -> format 2, version text -> format 3, origin and notes
  // columns). Call only under the lock. The same one catalog query also looks for the tables
  // in `refuse_if_present`. On PostgreSQL it also puts the no-op summary in place
  // (noop_summary_for; best effort, see ensure_summary).
  std::optional<TableName> ensure_table(
      const std::vector<TableName>& refuse_if_present = {}) override;
  [[nodiscard]] const TableName& table() const noexcept override { return table_; }

  // The first statement of a step's transaction, for locks that a connection pooler can lose
  // between server sessions: it waits for any other step transaction on this log to end, then
  // aborts the transaction with SQLSTATE kFenceSqlstate unless `held_check` (Lock::
  // held_check_sql) is true in this session and the newest attempt of the step's version is
  // still `latest_attempt`, the one this run planned from. Exactly once, whatever the pooler.
  [[nodiscard]] std::string step_fence(const Step& step, std::optional<long long> latest_attempt,
                                       std::string_view held_check) override;
  // One round trip (the fence, when there is one, in a round trip of its own, so that the
  // statement pg_stat_activity shows is the step's script): "BEGIN; <setup> INSERT attempt;"
  // + body + the UPDATE that finishes the attempt (found by the log sequence's currval, which
  // only this session's insert can have set) + COMMIT.
  void run_transactional(const Step& step, std::string_view setup, std::string_view fence,
                         std::string_view body, std::span<const std::string> copy_data) override;
  [[nodiscard]] int lines_before_body(const Step& step, std::string_view setup,
                                      bool fenced) override;

  [[nodiscard]] long long insert_running(const Step& step) override;
  // insert_running() behind step_fence(), in one transaction.
  [[nodiscard]] long long insert_running_fenced(const Step& step, std::string_view fence) override;
  void set_progress(long long id, int statements_done) override;
  void run_with_progress(long long id, int statements_done, std::string_view statement,
                         std::span<const std::string> copy_data) override;
  void finish(long long id, Outcome outcome, int statements_done, const DbError* error) override;
  void insert_finished(const Step& step, Outcome outcome, double seconds, int statements_done,
                       const DbError* error) override;
  void mark_abandoned(long long id) override;
  // Records the log's digest in the no-op summary, answering for the log as it is now (a
  // transaction of its own). Call under the lock, after the run's last step. Does nothing when
  // ensure_table() could not put the summary in place; a failure leaves it stale (safe).
  void refresh_summary() override;

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
  [[nodiscard]] std::string qualified();  // quoted "schema"."table"

 private:
  void upgrade_layout(bool cockroach, bool version_text, bool has_origin);
  // Throws Error(kFailed) when an enabled BEFORE trigger or a rule that stepwise did not create
  // is on the log (PostgreSQL): it could drop or rewrite attempt rows without an error.
  void refuse_row_rewriters();
  [[nodiscard]] std::string quoted(const TableName& name);  // "schema"."name"
  // pg_catalog.to_regclass('"schema"."name"'): the relation of that name, or NULL.
  [[nodiscard]] std::string regclass_sql(const TableName& name);
  // True when sequence `seq` is the one OWNED BY `column` of the log (pg_get_serial_sequence),
  // which only the log's owner can arrange: the no-op summary's sequences are trusted only so.
  [[nodiscard]] std::string linked_sql(const TableName& seq, std::string_view column);
  // The no-op digest as one SELECT over the log (a row with NULL unless all is applied).
  [[nodiscard]] std::string digest_sql();
  // The hash the summary sequence holds for `digest`, the counter's value and the log's
  // relation (SQL expressions each), over the log as it is.
  [[nodiscard]] static std::string summary_hash_sql(std::string_view digest,
                                                    std::string_view counter, std::string_view log);
  // Creates the counter and summary sequences, the triggers' function and the always-enabled
  // triggers on the log, when any is missing or altered (and the role owns the log); failures
  // leave summary_ready_ false.
  void ensure_summary();
  std::string insert_sql(const Step& step, Outcome outcome, std::string_view extra_cols,
                         std::string_view extra_vals);
  std::string running_sql(const Step& step);
  std::string attempt_row_sql(const Step& step, std::string_view setup);
  std::string transactional_suffix();
  std::string progress_sql(long long id, int statements_done);
  // Runs `sql` (a whole transaction), rolling back when it fails.
  void execute_or_roll_back(std::string_view sql, std::span<const std::string> copy_data = {});

  Connection& conn_;
  TableName table_;
  RunnerIdentity who_;
  std::string qualified_;
  bool summary_ready_ = false;  // ensure_table() put the no-op summary in place
};

}  // namespace stepwise
