#!/usr/bin/env bash
# Benchmarks stepwise against floors measured in the same run, on a throw-away PostgreSQL
# with fsync ON (the server defaults). Prints medians, ranges and ratios:
#   1. no-op `up` (nothing pending) vs pq_ping (libpq connect, one query, exit): N=10, 1000 and
#      5000 embedded, and 1000 read with --source, which also shows pq_read (pq_ping that lists
#      the folder and reads and hashes every up file on every core while it connects: what any
#      tool reading the folder must do at least)
#   2. apply N=1000 migrations, one commit per step, vs `psql -1 -f all.sql` (and `psql -f`)
#   3. 32 concurrent `up` on a fresh database (100 migrations) vs one `up`
#   4. peak RSS of the no-op and of the 1000-step apply
# Runs of the tool and its floor alternate, so drifting machine load hits both alike.
# Usage: bench/bench.sh [--quick] [--noop-only]
#   (env: NOOP_RUNS, APPLY_RUNS, CONC_RUNS, BUILD_DIR)
set -euo pipefail
cd "$(dirname "$0")/.."
NOOP_RUNS=${NOOP_RUNS:-30}
APPLY_RUNS=${APPLY_RUNS:-5}
CONC_RUNS=${CONC_RUNS:-3}
NOOP_ONLY=0
for arg in "$@"; do
  case $arg in
    --quick) NOOP_RUNS=10; APPLY_RUNS=3; CONC_RUNS=1 ;;
    --noop-only) NOOP_ONLY=1 ;;
    *) echo "usage: bench/bench.sh [--quick] [--noop-only]" >&2; exit 2 ;;
  esac
done
BUILD_DIR=${BUILD_DIR:-build/release}
WORK=$(mktemp -d /tmp/stepwise-bench.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

if [ ! -x "$BUILD_DIR/stepwise" ]; then
  cmake --preset release >/dev/null && cmake --build --preset release >/dev/null
fi
command -v /usr/bin/time >/dev/null || { echo "bench: needs GNU time (apt-get install time)" >&2; exit 1; }
gcc -O2 -o "$WORK/pq_ping" bench/pq_ping.c -I"$(pg_config --includedir)" -lpq
gcc -O2 -o "$WORK/pq_read" bench/pq_read.c -I"$(pg_config --includedir)" -lpq -lcrypto -lpthread
bench/gen_migrations.sh "$WORK/m1000" 1000
bench/gen_migrations.sh "$WORK/m100" 100
bench/gen_migrations.sh "$WORK/m5000" 5000
# Binaries with the 1000 and 5000 generated migrations embedded, as an application would ship
# them: migrators of the same build (STEPWISE_BENCH_MIGRATORS), one generated file and a link
# each. The folders are copied to a stable place, and only when they changed.
for n in 1000 5000; do
  dir="$BUILD_DIR/bench-m$n"
  if ! diff -rq "$WORK/m$n/golang" "$dir" >/dev/null 2>&1; then
    rm -rf "$dir" && cp -r "$WORK/m$n/golang" "$dir"
  fi
done
abs_build=$(cd "$BUILD_DIR" && pwd)
cmake -S . -B "$BUILD_DIR" \
  -DSTEPWISE_BENCH_MIGRATORS="stepwise-m1000=$abs_build/bench-m1000;stepwise-m5000=$abs_build/bench-m5000" >/dev/null
cmake --build "$BUILD_DIR" --target stepwise stepwise-m1000 stepwise-m5000 >/dev/null
EMBED_BIN=$BUILD_DIR/stepwise-m1000
EMBED5000_BIN=$BUILD_DIR/stepwise-m5000
export BENCH_WORK=$WORK BUILD_DIR EMBED_BIN EMBED5000_BIN NOOP_RUNS APPLY_RUNS CONC_RUNS NOOP_ONLY
# Trust auth and fsync on: the same server set-up as the peers' baseline (shared/bench/pg_up.sh).
STEPWISE_TEST_AUTH=trust STEPWISE_TEST_FSYNC=on exec scripts/with-postgres.sh bash ${BENCH_TRACE:+-x} bench/bench_inner.sh
