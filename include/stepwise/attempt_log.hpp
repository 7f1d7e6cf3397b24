#pragma once
// What the runner needs from the attempt log, and nothing more: read it, make sure it exists,
// and record each step's attempts. HistoryStore implements it on the log table (all its SQL
// lives there); the runner's unit tests implement it in memory, so that they assert on
// attempts, not on SQL text.
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "stepwise/errors.hpp"
#include "stepwise/history.hpp"
#include "stepwise/plan.hpp"
#include "stepwise/table_name.hpp"

namespace stepwise {

// Raised by a step fence: the step ran on a session that does not hold the migration lock.
inline constexpr std::string_view kFenceSqlstate = "SWLCK";

class AttemptLog {
 public:
  virtual ~AttemptLog() = default;

  enum class Detail {
    kPlanning,  // what the planner needs: the no-op `up` path, kept as lean as it can be
    kFull,      // plus names, times and error texts, for status and validate
  };
  // The no-op check, one small row whatever the log's length: true when every logged version's
  // newest attempt is a succeeded up and their (version, checksum) pairs digest to
  // `log_digest` (MigrationSet::log_digest), i.e. exactly that set is applied and nothing else.
  // False on any doubt, any error included: read() then decides.
  [[nodiscard]] virtual bool matches(std::string_view log_digest) = 0;
  // Reads every attempt in one round trip. A missing log reads as an empty history with
  // log_table_exists() == false; nothing is created.
  [[nodiscard]] virtual History read(Detail detail = Detail::kPlanning) = 0;
  // Creates the log when missing (and brings an older layout up to date). Call only under the
  // lock. With `refuse_if_present` (other tools' history tables): when one of them exists,
  // returns it and creates or alters nothing.
  virtual std::optional<TableName> ensure_table(
      const std::vector<TableName>& refuse_if_present = {}) = 0;
  [[nodiscard]] virtual const TableName& table() const noexcept = 0;

  // --- a transactional step: its attempt commits with it, or not at all
  // The step's fence (see HistoryStore::step_fence): proves, first thing in the step's
  // transaction, that this server session holds the lock (`held_check`) and that the newest
  // attempt of the version is still `latest_attempt`. Opaque to the caller: it is only handed
  // back to run_transactional / insert_running_fenced.
  [[nodiscard]] virtual std::string step_fence(const Step& step,
                                               std::optional<long long> latest_attempt,
                                               std::string_view held_check) = 0;
  // Opens the step's transaction (behind `fence` when not empty), records a succeeded attempt,
  // runs `body` (with `copy_data` for its COPY ... FROM STDIN statements; an empty body for a
  // placeholder file) under the transaction-local `setup`, finishes the attempt and commits.
  // On a DbError it rolls back and rethrows: nothing of the step, its attempt included, is
  // applied.
  virtual void run_transactional(const Step& step, std::string_view setup, std::string_view fence,
                                 std::string_view body, std::span<const std::string> copy_data) = 0;
  // The lines run_transactional sends before `body` in its text (the server's "LINE n" counts
  // from the start of that text).
  [[nodiscard]] virtual int lines_before_body(const Step& step, std::string_view setup,
                                              bool fenced) = 0;

  // --- a step run statement by statement: an attempt row before, its progress after each
  // statement, its outcome at the end, each its own transaction
  [[nodiscard]] virtual long long insert_running(const Step& step) = 0;
  [[nodiscard]] virtual long long insert_running_fenced(const Step& step,
                                                        std::string_view fence) = 0;
  virtual void set_progress(long long id, int statements_done) = 0;
  // Runs a data-only `statement` and records `statements_done` in one transaction, so that a
  // kill between the two cannot make the next run apply it again. Rolls back on DbError.
  virtual void run_with_progress(long long id, int statements_done, std::string_view statement,
                                 std::span<const std::string> copy_data) = 0;
  virtual void finish(long long id, Outcome outcome, int statements_done, const DbError* error) = 0;

  // A failed or interrupted attempt whose transaction rolled back: recorded afterwards.
  virtual void insert_finished(const Step& step, Outcome outcome, double seconds,
                               int statements_done, const DbError* error) = 0;
  // Marks an attempt whose runner is gone (found under the lock).
  virtual void mark_abandoned(long long id) = 0;

  // After the run's last step, under the lock: lets the next no-op answer from one row
  // (matches()) instead of reading the whole log. Never throws; a log without a summary
  // ignores it.
  virtual void refresh_summary() = 0;
};

}  // namespace stepwise
