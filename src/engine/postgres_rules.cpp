// PostgreSQL's side of the engine seam (stepwise/engine.hpp).
#include "stepwise/engine.hpp"

namespace stepwise {

LockKind PostgresRules::choose_lock(LockStrategy requested, bool pooled) const {
  switch (requested) {
    case LockStrategy::kAdvisory:
      return LockKind::kAdvisory;
    case LockStrategy::kLease:
      return LockKind::kLease;
    case LockStrategy::kAuto:
      break;
  }
  // A session advisory lock taken through a pooler in transaction mode stays behind on some
  // server session; a lease is a row, whatever session writes it.
  return pooled ? LockKind::kLease : LockKind::kAdvisory;
}

SchemaDescription PostgresRules::describe(Connection& conn, const DescribeOptions& options) const {
  return read_catalogs(conn, options);
}

const EngineRules& postgres_rules() {
  static const PostgresRules rules;
  return rules;
}

}  // namespace stepwise
