#!/usr/bin/env bash
# with-postgres.sh COMMAND [ARGS...]
# Starts a throw-away PostgreSQL cluster in a temp dir on 127.0.0.1 and a free port, runs
# COMMAND with STEPWISE_TEST_DATABASE_URL and DATABASE_URL pointing at it (user postgres,
# database postgres, password auth), then stops the server and deletes the cluster whatever
# happens. STEPWISE_TEST_AUTH=trust switches TCP auth from scram-sha-256 to trust (benchmarks,
# like the peers' baseline); STEPWISE_TEST_FSYNC=on keeps fsync (off by default, for speed).
# The server runs as the 'postgres' OS user when started by root (PostgreSQL refuses
# to run as root). When pgbouncer is installed, two PgBouncers run in front of it, one in
# transaction and one in session pooling mode, each with a pool of only 4 server connections
# so that racing clients share server sessions: STEPWISE_TEST_PGBOUNCER_TX_URL and
# STEPWISE_TEST_PGBOUNCER_SESSION_URL (database postgres; any database name works).
set -euo pipefail

PGBIN=${PGBIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}
if [ -z "$PGBIN" ] || [ ! -x "$PGBIN/initdb" ]; then
  echo "with-postgres: no PostgreSQL server binaries found (run scripts/install-deps.sh)" >&2
  exit 1
fi
[ $# -gt 0 ] || { echo "usage: with-postgres.sh COMMAND [ARGS...]" >&2; exit 2; }

run_as_owner() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

DATA=$(mktemp -d /tmp/stepwise-pg.XXXXXX)
chmod 755 "$DATA"
[ "$(id -u)" -eq 0 ] && chown postgres:postgres "$DATA"
PASSWORD=${STEPWISE_TEST_PASSWORD:-stepwise-test-secret}
cleanup() {
  for pidfile in "$DATA"/bouncer/*.pid; do
    [ -f "$pidfile" ] && kill "$(cat "$pidfile")" 2>/dev/null || true
  done
  run_as_owner "$PGBIN/pg_ctl" -D "$DATA/db" -m immediate -w stop >/dev/null 2>&1 || true
  rm -rf "$DATA"
}
trap cleanup EXIT INT TERM

printf '%s\n' "$PASSWORD" > "$DATA/pwfile"
[ "$(id -u)" -eq 0 ] && chown postgres:postgres "$DATA/pwfile"
run_as_owner "$PGBIN/initdb" -D "$DATA/db" -U postgres --pwfile="$DATA/pwfile" \
  --auth-local=trust --auth-host=${STEPWISE_TEST_AUTH:-scram-sha-256} -E UTF8 --locale=C.UTF-8 >"$DATA/initdb.log" 2>&1 \
  || { cat "$DATA/initdb.log" >&2; exit 1; }

started=""
for attempt in $(seq 1 20); do
  port=$(( 20000 + (RANDOM % 30000) ))
  port_free "$port" || continue
  cat >> "$DATA/db/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$DATA'
max_connections = 200
fsync = ${STEPWISE_TEST_FSYNC:-off}
synchronous_commit = ${STEPWISE_TEST_FSYNC:-off}
full_page_writes = off
CONF
  if run_as_owner "$PGBIN/pg_ctl" -D "$DATA/db" -l "$DATA/server.log" -w -t 60 start >/dev/null 2>&1; then
    started=$port
    break
  fi
done
[ -n "$started" ] || { echo "with-postgres: could not start PostgreSQL" >&2; cat "$DATA/server.log" >&2 || true; exit 1; }

start_pgbouncer() {  # MODE -> prints the port
  local mode=$1 bport
  for attempt in $(seq 1 20); do
    bport=$(( 20000 + (RANDOM % 30000) ))
    port_free "$bport" || continue
    cat > "$DATA/bouncer/$mode.ini" <<INI
[databases]
* = host=127.0.0.1 port=$started
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $bport
unix_socket_dir =
auth_type = scram-sha-256
auth_file = $DATA/bouncer/users.txt
pool_mode = $mode
max_client_conn = 500
default_pool_size = 4
# Hand out idle server connections in turn, not the last used one: consecutive transactions of
# one client then land on different server sessions, as they do under load.
server_round_robin = 1
ignore_startup_parameters = extra_float_digits
logfile = $DATA/bouncer/$mode.log
pidfile = $DATA/bouncer/$mode.pid
INI
    if run_as_owner "$PGBOUNCER" -d "$DATA/bouncer/$mode.ini" >/dev/null 2>&1; then
      for wait in $(seq 1 50); do
        port_free "$bport" || { echo "$bport"; return 0; }
        sleep 0.1
      done
    fi
  done
  echo "with-postgres: could not start pgbouncer ($mode)" >&2
  cat "$DATA/bouncer/$mode.log" >&2 2>/dev/null || true
  return 1
}

PGBOUNCER=${PGBOUNCER:-$(command -v pgbouncer || ls /usr/sbin/pgbouncer 2>/dev/null || true)}
if [ -n "$PGBOUNCER" ]; then
  mkdir -p "$DATA/bouncer"
  printf '"postgres" "%s"\n' "$PASSWORD" > "$DATA/bouncer/users.txt"
  [ "$(id -u)" -eq 0 ] && chown -R postgres:postgres "$DATA/bouncer"
  tx_port=$(start_pgbouncer transaction)
  session_port=$(start_pgbouncer session)
  export STEPWISE_TEST_PGBOUNCER_TX_URL="postgres://postgres:${PASSWORD}@127.0.0.1:${tx_port}/postgres"
  export STEPWISE_TEST_PGBOUNCER_SESSION_URL="postgres://postgres:${PASSWORD}@127.0.0.1:${session_port}/postgres"
  echo "with-postgres: PgBouncer $("$PGBOUNCER" --version 2>/dev/null | head -n 1 | awk '{print $2}') on 127.0.0.1:$tx_port (transaction) and 127.0.0.1:$session_port (session)" >&2
fi

export STEPWISE_TEST_DATABASE_URL="postgres://postgres:${PASSWORD}@127.0.0.1:${started}/postgres"
export DATABASE_URL="$STEPWISE_TEST_DATABASE_URL"
export STEPWISE_TEST_PGDATA="$DATA/db" STEPWISE_TEST_PGBIN="$PGBIN" STEPWISE_TEST_PGPORT="$started"
echo "with-postgres: PostgreSQL $("$PGBIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$started" >&2
set +e
"$@"
rc=$?
exit $rc
