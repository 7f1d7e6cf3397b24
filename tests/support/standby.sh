#!/usr/bin/env bash
# standby.sh start DIR PORT   a hot standby of the test server in DIR (an empty folder), on
#                             127.0.0.1:PORT with its socket in DIR; returns once it accepts
#                             connections.
# standby.sh stop DIR         stops it and deletes DIR.
# Needs the variables scripts/with-postgres.sh exports (STEPWISE_TEST_PGBIN, _PGDATA, _PGPORT).
# pg_basebackup -R copies the primary over its local socket (initdb's pg_hba trusts local
# replication connections; PostgreSQL 15's defaults, wal_level replica and max_wal_senders 10,
# allow it). Run as root, the standby runs as the 'postgres' OS user, like the primary.
set -euo pipefail
PGBIN=${STEPWISE_TEST_PGBIN:?run under scripts/with-postgres.sh}
as_owner() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
cmd=${1:?usage: standby.sh start DIR PORT | stop DIR}
dir=${2:?usage: standby.sh start DIR PORT | stop DIR}
case "$cmd" in
  start)
    port=${3:?usage: standby.sh start DIR PORT}
    [ "$(id -u)" -eq 0 ] && chown postgres:postgres "$dir"
    chmod 700 "$dir"
    socket=$(dirname "${STEPWISE_TEST_PGDATA:?}")  # the primary's unix_socket_directories
    as_owner "$PGBIN/pg_basebackup" -h "$socket" -p "${STEPWISE_TEST_PGPORT:?}" -U postgres \
      -D "$dir/db" -R -X stream -c fast --no-sync >"$dir/basebackup.log" 2>&1 \
      || { cat "$dir/basebackup.log" >&2; exit 1; }
    cat >>"$dir/db/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir'
hot_standby = on
CONF
    as_owner "$PGBIN/pg_ctl" -D "$dir/db" -l "$dir/server.log" -w -t 30 start >/dev/null \
      || { cat "$dir/server.log" >&2; exit 1; }
    ;;
  stop)
    as_owner "$PGBIN/pg_ctl" -D "$dir/db" -m immediate -w stop >/dev/null 2>&1 || true
    rm -rf "$dir"
    ;;
  *)
    echo "usage: standby.sh start DIR PORT | stop DIR" >&2
    exit 2
    ;;
esac
