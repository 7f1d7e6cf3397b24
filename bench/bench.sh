#!/usr/bin/env bash
# Benchmarks stepwise against floors measured in the same run, on a throw-away PostgreSQL
# with fsync ON (the server defaults). Prints medians, ranges and ratios:
#   1. no-op `up` (nothing pending) vs pq_ping (libpq connect, one query, exit): N=10, 1000 and
#      5000 embedded, and 1000 read with --source
#   2. apply N=1000 migrations, one commit per step, vs `psql -1 -f all.sql` (and `psql -f`)
#   3. 32 concurrent `up` on a fresh database (100 migrations) vs one `up`
#   4. peak RSS of the no-op and of the 1000-step apply
# Runs of the tool and its floor alternate, so drifting machine load hits both alike.
# Usage: bench/bench.sh [--quick] [--noop-only]
#   (env: NOOP_RUNS, APPLY_RUNS, BUILD_DIR, EMBED_DIR, EMBED5000_DIR)
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
bench/gen_migrations.sh "$WORK/m1000" 1000
bench/gen_migrations.sh "$WORK/m100" 100
bench/gen_migrations.sh "$WORK/m5000" 5000
# Binaries with the 1000 and 5000 generated migrations embedded, as an application would ship
# them. The folders are generated afresh each run, so the builds point at a stable copy.
EMBED_DIR=${EMBED_DIR:-build/bench-embed1000}
EMBED5000_DIR=${EMBED5000_DIR:-build/bench-embed5000}
for n in 1000 5000; do
  dir=$EMBED_DIR; [ $n = 5000 ] && dir=$EMBED5000_DIR
  mkdir -p "$dir"
  rm -rf "$dir/migrations" && cp -r "$WORK/m$n/golang" "$dir/migrations"
  cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=Release -DSTEPWISE_BUILD_TESTS=OFF \
    -DSTEPWISE_MIGRATIONS_DIR="$(cd "$dir" && pwd)/migrations" >/dev/null
  cmake --build "$dir" --target stepwise >/dev/null
done
export BENCH_WORK=$WORK BUILD_DIR EMBED_DIR EMBED5000_DIR NOOP_RUNS APPLY_RUNS CONC_RUNS NOOP_ONLY
# Trust auth and fsync on: the same server set-up as the peers' baseline (shared/bench/pg_up.sh).
STEPWISE_TEST_AUTH=trust STEPWISE_TEST_FSYNC=on exec scripts/with-postgres.sh bash ${BENCH_TRACE:+-x} bench/bench_inner.sh
