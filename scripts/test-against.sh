#!/usr/bin/env bash
# test-against.sh URL [ctest arguments...]
# Runs the integration suites against any server given by URL (an admin role that may create
# and drop databases), e.g. a CockroachDB node:
#   cockroach start-single-node --insecure --listen-addr=127.0.0.1:26257 --background
#   scripts/test-against.sh 'postgresql://root@127.0.0.1:26257/defaultdb?sslmode=disable' -L integration
# Default ctest selection: the integration and fault labels. See docs/cockroachdb.md.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 1 ] || { echo "usage: test-against.sh URL [ctest args...]" >&2; exit 2; }
url=$1; shift
scripts/install-deps.sh
cmake --preset dev >/dev/null
cmake --build --preset dev
export STEPWISE_TEST_DATABASE_URL=$url STEPWISE_REQUIRE_DB=1
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$PWD/tests/lsan.supp:print_suppressions=0}
[ $# -gt 0 ] || set -- -L 'integration|hostile|fault'
exec ctest --preset dev "$@"
