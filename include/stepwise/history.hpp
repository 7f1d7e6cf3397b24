#pragma once
// The attempt log as values, and the per-version state derived from it. There is no "dirty"
// flag anywhere: every state below is computed from the attempts.
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "stepwise/migration.hpp"

namespace stepwise {

enum class Outcome { kRunning, kSucceeded, kFailed, kInterrupted, kAbandoned };
[[nodiscard]] std::string_view to_string(Outcome o);
[[nodiscard]] std::optional<Outcome> parse_outcome(std::string_view s);

// One row of the log table.
struct Attempt {
  long long id = 0;
  Version version = 0;
  std::string name;
  Direction direction = Direction::kUp;
  Outcome outcome = Outcome::kSucceeded;
  std::string checksum;
  int statements_done = 0;
  std::string started_at;   // as text from the server, for display
  std::string finished_at;  // empty while running
  std::string error;
  std::string sqlstate;
  // Format 3: "stepwise" (run by stepwise), "baseline" or "adopted:<tool>" (recorded by
  // `stepwise adopt`, never run by it); notes: what the adoption recorded with it (the other
  // tool's entry, accepted drift findings). Read with Detail::kFull only.
  std::string origin;
  std::string notes;
  bool operator==(const Attempt&) const = default;
};

enum class State {
  kApplied,     // latest successful attempt is an up
  kPending,     // never applied, or rolled back by a successful down
  kFailed,      // latest attempt failed (and the version is not applied)
  kUnfinished,  // latest attempt is still running, or its runner vanished
};
[[nodiscard]] std::string_view to_string(State s);

struct VersionState {
  Version version = 0;
  State state = State::kPending;
  bool applied = false;           // effect is in the database (applied, or a failed down)
  std::string applied_checksum;   // checksum of the up attempt that applied it
  std::string applied_at;         // finished_at of that attempt
  std::string applied_origin;     // origin of that attempt (empty: stepwise, or not read)
  std::string name;               // as logged
  std::optional<Attempt> latest;  // latest attempt of any kind
};

// Version -> state, for every version that has at least one attempt.
class History {
 public:
  History() = default;
  explicit History(std::vector<Attempt> attempts);  // in id order

  [[nodiscard]] const std::map<Version, VersionState>& versions() const noexcept { return states_; }
  [[nodiscard]] const VersionState* find(const Version& v) const;
  [[nodiscard]] bool is_applied(const Version& v) const;
  // Highest applied version, 0 when none.
  [[nodiscard]] Version current_version() const;
  [[nodiscard]] bool log_table_exists() const noexcept { return table_exists_; }
  void set_log_table_exists(bool e) noexcept { table_exists_ = e; }
  [[nodiscard]] const std::vector<Attempt>& attempts() const noexcept { return attempts_; }

 private:
  std::vector<Attempt> attempts_;
  std::map<Version, VersionState> states_;
  bool table_exists_ = true;
};

}  // namespace stepwise
