#pragma once
// The error family used inside stepwise, and the process exit codes they map to.
// Exceptions are thrown deep inside and translated once, at the CLI edge.
#include <stdexcept>
#include <string>

namespace stepwise {

// Stable exit codes; documented in docs/exit-codes.md. Never renumber.
enum class ExitCode : int {
  kOk = 0,
  kFailed = 1,             // a migration step failed (attempt recorded) or another database error
  kUsage = 2,              // bad command line: unknown flag, bad duration, bad value
  kInvalidSource = 3,      // bad migration files or releases.json
  kConnect = 4,            // could not connect (timeout, authentication, malformed URL)
  kLockTimeout = 5,        // another runner held the lock for longer than --lock-timeout
  kRefused = 6,            // plan refused: out of order, unknown applied version, unknown target
  kInterrupted = 7,        // SIGINT/SIGTERM: running statement cancelled, attempt recorded
  kConnectionLost = 8,     // the server went away mid-run; a re-run finishes the job
  kLockLost = 9,           // a step ran on a session that does not hold the lock (a pooler)
  kBehind = 10,            // validate: migrations pending / log table missing
  kAhead = 11,             // validate: database has versions this build does not know
  kChecksumMismatch = 12,  // validate: an applied migration's file changed
  kFailedAttempt = 13,     // validate: a failed or unfinished attempt is the latest for a version
  kDrift = 14,             // validate: live schema differs from the expected one
  kWaitTimeout = 15,       // validate --wait: did not validate within --timeout
  kReadOnly = 16,          // there is work, but the server is a read-only standby / read-only
  kCheckFailed = 17,       // check: errors found (or warnings, with --strict)
  kFleetIncomplete = 18,   // a fleet run: at least one target did not succeed (see its result)
};

class Error : public std::runtime_error {
 public:
  Error(ExitCode code, std::string message, std::string hint = {})
      : std::runtime_error(std::move(message)), code_(code), hint_(std::move(hint)) {}
  [[nodiscard]] ExitCode code() const noexcept { return code_; }
  [[nodiscard]] const std::string& hint() const noexcept { return hint_; }

 private:
  ExitCode code_;
  std::string hint_;
};

struct UsageError : Error {
  explicit UsageError(std::string message, std::string hint = {})
      : Error(ExitCode::kUsage, std::move(message), std::move(hint)) {}
};

// One or more problems with the migration files; what() holds one line per problem.
struct SourceError : Error {
  explicit SourceError(std::string message, std::string hint = {})
      : Error(ExitCode::kInvalidSource, std::move(message), std::move(hint)) {}
};

// An error reported by the server for a statement.
class DbError : public Error {
 public:
  DbError(std::string message, std::string sqlstate, std::string detail = {})
      : Error(ExitCode::kFailed, std::move(message)),
        sqlstate_(std::move(sqlstate)),
        detail_(std::move(detail)) {}
  [[nodiscard]] const std::string& sqlstate() const noexcept { return sqlstate_; }
  // The server's full text (message, LINE n:, detail, hint) for the attempt log.
  [[nodiscard]] const std::string& detail() const noexcept { return detail_; }

 private:
  std::string sqlstate_;
  std::string detail_;
};

struct ConnectError : Error {
  explicit ConnectError(std::string message, std::string hint = {})
      : Error(ExitCode::kConnect, std::move(message), std::move(hint)) {}
};

struct ConnectionLost : Error {
  explicit ConnectionLost(std::string message)
      : Error(ExitCode::kConnectionLost, std::move(message),
              "run the same command again: finished steps are recorded and the rest is resumed") {}
};

struct LockTimeout : Error {
  explicit LockTimeout(std::string message, std::string hint = {})
      : Error(ExitCode::kLockTimeout, std::move(message), std::move(hint)) {}
};

struct PlanRefused : Error {
  explicit PlanRefused(std::string message, std::string hint = {})
      : Error(ExitCode::kRefused, std::move(message), std::move(hint)) {}
};

struct Interrupted : Error {
  explicit Interrupted(std::string message)
      : Error(ExitCode::kInterrupted, std::move(message),
              "run the same command again to finish the job") {}
};

}  // namespace stepwise
