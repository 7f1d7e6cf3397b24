#!/usr/bin/env bash
# stepwise check (lint + up/down/up round trip of every step) of an N-step history with downs
# (default 150; gen_migrations.sh's tables), against the floor: psql applying all ups, all
# downs (newest first) and all ups again, one file per step, on the same server. Measured
# alternately; prints medians, ranges and the ratio. Target (PRODUCT.md): <= 3x.
# Usage: bench/check_bench.sh [N]   (env: RUNS, BUILD_DIR)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-150}
RUNS=${RUNS:-3}
BUILD_DIR=${BUILD_DIR:-build/release}
if [ ! -x "$BUILD_DIR/stepwise" ]; then
  cmake --preset release >/dev/null && cmake --build --preset release --target stepwise >/dev/null
fi
W=$(mktemp -d /tmp/stepwise-cbench.XXXXXX)
chmod 755 "$W"
trap 'rm -rf "$W"' EXIT
bench/gen_migrations.sh "$W/m" "$N"
chmod -R a+rX "$W"
export W N RUNS SW="$PWD/$BUILD_DIR/stepwise"
STEPWISE_TEST_AUTH=trust exec scripts/with-postgres.sh bash -c '
set -euo pipefail
base="${DATABASE_URL%/*}"
now_ms() { date +%s%3N; }
ups=$(ls "$W/m/golang"/*.up.sql | sort)
downs=$(ls "$W/m/golang"/*.down.sql | sort -r)
psql_floor() {
  psql -qAtX "$DATABASE_URL" -c "CREATE DATABASE cbench" >/dev/null
  local t0; t0=$(now_ms)
  for f in $ups $downs $ups; do psql -qAtX -v ON_ERROR_STOP=1 "$base/cbench" -1 -f "$f" >/dev/null; done
  local t1; t1=$(now_ms)
  psql -qAtX "$DATABASE_URL" -c "DROP DATABASE cbench" >/dev/null
  echo $((t1 - t0))
}
check_run() {
  local t0; t0=$(now_ms)
  DATABASE_URL= STEPWISE_DATABASE_URL= "$SW" --source "$W/m/golang" --log-level warn check \
    --scratch-url "$DATABASE_URL" --lint-only >/dev/null 2>&1 || true
  local t1; t1=$(now_ms)
  DATABASE_URL= STEPWISE_DATABASE_URL= "$SW" --source "$W/m/golang" --log-level warn check \
    --scratch-url "$DATABASE_URL" > "$W/check.out" 2>&1 || { cat "$W/check.out" >&2; }
  local t2; t2=$(now_ms)
  echo "$((t2 - t1)) $((t1 - t0))"
}
ps=(); cs=(); ls=()
for r in $(seq 1 "$RUNS"); do
  ps+=("$(psql_floor)")
  read -r c l < <(check_run)
  cs+=("$c"); ls+=("$l")
done
med() { printf "%s\n" "$@" | sort -n | awk "{a[NR]=\$1} END {print a[int((NR+1)/2)]}"; }
rng() { printf "%s\n" "$@" | sort -n | awk "NR==1{lo=\$1} {hi=\$1} END {print lo \"-\" hi}"; }
p=$(med "${ps[@]}"); c=$(med "${cs[@]}"); l=$(med "${ls[@]}")
echo "steps: $N (ups, downs, ups: $((3 * N)) files)"
echo "psql ups+downs+ups: median ${p} ms (range $(rng "${ps[@]}"))"
echo "stepwise check:     median ${c} ms (range $(rng "${cs[@]}")); lint alone ${l} ms"
awk -v c="$c" -v p="$p" "BEGIN {printf \"ratio check / psql: %.2fx (target <= 3x)\n\", c / p}"
grep -c "" "$W/check.out" | xargs echo "check output lines:"
'
