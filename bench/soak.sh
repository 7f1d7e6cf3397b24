#!/usr/bin/env bash
# Soak mode of the fault suite: kill -9 at KILLS random instants (default 100) per scenario
# (1000 generated migrations and a concurrent-index set; advisory and lease locks), each
# followed by a plain `up`, on the release build against a throw-away PostgreSQL.
set -euo pipefail
cd "$(dirname "$0")/.."
export STEPWISE_FAULT_KILLS=${KILLS:-100}
cmake --preset release >/dev/null
cmake --build --preset release --target fault_tests stepwise >/dev/null
STEPWISE_REQUIRE_DB=1 scripts/with-postgres.sh build/release/tests/fault_tests "$@" 2>&1 | grep -E "measure|OK|FAIL|PASSED"
