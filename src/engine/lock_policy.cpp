// Which lock a run takes, and its lease (stepwise/lock_policy.hpp).
#include "stepwise/lock_policy.hpp"

#include <fmt/format.h>

namespace stepwise {

LockDecision decide_lock(const EngineRules& rules, LockStrategy requested,
                         const std::function<bool()>& is_pooled) {
  LockDecision d;
  if (rules.pooler_matters()) d.pooled = is_pooled();
  d.kind = rules.choose_lock(requested, d.pooled);
  if (d.pooled && requested == LockStrategy::kAuto) {
    d.level = LockDecision::Level::kInfo;
    d.message =
        "a connection pooler is between stepwise and the server (the backend pid differs from "
        "the server session's): using the lease lock";
  } else if (d.pooled && d.kind != LockKind::kLease) {
    d.level = LockDecision::Level::kWarn;
    d.message =
        "a connection pooler is between stepwise and the server: --lock-strategy advisory is "
        "safe only in session pooling mode; a step that lands on another server session stops "
        "with exit code 9, unapplied";
  }
  return d;
}

LeaseLock::Options lease_options(LeaseSetup setup) {
  LeaseLock::Options o;
  o.log_table = std::move(setup.log_table);
  o.holder_id = fmt::format("{}:{}:{:08x}", setup.host, setup.pid, setup.nonce);
  o.ttl = setup.ttl;
  o.open_connection = std::move(setup.open_connection);
  o.on_lost = [stop = setup.stop, active = setup.active,
               log_error = std::move(setup.log_error)](const std::string& why) {
    if (log_error) log_error(fmt::format("lost the migration lease: {}; stopping", why));
    if (stop != nullptr) stop->store(true);
    if (active != nullptr)
      if (auto* c = active->load()) c->cancel();
  };
  return o;
}

}  // namespace stepwise
