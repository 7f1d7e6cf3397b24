#!/usr/bin/env bash
# Fleets (issue 19): T tenant schemas x M migrations (default 200 x 20) on one database, on a
# throw-away PostgreSQL with fsync on (as bench.sh). Prints medians and ratios:
#   1. apply: `stepwise --tenant-schemas 'tenant_*' --parallel P up` (P = 8) against a shell loop
#      of plain `stepwise up` per tenant (its own --log-table, search_path through PGOPTIONS)
#   2. the no-op fleet rerun, per tenant, against one plain no-op `up`
# Each apply run starts from a fresh database; fleet and loop runs alternate.
# Usage: bench/fleet_bench.sh [T] [M]   (env: RUNS (3), NOOP_RUNS (10), PARALLEL (8), BUILD_DIR)
set -euo pipefail
cd "$(dirname "$0")/.."
T=${1:-200}
M=${2:-20}
RUNS=${RUNS:-3}
NOOP_RUNS=${NOOP_RUNS:-10}
PARALLEL=${PARALLEL:-8}
BUILD_DIR=${BUILD_DIR:-build/release}
if [ ! -x "$BUILD_DIR/stepwise" ]; then
  cmake --preset release >/dev/null && cmake --build --preset release >/dev/null
fi
W=$(mktemp -d /tmp/stepwise-fbench.XXXXXX)
trap 'rm -rf "$W"' EXIT
mkdir -p "$W/m"
for i in $(seq 1 "$M"); do
  v=$(printf %06d "$i")
  printf 'CREATE TABLE t_%s (id bigserial PRIMARY KEY, name text NOT NULL);\nCREATE INDEX t_%s_name_idx ON t_%s (name);\n' \
    "$v" "$v" "$v" > "$W/m/${v}_t_${v}.up.sql"
done
export W T M RUNS NOOP_RUNS PARALLEL SW="$PWD/$BUILD_DIR/stepwise"
STEPWISE_TEST_AUTH=trust STEPWISE_TEST_FSYNC=on exec scripts/with-postgres.sh bash -c '
set -euo pipefail
url="${DATABASE_URL%/*}/fbench"
now_ms() { date +%s%3N; }
fresh() {
  psql -qAtX "$DATABASE_URL" -c "DROP DATABASE IF EXISTS fbench" -c "CREATE DATABASE fbench" >/dev/null
  psql -qAtX "$url" -c "SELECT format(\$\$CREATE SCHEMA tenant_%s;\$\$, lpad(g::text, 4, \$\$0\$\$)) FROM generate_series(1, $T) g" \
    | psql -qAtX "$url" >/dev/null
}
fleet() { "$SW" --database-url "$url" --source "$W/m" --log-level warn --tenant-schemas "tenant_*" --parallel "$PARALLEL" up; }
loop() {
  local sch
  for sch in $(psql -qAtX "$url" -c "SELECT nspname FROM pg_namespace WHERE nspname LIKE \$\$tenant\\_%\$\$ ORDER BY 1"); do
    PGOPTIONS="-csearch_path=$sch" "$SW" --database-url "$url" --source "$W/m" --log-level warn --log-table "$sch.stepwise_log" up >/dev/null
  done
}
check() {  # every tenant at the head, each version once
  n=$(psql -qAtX "$url" -c "SELECT count(*) FROM pg_tables WHERE schemaname LIKE \$\$tenant\\_%\$\$ AND tablename LIKE \$\$t\\_%\$\$")
  [ "$n" -eq $((T * M)) ] || { echo "fleet_bench: $n tables, expected $((T * M))" >&2; exit 1; }
}
: > "$W/fleet"; : > "$W/loop"; : > "$W/rerun"; : > "$W/noop"
for i in $(seq 1 "$RUNS"); do
  fresh; s=$(now_ms); fleet > "$W/fleet.out"; e=$(now_ms); echo $((e - s)) >> "$W/fleet"; check
  for j in 1 2 3; do s=$(now_ms); fleet >/dev/null; e=$(now_ms); echo $((e - s)) >> "$W/rerun"; done
  fresh; s=$(now_ms); loop; e=$(now_ms); echo $((e - s)) >> "$W/loop"; check
done
for i in $(seq 1 "$NOOP_RUNS"); do
  s=$(now_ms)
  PGOPTIONS="-csearch_path=tenant_0001" "$SW" --database-url "$url" --source "$W/m" --log-level warn --log-table tenant_0001.stepwise_log up >/dev/null
  e=$(now_ms); echo $((e - s)) >> "$W/noop"
done
med() { sort -n | awk "{a[NR]=\$1} END {print a[int((NR+1)/2)], a[1], a[NR]}"; }
read -r fm fmin fmax < <(med < "$W/fleet")
read -r lm lmin lmax < <(med < "$W/loop")
read -r rm rmin rmax < <(med < "$W/rerun")
read -r nm nmin nmax < <(med < "$W/noop")
echo "fleet bench: $T tenants x $M migrations, --parallel $PARALLEL, $(nproc) cores, fsync on"
tail -n 2 "$W/fleet.out"
printf "apply: fleet %d ms [%d..%d], shell loop of plain up %d ms [%d..%d]: fleet/loop = %.2f\n" \
  "$fm" "$fmin" "$fmax" "$lm" "$lmin" "$lmax" "$(echo "$fm / $lm" | bc -l)"
per=$(echo "$rm / $T" | bc -l)
printf "no-op: fleet rerun %d ms [%d..%d] = %.2f ms per tenant; one plain no-op up %d ms [%d..%d]: per tenant/single = %.3f\n" \
  "$rm" "$rmin" "$rmax" "$per" "$nm" "$nmin" "$nmax" "$(echo "$per / $nm" | bc -l)"
'
