#!/usr/bin/env bash
# The whole test suite on a fresh Debian machine: installs the dependencies, builds the dev
# preset (warnings as errors, AddressSanitizer + UndefinedBehaviorSanitizer), starts a
# throw-away PostgreSQL, and runs every test with ctest. Extra arguments go to ctest
# (e.g. -L unit, -R Concurrency).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
# The other migration tools the adopt tests run for real (npm, pinned, cached outside the tree):
# exports STEPWISE_TEST_DBMATE etc.; without npm or the registry one warning, and they skip.
peer_env=$(scripts/install-peer-tools.sh --print-env)
eval "$peer_env"
cmake --preset dev >/dev/null
cmake --build --preset dev
echo "test.sh: dependencies and build took ${SECONDS} s"
# A short fuzzing run of the file and releases.json parsers (clang, libFuzzer, ASan, UBSan);
# scripts/fuzz.sh runs longer by hand (FUZZ_SECONDS).
FUZZ_SECONDS=${FUZZ_SECONDS:-15} scripts/fuzz.sh
echo "test.sh: fuzzing done at ${SECONDS} s"
# Integration tests must not silently skip here: a missing server is a failure.
export STEPWISE_REQUIRE_DB=1
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$PWD/tests/lsan.supp:print_suppressions=0}
exec scripts/with-postgres.sh ctest --preset dev -j "$(( $(nproc) * 2 ))" "$@"
