#!/usr/bin/env bash
# The measuring half of bench.sh; runs under scripts/with-postgres.sh.
set -euo pipefail
W=$BENCH_WORK
SW="$BUILD_DIR/stepwise"
ADMIN=$STEPWISE_TEST_DATABASE_URL
base=${ADMIN%/*}
url_of() { echo "$base/$1"; }
psql_admin() { psql -qAtX "$ADMIN" -c "SET client_min_messages = warning" -c "$1" >/dev/null; }
fresh_db() { psql_admin "DROP DATABASE IF EXISTS $1 WITH (FORCE)"; psql_admin "CREATE DATABASE $1"; }
now_us() { local t=${EPOCHREALTIME/./}; echo "$t"; }
# time_ms CMD...: wall time of one run in microseconds (stdout/stderr discarded), fails loudly.
time_us() { local s e; s=$(now_us); "$@" >/dev/null 2>&1 || { echo "bench: failed: $*" >&2; exit 1; }; e=$(now_us); echo $((e - s)); }
stats() { # prints "median min max" in ms from microsecond samples on stdin
  sort -n | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.1f %.1f %.1f\n", m/1000, a[1]/1000, a[NR]/1000}'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a/b}'; }
rss_kb() { /usr/bin/time -f %M "$@" 2>&1 >/dev/null | tail -n 1; }

echo "stepwise benchmark — $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "server: PostgreSQL $(psql -qAtX "$ADMIN" -c 'show server_version'), fsync=$(psql -qAtX "$ADMIN" -c 'show fsync'), TCP 127.0.0.1, auth $(psql -qAtX "$ADMIN" -c "SELECT auth_method FROM pg_hba_file_rules WHERE type = 'host' LIMIT 1")"
echo "binary: $SW ($("$SW" --version))"
echo

# 1. no-op up ------------------------------------------------------------------------------
declare -A NOOP_MED
for n in 10 1000-embedded 5000-embedded 1000-source; do
  db=bench_noop_${n%%-*}; fresh_db $db; url=$(url_of $db)
  src=()
  target=1.3
  case $n in
    10) SW="$BUILD_DIR/stepwise" ;;
    1000-embedded) SW="$EMBED_BIN" ;;
    5000-embedded) SW="$EMBED5000_BIN" ;;
    1000-source) SW="$BUILD_DIR/stepwise"; src=(--source "$W/m1000/golang"); target=1.6 ;;
  esac
  "$SW" --database-url "$url" "${src[@]}" up >/dev/null 2>&1
  psql_admin "CHECKPOINT"
  for i in 1 2 3; do "$W/pq_ping" "$url" >/dev/null; "$SW" --database-url "$url" "${src[@]}" up >/dev/null 2>&1; done
  : > "$W/floor"; : > "$W/tool"; : > "$W/read_floor"
  for i in $(seq 1 "$NOOP_RUNS"); do
    time_us "$W/pq_ping" "$url" >> "$W/floor"
    time_us "$SW" --database-url "$url" "${src[@]}" up >> "$W/tool"
    if [ ${#src[@]} -gt 0 ]; then time_us "$W/pq_read" "$url" "${src[1]}" >> "$W/read_floor"; fi
  done
  read -r fm fmin fmax < <(stats < "$W/floor")
  read -r tm tmin tmax < <(stats < "$W/tool")
  rss=$(rss_kb "$SW" --database-url "$url" "${src[@]}" up)
  rss_floor=$(rss_kb "$W/pq_ping" "$url")
  NOOP_MED[$n]=$(ratio "$tm" "$fm")
  printf "no-op up, N=%-13s pq_ping %6.1f ms [%s–%s]  stepwise %6.1f ms [%s–%s]  ratio %sx  (target ≤ %sx)  peak RSS %s KiB (pq_ping %s KiB)\n" \
    "$n" "$fm" "$fmin" "$fmax" "$tm" "$tmin" "$tmax" "${NOOP_MED[$n]}" "$target" "$rss" "$rss_floor"
  if [ ${#src[@]} -gt 0 ]; then
    read -r rm rmin rmax < <(stats < "$W/read_floor")
    printf "  the same folder, pq_read %6.1f ms [%s–%s] (%sx pq_ping): stepwise is %sx the read floor\n" \
      "$rm" "$rmin" "$rmax" "$(ratio "$rm" "$fm")" "$(ratio "$tm" "$rm")"
  fi
done
echo
[ "$NOOP_ONLY" = 1 ] && exit 0

SW="$BUILD_DIR/stepwise"

# 2. apply 1000 ----------------------------------------------------------------------------
: > "$W/p1"; : > "$W/p0"; : > "$W/sw"
for i in $(seq 1 "$APPLY_RUNS"); do
  fresh_db bench_apply; time_us psql -qX -v ON_ERROR_STOP=1 -1 -f "$W/m1000/all.sql" "$(url_of bench_apply)" >> "$W/p1"
  fresh_db bench_apply; time_us "$SW" --database-url "$(url_of bench_apply)" --source "$W/m1000/golang" up >> "$W/sw"
  n=$(psql -qAtX "$(url_of bench_apply)" -c "SELECT count(DISTINCT version) FROM stepwise_log WHERE outcome = 'succeeded'")
  [ "$n" = 1000 ] || { echo "bench: stepwise applied $n of 1000" >&2; exit 1; }
  fresh_db bench_apply; time_us psql -qX -v ON_ERROR_STOP=1 -f "$W/m1000/all.sql" "$(url_of bench_apply)" >> "$W/p0"
done
read -r p1m p1min p1max < <(stats < "$W/p1")
read -r p0m p0min p0max < <(stats < "$W/p0")
read -r swm swmin swmax < <(stats < "$W/sw")
fresh_db bench_apply
apply_rss=$(rss_kb "$SW" --database-url "$(url_of bench_apply)" --source "$W/m1000/golang" up)
printf "apply 1000 steps   psql -1 -f %8.1f ms [%s–%s]  psql -f %8.1f ms [%s–%s]\n" "$p1m" "$p1min" "$p1max" "$p0m" "$p0min" "$p0max"
printf "                   stepwise   %8.1f ms [%s–%s]  ratio %sx vs psql -1 (target ≤ 1.1x), %sx vs psql -f  peak RSS %s KiB\n" \
  "$swm" "$swmin" "$swmax" "$(ratio "$swm" "$p1m")" "$(ratio "$swm" "$p0m")" "$apply_rss"
echo

# 3. 32 concurrent up ----------------------------------------------------------------------
: > "$W/one"; : > "$W/many"; : > "$W/crowd"
for i in $(seq 1 "$CONC_RUNS"); do
  fresh_db bench_conc
  time_us "$SW" --database-url "$(url_of bench_conc)" --source "$W/m100/golang" up >> "$W/one"
  # A second floor: one up while 31 other processes connect and query at the same instant
  # (pq_ping). No runner can beat it: it is the cost of 32 processes and connections on
  # this machine, with nothing of stepwise's waiting in it.
  fresh_db bench_conc
  conc_url=$(url_of bench_conc)
  s=$(now_us)
  "$SW" --database-url "$conc_url" --source "$W/m100/golang" up >/dev/null 2>&1 & crowd=($!)
  for p in $(seq 1 31); do "$W/pq_ping" "$conc_url" >/dev/null 2>&1 & crowd+=($!); done
  for pid in "${crowd[@]}"; do wait "$pid"; done
  e=$(now_us); echo $((e - s)) >> "$W/crowd"
  fresh_db bench_conc
  conc_url=$(url_of bench_conc)  # no subshell per launch inside the timed loop
  s=$(now_us)
  pids=()
  for p in $(seq 1 32); do
    "$SW" --database-url "$conc_url" --source "$W/m100/golang" up >"$W/c$p.out" 2>&1 & pids+=($!)
  done
  fails=0
  for pid in "${pids[@]}"; do wait "$pid" || fails=$((fails + 1)); done
  e=$(now_us); echo $((e - s)) >> "$W/many"
  rows=$(psql -qAtX "$(url_of bench_conc)" -c "SELECT count(*) || '/' || count(DISTINCT version) FROM stepwise_log")
  [ "$fails" = 0 ] && [ "$rows" = "100/100" ] || { echo "bench: concurrency: $fails failed, log rows $rows" >&2; exit 1; }
done
read -r om omin omax < <(stats < "$W/one")
read -r mm mmin mmax < <(stats < "$W/many")
read -r cm cmin cmax < <(stats < "$W/crowd")
printf "32 concurrent up   one up %6.1f ms [%s–%s]  32 at once %6.1f ms [%s–%s]  ratio %sx (target ≤ 1.2x); all exited 0, 100 log rows\n" \
  "$om" "$omin" "$omax" "$mm" "$mmin" "$mmax" "$(ratio "$mm" "$om")"
printf "                   one up + 31 pq_ping at once %6.1f ms [%s–%s]  ratio %sx of 32 at once against this floor\n" \
  "$cm" "$cmin" "$cmax" "$(ratio "$mm" "$cm")"
