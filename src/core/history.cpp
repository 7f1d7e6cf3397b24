#include "stepwise/history.hpp"

#include <algorithm>

namespace stepwise {

std::string_view to_string(Outcome o) {
  switch (o) {
    case Outcome::kRunning:
      return "running";
    case Outcome::kSucceeded:
      return "succeeded";
    case Outcome::kFailed:
      return "failed";
    case Outcome::kInterrupted:
      return "interrupted";
    case Outcome::kAbandoned:
      return "abandoned";
  }
  return "unknown";
}

std::optional<Outcome> parse_outcome(std::string_view s) {
  for (auto o : {Outcome::kRunning, Outcome::kSucceeded, Outcome::kFailed, Outcome::kInterrupted,
                 Outcome::kAbandoned})
    if (to_string(o) == s) return o;
  return std::nullopt;
}

std::string_view to_string(State s) {
  switch (s) {
    case State::kApplied:
      return "applied";
    case State::kPending:
      return "pending";
    case State::kFailed:
      return "failed";
    case State::kUnfinished:
      return "unfinished";
  }
  return "unknown";
}

History::History(std::vector<Attempt> attempts) : attempts_(std::move(attempts)) {
  std::stable_sort(attempts_.begin(), attempts_.end(),
                   [](const Attempt& a, const Attempt& b) { return a.id < b.id; });
  for (const auto& a : attempts_) {
    auto& st = states_[a.version];
    st.version = a.version;
    st.latest = a;
    if (st.name.empty() || a.direction == Direction::kUp) st.name = a.name;
    if (a.outcome == Outcome::kSucceeded) {
      st.applied = a.direction == Direction::kUp;
      if (st.applied) {
        st.applied_checksum = a.checksum;
        st.applied_at = a.finished_at;
        st.applied_origin = a.origin == "stepwise" ? std::string() : a.origin;
      } else {
        st.applied_checksum.clear();
        st.applied_at.clear();
        st.applied_origin.clear();
      }
    }
  }
  for (auto& [v, st] : states_) {
    const auto& latest = *st.latest;
    switch (latest.outcome) {
      case Outcome::kSucceeded:
        st.state = st.applied ? State::kApplied : State::kPending;
        break;
      case Outcome::kRunning:
        st.state = State::kUnfinished;
        break;
      case Outcome::kFailed:
      case Outcome::kInterrupted:
      case Outcome::kAbandoned:
        // A failed transactional step left nothing behind; a failed down left the version applied.
        st.state = st.applied ? State::kApplied : State::kFailed;
        break;
    }
  }
}

const VersionState* History::find(const Version& v) const {
  auto it = states_.find(v);
  return it == states_.end() ? nullptr : &it->second;
}

bool History::is_applied(const Version& v) const {
  const auto* s = find(v);
  return s != nullptr && s->state == State::kApplied;
}

Version History::current_version() const {
  Version v;
  for (const auto& [ver, st] : states_)
    if (st.state == State::kApplied) v = std::max(v, ver);
  return v;
}

}  // namespace stepwise
