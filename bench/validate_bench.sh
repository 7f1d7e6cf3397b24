#!/usr/bin/env bash
# validate (history + drift check against the expected schema) on a database of N tables
# (default 10,000: one table with 3 columns, a primary key and one index each), against the
# floor pg_dump --schema-only of the same database, measured alternately in one run.
# Targets (PRODUCT.md, issue 15): validate <= 0.5x pg_dump --schema-only in time, and peak RSS
# no higher than pg_dump's; both ratios are printed.
# Usage: bench/validate_bench.sh [N]   (env: RUNS, BUILD_DIR)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-10000}
RUNS=${RUNS:-5}
BUILD_DIR=${BUILD_DIR:-build/release}
if [ ! -x "$BUILD_DIR/stepwise" ]; then
  cmake --preset release >/dev/null && cmake --build --preset release >/dev/null
fi
W=$(mktemp -d /tmp/stepwise-vbench.XXXXXX)
trap 'rm -rf "$W"' EXIT
bench/gen_migrations.sh "$W/m" "$N"
export W N RUNS SW="$PWD/$BUILD_DIR/stepwise"
STEPWISE_TEST_AUTH=trust exec scripts/with-postgres.sh bash -c '
set -euo pipefail
url="${DATABASE_URL%/*}/vbench"
psql -qAtX "$DATABASE_URL" -c "CREATE DATABASE vbench" >/dev/null
# The set applied by stepwise itself, then its description recorded as the expected schema.
"$SW" --database-url "$url" --source "$W/m/golang" up --log-level warn
ver=$(ls "$W/m/golang" | tail -1 | cut -d_ -f1 | sed "s/^0*//")
mkdir -p "$W/m/golang/expected"
"$SW" --database-url "$url" --source "$W/m/golang" describe --output json > "$W/m/golang/expected/$ver.json"
"$SW" --database-url "$url" --source "$W/m/golang" validate >/dev/null   # must pass: exit 0
now_ms() { date +%s%3N; }
: > "$W/sw"; : > "$W/dump"
for i in $(seq 1 "$RUNS"); do
  s=$(now_ms); "$SW" --database-url "$url" --source "$W/m/golang" validate >/dev/null; e=$(now_ms); echo $((e - s)) >> "$W/sw"
  s=$(now_ms); pg_dump --schema-only -d "$url" >/dev/null; e=$(now_ms); echo $((e - s)) >> "$W/dump"
done
med() { sort -n | awk "{a[NR]=\$1} END {print a[int((NR+1)/2)], a[1], a[NR]}"; }
read -r sm smin smax < <(med < "$W/sw")
read -r dm dmin dmax < <(med < "$W/dump")
rss=$( { /usr/bin/time -f "%M" "$SW" --database-url "$url" --source "$W/m/golang" validate >/dev/null; } 2>&1 | tail -1)
dump_rss=$( { /usr/bin/time -f "%M" pg_dump --schema-only -d "$url" >/dev/null; } 2>&1 | tail -1)
printf "validate with drift check, %d tables: stepwise %d ms [%d–%d]  pg_dump --schema-only %d ms [%d–%d]  time ratio %.2fx (target <= 0.5x)\n" \
  "$N" "$sm" "$smin" "$smax" "$dm" "$dmin" "$dmax" "$(awk -v a="$sm" -v b="$dm" "BEGIN {print a / b}")"
printf "peak RSS: stepwise %s KiB  pg_dump %s KiB  RSS ratio %.2fx (target <= 1.0x)\n" \
  "$rss" "$dump_rss" "$(awk -v a="$rss" -v b="$dump_rss" "BEGIN {print a / b}")"
'
