#!/usr/bin/env bash
# Container tests (ctest label "container"): the Dockerfile, the examples/ manifests and the
# bundle pattern, run for real on this machine with Debian's packages only.
#
#   tests/container/run.sh [--binary PATH] [--full-build] [--keep]
#
#   --binary PATH   package this stepwise binary (a release build: no sanitizers) instead of
#                   compiling one; default: build build/container (Release, no tests) here,
#                   overlapped with the set-up
#   --full-build    build the Dockerfile as a user does, compile stage included (several
#                   minutes more), instead of handing it the binary with STEPWISE_BUILDER
#   --keep          leave the temp dir (logs) behind; daemons and containers are still removed
#
# What it does: installs docker.io, docker-compose, podman, runc, catatonit, debootstrap and
# yamllint with apt-get (root needed; exit 77 = skipped otherwise); builds a Debian bookworm
# minbase with debootstrap and imports it as debian:bookworm(-slim); starts its own dockerd
# (private socket, data and exec dirs under a temp dir, no bridge, no iptables) and uses podman
# with private storage; every container uses the host network and PostgreSQL listens on
# 127.0.0.1 only, so all traffic stays on loopback. A stand-in postgres:15 image is built from
# Debian's postgresql-15 (tests/container/postgres). Everything it started is removed on exit.
# Prints PASS/FAIL per test and a final "N passed, N failed"; exits 1 on any failure.
set -uo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HERE="$REPO/tests/container"
BINARY="${STEPWISE_CONTAINER_BINARY:-}"
FULL_BUILD="${STEPWISE_CONTAINER_FULL_BUILD:-0}"
KEEP=0
MIRROR="${STEPWISE_CONTAINER_MIRROR:-http://deb.debian.org/debian}"
while [ $# -gt 0 ]; do
  case "$1" in
    --binary) BINARY=$2; shift 2 ;;
    --full-build) FULL_BUILD=1; shift ;;
    --keep) KEEP=1; shift ;;
    *) echo "usage: $0 [--binary PATH] [--full-build] [--keep]" >&2; exit 2 ;;
  esac
done

START=$(date +%s)
PASSED=0
FAILED=0
log() { printf '[%4ss] %s\n' "$(($(date +%s) - START))" "$*"; }
pass() { PASSED=$((PASSED + 1)); printf 'PASS: %s\n' "$*"; }
fail() { FAILED=$((FAILED + 1)); printf 'FAIL: %s\n' "$*"; }
summary() { printf '%d passed, %d failed\n' "$PASSED" "$FAILED"; }

if [ "${STEPWISE_CONTAINER_TESTS:-1}" = 0 ]; then
  echo "container tests: STEPWISE_CONTAINER_TESTS=0; skipped"
  exit 77
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "container tests: need root (apt-get, dockerd, podman); skipped"
  exit 77
fi

T=$(mktemp -d /tmp/stepwise-ct.XXXXXX)
chmod 755 "$T"
PROJECT="swct$$"
DOCKER=/usr/bin/docker            # Debian's client; /usr/local/bin may hold a newer one
export DOCKER_HOST="unix://$T/docker.sock"
export DOCKER_BUILDKIT=1
export CONTAINERS_CONF="$T/podman/containers.conf" CONTAINERS_STORAGE_CONF="$T/podman/storage.conf"
export CONTAINERS_REGISTRIES_CONF="$T/podman/registries.conf"
export KUBECONFIG=/dev/null       # no cluster: only offline kubectl commands
PY=/usr/bin/python3               # Debian's python3, where python3-yaml is installed
DOCKERD_PID=""
CREATED_POLICY_RC=0
BG_PIDS=()
IFACES_BEFORE=$(ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | sort | tr '\n' ' ')

# ---------------------------------------------------------------------------------- clean-up
compose() {
  (cd "$T/compose" && timeout "${COMPOSE_TIMEOUT:-240}" docker-compose -p "$PROJECT" \
     -f compose.yaml -f compose.test.yaml "$@")
}
kill_tree() {  # a background job of ours and everything it started, by pid
  local child
  for child in $(ps -o pid= --ppid "$1" 2>/dev/null); do kill_tree "$child"; done
  kill -TERM "$1" 2>/dev/null
}
ours() {  # pids of processes whose command line names our temp dir (awk reads it from the environment)
  ps -eo pid=,args= | T_DIR="$T" awk 'index($0, ENVIRON["T_DIR"]) {print $1}'
}
CLEANED=0
cleanup() {
  [ "$CLEANED" = 1 ] && return 0
  CLEANED=1
  for pid in "${BG_PIDS[@]}"; do kill_tree "$pid"; done
  if command -v podman >/dev/null && [ -f "$CONTAINERS_STORAGE_CONF" ]; then
    for f in "$T"/kube/*.play.yaml; do [ -f "$f" ] && timeout 60 podman kube down "$f" >/dev/null 2>&1; done
    timeout 60 podman pod rm -af -t 0 >/dev/null 2>&1
    timeout 60 podman rm -af -t 0 >/dev/null 2>&1
    timeout 30 podman secret rm -a >/dev/null 2>&1
    timeout 60 podman rmi -af >/dev/null 2>&1
  fi
  if [ -n "$DOCKERD_PID" ] && kill -0 "$DOCKERD_PID" 2>/dev/null; then
    [ -f "$T/compose/compose.test.yaml" ] && COMPOSE_TIMEOUT=60 compose down -v -t 5 >/dev/null 2>&1
    ids=$(timeout 30 "$DOCKER" ps -aq 2>/dev/null)
    [ -n "$ids" ] && timeout 60 "$DOCKER" rm -f -v $ids >/dev/null 2>&1
    kill -TERM "$DOCKERD_PID" 2>/dev/null
    for _ in $(seq 1 100); do kill -0 "$DOCKERD_PID" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$DOCKERD_PID" 2>/dev/null
  fi
  # Whatever is still running from our private directories (containerd and its shims, conmon)
  # was started by this run: end it by pid.
  for pid in $(ours); do [ "$pid" != "$$" ] && kill -KILL "$pid" 2>/dev/null; done
  sleep 0.2
  awk -v t="$T" '$2 ~ "^"t {print $2}' /proc/mounts | sort -r | while read -r m; do umount -l "$m" 2>/dev/null; done
  if [ "$CREATED_POLICY_RC" = 1 ]; then rm -f /usr/sbin/policy-rc.d; fi
  if [ "$KEEP" = 1 ]; then echo "kept $T"; else rm -rf "$T"; fi
}
trap 'cleanup' EXIT
trap 'echo "interrupted"; cleanup; exit 130' INT TERM

finish() {
  # An explicit clean-up whose result is a test: nothing of ours may be left behind.
  local leftovers=""
  cleanup
  local left
  left=$(ours | tr '\n' ' ')
  [ -n "$left" ] && leftovers+="processes: $left; "
  grep -q " $T" /proc/mounts && leftovers+="mounts under $T; "
  local ifaces_after
  ifaces_after=$(ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | sort | tr '\n' ' ')
  [ "$ifaces_after" != "$IFACES_BEFORE" ] && leftovers+="network interfaces: before [$IFACES_BEFORE] after [$ifaces_after]; "
  if [ -z "$leftovers" ]; then pass "cleanup: no daemon, container, mount or network interface left"
  else fail "cleanup: left behind: $leftovers"; fi
  log "total time $(($(date +%s) - START)) s"
  summary
  [ "$FAILED" -eq 0 ]
  exit $?
}

unavailable() {  # this machine cannot run containers (no package mirror, no dockerd): skip, not fail
  echo "container tests skipped: $*"
  for f in "$T"/*.log; do [ -f "$f" ] && { echo "--- $f (last lines)"; tail -n 10 "$f"; }; done
  cleanup
  summary
  [ "$FAILED" -gt 0 ] && exit 1
  exit 77
}

abort() {  # a set-up step failed: the tests that depend on it cannot run
  fail "$*"
  for f in "$T"/*.log; do [ -f "$f" ] && { echo "--- $f (last lines)"; tail -n 25 "$f"; }; done
  finish
}

# ------------------------------------------------------------------------------- packages
apt_install() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "apt-get install ${missing[*]}"
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    # Keep the packages' init scripts from starting a system-wide dockerd: we start our own.
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d
    CREATED_POLICY_RC=1
  fi
  if [ -z "${APT_UPDATED:-}" ]; then timeout 300 apt-get update -qq >"$T/apt-update.log" 2>&1; APT_UPDATED=1; fi
  DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -qq --no-install-recommends "${missing[@]}" \
    >>"$T/apt.log" 2>&1
}

log "temp dir $T"
apt_install debootstrap || unavailable "apt-get install debootstrap (see $T/apt.log)"

# The base image: debootstrap runs in the background while the rest is installed.
(
  timeout 600 debootstrap --variant=minbase bookworm "$T/rootfs" "$MIRROR" >"$T/debootstrap.log" 2>&1 || exit 1
  # Trim it like the official bookworm-slim image, and keep apt from leaving caches in layers.
  rm -rf "$T"/rootfs/var/cache/apt/archives/*.deb "$T"/rootfs/var/lib/apt/lists/* \
         "$T"/rootfs/usr/share/doc/* "$T"/rootfs/usr/share/man/* "$T"/rootfs/usr/share/info/* \
         "$T"/rootfs/usr/share/locale/*
  cat >"$T/rootfs/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
  printf 'path-exclude /usr/share/doc/*\npath-exclude /usr/share/man/*\npath-exclude /usr/share/locale/*\npath-exclude /usr/share/info/*\n' \
    >"$T/rootfs/etc/dpkg/dpkg.cfg.d/docker-slim"
) &
DEBOOTSTRAP_PID=$!
BG_PIDS+=("$DEBOOTSTRAP_PID")

# The release binary: given, or compiled here in the background (CPU) while the set-up
# (network and disk) goes on.
BUILD_PID=""
if [ "$FULL_BUILD" = 1 ]; then
  BINARY=""
elif [ -n "$BINARY" ] && ldd "$BINARY" 2>/dev/null | grep -q 'libasan\|libubsan\|libtsan'; then
  log "$BINARY is a sanitizer build (it cannot run in a chroot without /proc): building a release binary instead"
  BINARY=""
fi
if [ "$FULL_BUILD" != 1 ] && [ -z "$BINARY" ]; then
  log "building the release binary in build/container (background)"
  (cd "$REPO" && cmake -S . -B build/container -G Ninja -DCMAKE_BUILD_TYPE=Release -DSTEPWISE_WERROR=ON \
      -DSTEPWISE_BUILD_TESTS=OFF >"$T/compile.log" 2>&1 &&
   timeout 1500 cmake --build build/container --target stepwise stepwise-http >>"$T/compile.log" 2>&1) &
  BUILD_PID=$!
  BG_PIDS+=("$BUILD_PID")
  BINARY="$REPO/build/container/stepwise"
fi

tools=(docker.io docker-compose podman runc catatonit yamllint python3-yaml iproute2 binutils)
command -v kubectl >/dev/null || tools+=(kubernetes-client)   # Debian's kubectl, if none is installed
apt_install "${tools[@]}" || unavailable "apt-get install ${tools[*]} (see $T/apt.log)"
if pgrep -x dockerd >/dev/null && [ -z "$DOCKERD_PID" ]; then
  log "note: a dockerd not started by this test is running; it is left alone (we use $DOCKER_HOST)"
fi

# -------------------------------------------------------------------------------- daemons
log "starting dockerd on $DOCKER_HOST"
dockerd --data-root "$T/docker" --exec-root "$T/x" -H "$DOCKER_HOST" --pidfile "$T/dockerd.pid" \
  --bridge=none --iptables=false --ip6tables=false --ip-masq=false --userland-proxy=false \
  --log-level warn >"$T/dockerd.log" 2>&1 &
DOCKERD_PID=$!
mkdir -p "$T/podman/root" "$T/podman/run" "$T/podman/tmp"
cat >"$CONTAINERS_STORAGE_CONF" <<EOF
[storage]
driver = "overlay"
graphroot = "$T/podman/root"
runroot = "$T/podman/run"
EOF
cat >"$CONTAINERS_CONF" <<EOF
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
netns = "host"
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
runtime = "runc"
tmp_dir = "$T/podman/tmp"
EOF
printf 'unqualified-search-registries = []\nshort-name-mode = "permissive"\n' >"$CONTAINERS_REGISTRIES_CONF"

# ------------------------------------------------------------------------------------ lint
log "lint"
mkdir -p "$T/compose"
cp -r "$REPO/examples/compose.yaml" "$REPO/examples/app-image" "$T/compose/"
sed 's/CHANGE-ME/lint-only/g' "$REPO/examples/migrate.env.example" >"$T/compose/migrate.env"
if out=$(yamllint -f parsable -d "{extends: default, rules: {line-length: {max: 120}, document-start: disable}}" \
           "$REPO/examples" 2>&1); then
  pass "lint: yamllint examples/"
else
  fail "lint: yamllint examples/: $out"
fi
if out=$(kubectl kustomize "$REPO/examples/kubernetes" 2>&1 >"$T/kustomize.yaml") &&
   grep -q 'image: registry.example.com/app-migrator:1.1.0' "$T/kustomize.yaml" &&
   out=$(kubectl create secret generic app-db --from-literal=url=postgres://app:x@db/app \
           --dry-run=client -o yaml 2>&1) && grep -q 'name: app-db' <<<"$out"; then
  pass "lint: kubectl kustomize examples/kubernetes, kubectl create secret --dry-run=client (offline)"
else
  fail "lint: kubectl (offline): $out"
fi
if out=$("$PY" "$HERE/manifests.py" check "$REPO/examples" 2>&1); then
  pass "lint: structural checks of the manifests and compose.yaml (tests/container/manifests.py)"
else
  fail "lint: structural checks: $out"
fi
if out=$(cd "$T/compose" && docker-compose -f compose.yaml config -q 2>&1); then
  pass "lint: docker-compose config (compose file schema)"
else
  fail "lint: docker-compose config: $out"
fi

for _ in $(seq 1 150); do
  timeout 5 "$DOCKER" info >/dev/null 2>&1 && break
  kill -0 "$DOCKERD_PID" 2>/dev/null || break
  sleep 0.2
done
timeout 5 "$DOCKER" info >/dev/null 2>&1 || unavailable "dockerd did not start (see $T/dockerd.log)"
log "dockerd up"

log "waiting for debootstrap"
wait "$DEBOOTSTRAP_PID" || unavailable "debootstrap --variant=minbase bookworm failed (see $T/debootstrap.log)"
tar -C "$T/rootfs" -c . | timeout 120 "$DOCKER" import -c 'CMD ["bash"]' - debian:bookworm >/dev/null &&
  "$DOCKER" tag debian:bookworm debian:bookworm-slim || abort "setup: docker import of the base image failed"
rm -rf "$T/rootfs"
log "base image debian:bookworm imported ($("$DOCKER" image ls --format '{{.Size}}' debian:bookworm))"

# The stand-in postgres:15 (apt, mostly network) builds while the binary compiles.
build() {  # build LOGNAME ARGS...: docker build with its output in $T/LOGNAME.log
  local name=$1; shift
  timeout 900 "$DOCKER" build --network host "$@" >"$T/$name.log" 2>&1
}
build postgres-image -t postgres:15 "$HERE/postgres" &
PG_BUILD_PID=$!
BG_PIDS+=("$PG_BUILD_PID")

# --------------------------------------------------------------------------------- images
if [ "$FULL_BUILD" = 1 ]; then
  log "docker build (full: compile stage included)"
  t0=$(date +%s)
  build stepwise-image -t stepwise:test "$REPO" || abort "image: docker build of the Dockerfile failed (see $T/stepwise-image.log)"
  log "full docker build took $(($(date +%s) - t0)) s"
else
  if [ -n "$BUILD_PID" ]; then
    log "waiting for the release build"
    wait "$BUILD_PID" || abort "setup: release build of stepwise failed (see $T/compile.log)"
  fi
  [ -x "$BINARY" ] || abort "setup: no binary at $BINARY"
  mkdir -p "$T/prebuilt"
  cp "$HERE/prebuilt.Dockerfile" "$T/prebuilt/Dockerfile"
  strip -o "$T/prebuilt/stepwise" "$BINARY" 2>/dev/null || cp "$BINARY" "$T/prebuilt/stepwise"
  MODULE="$(dirname "$BINARY")/stepwise-http.so"   # serve's HTTP transport, built beside it
  [ -f "$MODULE" ] || abort "setup: no HTTP module at $MODULE"
  strip -o "$T/prebuilt/stepwise-http.so" "$MODULE" 2>/dev/null || cp "$MODULE" "$T/prebuilt/stepwise-http.so"
  # The Debian packages that hold the shared libraries they load.
  pkgs=$(for l in $(ldd "$BINARY" "$MODULE" | awk '$2 == "=>" && $3 ~ /^\// {print $3}'); do
           dpkg -S "$l" 2>/dev/null || dpkg -S "$(readlink -f "$l")" 2>/dev/null
         done | cut -d: -f1 | sort -u | tr '\n' ' ')
  log "packaging $BINARY (runtime packages: $pkgs)"
  build prebuilt -t stepwise-prebuilt:test --build-arg RUNTIME_PACKAGES="$pkgs" "$T/prebuilt" ||
    abort "image: prebuilt stage failed (see $T/prebuilt.log)"
  build stepwise-image -t stepwise:test --build-arg STEPWISE_BUILDER=stepwise-prebuilt:test "$REPO" ||
    abort "image: docker build of the Dockerfile failed (see $T/stepwise-image.log)"
fi

IMAGE_SIZE=$("$DOCKER" image ls --format '{{.Size}}' stepwise:test)
IMAGE_BYTES=$("$DOCKER" image inspect -f '{{.Size}}' stepwise:test)
meta=$("$DOCKER" image inspect -f '{{.Config.User}}|{{json .Config.Entrypoint}}|{{json .Config.Cmd}}' stepwise:test)
files=$(id=$("$DOCKER" create stepwise:test) && "$DOCKER" export "$id" | tar -t; "$DOCKER" rm "$id" >/dev/null)
unexpected=$(grep -v -E '^(\.dockerenv|dev/.*|proc/|sys/|etc/(passwd|group|nsswitch\.conf|hosts|hostname|resolv\.conf|mtab)|etc/|tmp/|home/(stepwise/)?|usr/(local/((bin/(stepwise)?)|(lib/(stepwise/(stepwise-http\.so)?)?))?)?/?|lib64/(ld-linux-x86-64\.so\.2)?|lib/(x86_64-linux-gnu/(lib[^/]+\.so[.0-9]*)?)?|dev/|proc|sys)$' <<<"$files" | tr '\n' ' ')
version=$(timeout 30 "$DOCKER" run --rm stepwise:test --version 2>&1)
if [ "$meta" = '10001:10001|["stepwise"]|["up"]' ] && [ -z "$unexpected" ] && grep -q '^stepwise ' <<<"$version"; then
  pass "image: stepwise:test is $IMAGE_SIZE ($IMAGE_BYTES bytes): user 10001, ENTRYPOINT [\"stepwise\"], CMD [\"up\"], holds only the binary, its HTTP module and their shared libraries; --version runs"
else
  fail "image: metadata [$meta], unexpected files [$unexpected], --version: $version"
fi

# serve loads its HTTP module (stepwise-http.so) at start: in the image it must find it and
# the libraries it needs, and listen (no database is needed to listen).
serve_name="${PROJECT}-serve"
"$DOCKER" run -d --name "$serve_name" --network host stepwise:test \
  --database-url postgres://nobody@127.0.0.1:1/none serve --listen 127.0.0.1:0 --public-read >/dev/null 2>&1
serve_log=""
for _ in $(seq 1 30); do
  serve_log=$("$DOCKER" logs "$serve_name" 2>&1)
  grep -q 'serve: listening on\|error' <<<"$serve_log" && break
  sleep 0.5
done
"$DOCKER" rm -f "$serve_name" >/dev/null 2>&1
if grep -q 'serve: listening on http://127.0.0.1:' <<<"$serve_log"; then
  pass "image: serve loads its HTTP module and listens"
else
  fail "image: serve did not listen: $(tail -n 3 <<<"$serve_log")"
fi

log "building the example application images (bundle pattern)"
app_ctx="$REPO/examples/app-image"
bad_ctx="$T/app-bad"; slow_ctx="$T/app-slow"; broken_ctx="$T/app-broken"
for d in "$bad_ctx" "$slow_ctx" "$broken_ctx"; do cp -r "$app_ctx" "$d"; done
# A migration that fails when applied (its table does not exist): SQLSTATE 42P01.
printf 'ALTER TABLE accounts ADD COLUMN note_id bigint REFERENCES notes (id);\n' \
  >"$bad_ctx/db/migrations/20250301090000_link_accounts.up.sql"
# A migration that runs long enough to be interrupted.
printf 'SELECT pg_sleep(120);\n' >"$slow_ctx/db/migrations/20250301090000_long_backfill.up.sql"
# A file the loader refuses (an unknown directive; an empty file is a valid step): the image
# build itself must fail.
printf -- '-- stepwise:no-transation\nSELECT 1;\n' \
  >"$broken_ctx/db/migrations/20250301090000_bad_directive.up.sql"
ok=1
build app-migrator --target migrator --build-arg STEPWISE_IMAGE=stepwise:test -t app-migrator:test "$app_ctx" || ok=0
build app --target app --build-arg STEPWISE_IMAGE=stepwise:test -t app:test "$app_ctx" || ok=0
build app-migrator-bad --target migrator --build-arg STEPWISE_IMAGE=stepwise:test -t app-migrator:bad "$bad_ctx" || ok=0
build app-migrator-slow --target migrator --build-arg STEPWISE_IMAGE=stepwise:test -t app-migrator:slow "$slow_ctx" || ok=0
[ "$ok" = 1 ] || abort "image: building examples/app-image failed (see $T/app*.log)"
if build app-migrator-broken --target migrator --build-arg STEPWISE_IMAGE=stepwise:test -t app-migrator:broken "$broken_ctx"; then
  broken="the build with an invalid migration file succeeded"
elif ! grep -q '20250301090000_bad_directive.up.sql' "$T/app-migrator-broken.log"; then
  broken="the failed build does not name the invalid file"
else
  broken=""
fi
bundled=$(timeout 30 "$DOCKER" run --rm app-migrator:test --version 2>&1)
migrator_extra=$(( $("$DOCKER" image inspect -f '{{.Size}}' app-migrator:test) - IMAGE_BYTES ))
if grep -q 'bundled set, 3 migration(s), newest 20250203100500' <<<"$bundled" && [ -z "$broken" ]; then
  pass "image: bundle pattern: app-migrator:test names its bundled set (+$((migrator_extra / 1024)) KiB over stepwise:test); an invalid migration file (unknown directive) fails the image build, naming the file"
else
  fail "image: bundle pattern: --version said [$bundled]; $broken"
fi

log "waiting for the postgres:15 stand-in image"
wait "$PG_BUILD_PID" || abort "setup: building the postgres:15 stand-in failed (see $T/postgres-image.log)"

# ---------------------------------------------------------------------------- compose tests
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
free_port() {
  local p
  for _ in $(seq 1 50); do p=$((20000 + RANDOM % 30000)); port_free "$p" && { echo "$p"; return; }; done
  return 1
}
PASSWORD="ct-$(od -An -N8 -tx8 /dev/urandom | tr -d ' ')"
PGPORT_COMPOSE=$(free_port) || abort "setup: no free port"
# The example's env file with a real password and this run's port; the override file puts
# every service on the host network (loopback only: PostgreSQL listens on 127.0.0.1) and
# maps the name "postgres" to 127.0.0.1, so compose.yaml itself runs unchanged.
sed -e "s/CHANGE-ME/$PASSWORD/g" -e "s/@postgres:5432/@postgres:$PGPORT_COMPOSE/" \
  "$REPO/examples/migrate.env.example" >"$T/compose/migrate.env"
cat >"$T/compose/compose.test.yaml" <<EOF
services:
  postgres:
    network_mode: host
    command: ["postgres", "-c", "listen_addresses=127.0.0.1"]
    environment:
      PGPORT: "$PGPORT_COMPOSE"
  migrate:
    network_mode: host
    extra_hosts: ["postgres:127.0.0.1"]
  app:
    network_mode: host
    extra_hosts: ["postgres:127.0.0.1"]
EOF
export MIGRATOR_IMAGE=app-migrator:test APP_IMAGE=app:test STEPWISE_IMAGE=stepwise:test

cid() { compose ps -q "$1" 2>/dev/null | head -n 1; }
state() { "$DOCKER" inspect -f "$2" "$1" 2>/dev/null; }
psql_app() { "$DOCKER" exec "$(cid postgres)" psql -U app -d app -Atc "$1" 2>&1; }
wait_app_started() {  # until the app container logs "app started" (max $1 s)
  local id
  for _ in $(seq 1 $(($1 * 5))); do
    id=$(cid app)
    if [ -n "$id" ] && "$DOCKER" logs "$id" 2>&1 | grep -q 'app started'; then return 0; fi
    sleep 0.2
  done
  return 1
}
ordering_ok() {  # app started after migrate finished with exit 0
  local m a mfin astart
  m=$(cid migrate); a=$(cid app)
  [ -n "$m" ] && [ -n "$a" ] || return 1
  [ "$(state "$m" '{{.State.ExitCode}}')" = 0 ] || return 1
  mfin=$(date -d "$(state "$m" '{{.State.FinishedAt}}')" +%s%N)
  astart=$(date -d "$(state "$a" '{{.State.StartedAt}}')" +%s%N)
  [ "$astart" -ge "$mfin" ]
}

log "compose: up"
t0=$(date +%s%N)
compose up -d --no-build >"$T/compose-up-1.log" 2>&1
rc=$?
wait_app_started 60; started=$?
t1=$(date +%s%N)
COMPOSE_MS=$(((t1 - t0) / 1000000))
health=$(state "$(cid postgres)" '{{.State.Health.Status}}')
mlogs=$("$DOCKER" logs "$(cid migrate)" 2>&1)
if [ "$rc" = 0 ] && [ "$started" = 0 ] && ordering_ok && [ "$health" = healthy ] &&
   grep -q 'applied 3 migration(s)' <<<"$mlogs"; then
  pass "compose: postgres healthy -> migrate applied 3 and exited 0 -> app started after it ($COMPOSE_MS ms from 'docker-compose up' to app running, cold database)"
else
  fail "compose: first up (rc=$rc, app started=$started, postgres $health): $(tail -n 5 "$T/compose-up-1.log" | tr '\n' ' ') migrate: $(tail -n 3 <<<"$mlogs" | tr '\n' ' ')"
fi
networks=$("$DOCKER" network ls --format '{{.Name}}' | sort | tr '\n' ' ')

log "compose: down, up again"
rows_before=$(psql_app 'SELECT count(*) FROM stepwise_log')
compose down -t 5 >"$T/compose-down-1.log" 2>&1   # containers go, the pgdata volume stays
t0=$(date +%s%N)
compose up -d --no-build >"$T/compose-up-2.log" 2>&1
rc=$?
wait_app_started 60; started=$?
t1=$(date +%s%N)
WARM_MS=$(((t1 - t0) / 1000000))
mlogs=$("$DOCKER" logs "$(cid migrate)" 2>&1)
rows_after=$(psql_app 'SELECT count(*) FROM stepwise_log')
if [ "$rc" = 0 ] && [ "$started" = 0 ] && ordering_ok && grep -q 'nothing to do' <<<"$mlogs" &&
   [ "$rows_before" = "$rows_after" ]; then
  pass "compose: down and up again (data kept): migrate is a no-op (nothing to do, log rows $rows_after unchanged), app started ($WARM_MS ms)"
else
  fail "compose: second up (rc=$rc, app started=$started, rows $rows_before -> $rows_after): $(tail -n 3 <<<"$mlogs" | tr '\n' ' ')"
fi

log "compose: a failing migration"
compose down -v -t 5 >"$T/compose-down-2.log" 2>&1
MIGRATOR_IMAGE=app-migrator:bad compose up -d --no-build >"$T/compose-up-bad.log" 2>&1
rc=$?
m=$(MIGRATOR_IMAGE=app-migrator:bad cid migrate)
mexit=$(state "$m" '{{.State.ExitCode}}')
mlogs=$("$DOCKER" logs "$m" 2>&1)
a=$("$DOCKER" ps -aq --filter "label=com.docker.compose.project=$PROJECT" --filter "label=com.docker.compose.service=app")
astarted="never created"
[ -n "$a" ] && astarted=$(state "$a" '{{.State.StartedAt}}')
if [ "$rc" != 0 ] && [ "$mexit" = 1 ] && { [ -z "$a" ] || [[ "$astarted" == 0001-01-01* ]]; } &&
   grep -q '20250301090000_link_accounts.up.sql' <<<"$mlogs" && grep -q '42P01' <<<"$mlogs"; then
  pass "compose: a failing migration: 'up' exits $rc, migrate exit 1 naming the file and SQLSTATE 42P01, app never started"
else
  fail "compose: failing migration (up rc=$rc, migrate exit=$mexit, app: $astarted): $(tail -n 3 "$T/compose-up-bad.log" | tr '\n' ' ') $(tail -n 2 <<<"$mlogs" | tr '\n' ' ')"
fi

log "docker stop during a long migration"
compose down -v -t 5 >"$T/compose-down-3.log" 2>&1
compose up -d --no-build postgres >"$T/compose-up-pg.log" 2>&1
for _ in $(seq 1 300); do [ "$(state "$(cid postgres)" '{{.State.Health.Status}}')" = healthy ] && break; sleep 0.2; done
DB_URL="postgres://app:$PASSWORD@127.0.0.1:$PGPORT_COMPOSE/app?sslmode=disable"
"$DOCKER" run -d --name "$PROJECT-slow" --network host -e DATABASE_URL="$DB_URL" app-migrator:slow up \
  >/dev/null 2>"$T/slow.log"
for _ in $(seq 1 150); do
  "$DOCKER" logs "$PROJECT-slow" 2>&1 | grep -q 'applying 20250301090000_long_backfill' && break
  sleep 0.2
done
sleep 1
t0=$(date +%s%N)
timeout 60 "$DOCKER" stop -t 30 "$PROJECT-slow" >/dev/null 2>&1
t1=$(date +%s%N)
STOP_MS=$(((t1 - t0) / 1000000))
sexit=$(state "$PROJECT-slow" '{{.State.ExitCode}}')
outcome=$(psql_app "SELECT outcome FROM stepwise_log WHERE version = '20250301090000' ORDER BY id DESC LIMIT 1")
again=$(timeout 60 "$DOCKER" run --rm --network host -e DATABASE_URL="$DB_URL" app-migrator:test up --lock-timeout 5s 2>&1)
again_rc=$?
if [ "$sexit" = 7 ] && [ "$STOP_MS" -lt 5000 ] && [ "$outcome" = interrupted ] && [ "$again_rc" = 0 ]; then
  pass "docker stop (SIGTERM to stepwise as PID 1) during a long migration: exit 7 after $STOP_MS ms, attempt recorded as interrupted, lock released (next up exits 0)"
else
  fail "docker stop: exit=$sexit after $STOP_MS ms, outcome=[$outcome], next up rc=$again_rc: $(tail -n 2 <<<"$again" | tr '\n' ' ')"
fi
"$DOCKER" rm -f "$PROJECT-slow" >/dev/null 2>&1
compose down -v -t 5 >"$T/compose-down-4.log" 2>&1

# ------------------------------------------------------------------------------ podman tests
log "podman: loading images"
mkdir -p "$T/kube"
"$DOCKER" save app-migrator:test app:test | timeout 300 podman load >"$T/podman-load.log" 2>&1 ||
  abort "setup: podman load failed (see $T/podman-load.log)"
PGPORT_KUBE=$(free_port) || abort "setup: no free port"
KPG="$PROJECT-kube-pg"
"$DOCKER" run -d --name "$KPG" --network host -e PGPORT="$PGPORT_KUBE" -e POSTGRES_USER=app \
  -e POSTGRES_DB=app -e POSTGRES_PASSWORD="$PASSWORD" postgres:15 -c listen_addresses=127.0.0.1 >/dev/null ||
  abort "setup: could not start PostgreSQL for the kube tests"
for _ in $(seq 1 150); do "$DOCKER" exec "$KPG" pg_isready -q -h 127.0.0.1 -U app -d app && break; sleep 0.2; done
kpsql() { "$DOCKER" exec "$KPG" psql -U app -d app -Atc "$1" 2>&1; }
KUBE_URL="postgres://app:$PASSWORD@127.0.0.1:$PGPORT_KUBE/app?sslmode=disable"
"$PY" "$HERE/manifests.py" secret "$REPO/examples/kubernetes/secret.example.yaml" "$T/kube/secret.json" "$KUBE_URL" &&
  podman secret create app-db "$T/kube/secret.json" >/dev/null || abort "setup: podman secret create failed"
images=(--image registry.example.com/app-migrator:1.1.0=app-migrator:test --image registry.example.com/app:1.1.0=app:test)
"$PY" "$HERE/manifests.py" podman "$REPO/examples/kubernetes/deployment.yaml" "$T/kube/deployment.play.yaml" "${images[@]}" &&
  "$PY" "$HERE/manifests.py" podman "$REPO/examples/kubernetes/upgrade-job.yaml" "$T/kube/job.play.yaml" --job-pod "${images[@]}" ||
  abort "setup: rewriting the manifests for podman failed"

pstate() { podman inspect -f "$2" "$1" 2>/dev/null; }
kube_play() {  # kube_play FILE: play, then wait (max 60 s) for the app container to log "app started"
  timeout 120 podman kube play "$1" >"$T/kube-play.log" 2>&1 || return 1
  for _ in $(seq 1 300); do
    podman logs app-pod-0-app 2>&1 | grep -q 'app started' && return 0
    sleep 0.2
  done
  return 1
}
kube_order_ok() {
  [ "$(pstate app-pod-0-migrate '{{.State.ExitCode}}')" = 0 ] || return 1
  local fin st
  fin=$(date -d "$(pstate app-pod-0-migrate '{{.State.FinishedAt}}' | awk '{print $1" "$2" "$3}')" +%s%N)
  st=$(date -d "$(pstate app-pod-0-app '{{.State.StartedAt}}' | awk '{print $1" "$2" "$3}')" +%s%N)
  [ "$st" -ge "$fin" ]
}

log "podman: kube play deployment"
t0=$(date +%s%N)
kube_play "$T/kube/deployment.play.yaml"; rc=$?
KUBE_MS=$((($(date +%s%N) - t0) / 1000000))
ilogs=$(podman logs app-pod-0-migrate 2>&1)
rows=$(kpsql "SELECT count(*) FROM stepwise_log WHERE outcome = 'succeeded'")
if [ "$rc" = 0 ] && kube_order_ok && grep -q 'applied 3 migration(s)' <<<"$ilogs" && [ "$rows" = 3 ]; then
  pass "kube: podman kube play deployment.yaml: init container 'migrate' applied 3 and exited 0, then the app container started ($KUBE_MS ms)"
else
  fail "kube: first start (rc=$rc, rows=$rows): $(tail -n 3 "$T/kube-play.log" | tr '\n' ' ') init: $(tail -n 3 <<<"$ilogs" | tr '\n' ' ')"
fi
# podman does not run readiness probes: run the manifest's probe command in the app container.
mapfile -t probe < <("$PY" -c 'import sys, yaml
d = yaml.safe_load(open(sys.argv[1]))
print("\n".join(d["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["exec"]["command"]))' \
  "$REPO/examples/kubernetes/deployment.yaml")
out=$(timeout 30 podman exec app-pod-0-app "${probe[@]}" 2>&1); prc=$?
if [ "$prc" = 0 ] && [ "${probe[0]:-}" = stepwise ]; then
  pass "kube: the readiness probe command (${probe[*]}) exits 0 in the running app container"
else
  fail "kube: readiness probe (${probe[*]}) exit $prc: $(tail -n 2 <<<"$out" | tr '\n' ' ')"
fi

log "podman: second start"
rows_before=$(kpsql 'SELECT count(*) FROM stepwise_log')
timeout 60 podman kube down "$T/kube/deployment.play.yaml" >/dev/null 2>&1
kube_play "$T/kube/deployment.play.yaml"; rc=$?
ilogs=$(podman logs app-pod-0-migrate 2>&1)
rows_after=$(kpsql 'SELECT count(*) FROM stepwise_log')
if [ "$rc" = 0 ] && kube_order_ok && grep -q 'nothing to do' <<<"$ilogs" && [ "$rows_before" = "$rows_after" ]; then
  pass "kube: second start is a no-op: init container says nothing to do, log rows unchanged ($rows_after), app started"
else
  fail "kube: second start (rc=$rc, rows $rows_before -> $rows_after): $(tail -n 3 <<<"$ilogs" | tr '\n' ' ')"
fi
timeout 60 podman kube down "$T/kube/deployment.play.yaml" >/dev/null 2>&1

log "podman: upgrade Job"
# Take the database back to release 1.0.0, then let the Job's pod upgrade it to 1.1.0.
down=$(timeout 60 "$DOCKER" run --rm --network host -e DATABASE_URL="$KUBE_URL" app-migrator:test migrate-to 20250106090000 2>&1)
timeout 120 podman kube play "$T/kube/job.play.yaml" >"$T/kube-job.log" 2>&1; rc=$?
for _ in $(seq 1 300); do
  [ "$(pstate app-upgrade-1-1-0-upgrade '{{.State.Status}}')" = exited ] && break
  sleep 0.2
done
jexit=$(pstate app-upgrade-1-1-0-upgrade '{{.State.ExitCode}}')
jlogs=$(podman logs app-upgrade-1-1-0-upgrade 2>&1)
valid=$(timeout 60 "$DOCKER" run --rm --network host -e DATABASE_URL="$KUBE_URL" app-migrator:test validate --release 1.1.0 2>&1)
valid_rc=$?
if [ "$rc" = 0 ] && [ "$jexit" = 0 ] && [ "$valid_rc" = 0 ] && grep -q '1.1.0' <<<"$jlogs"; then
  pass "kube: upgrade Job's pod (podman kube play) took the database from release 1.0.0 to 1.1.0 and exited 0; validate --release 1.1.0 exits 0"
else
  fail "kube: upgrade Job (play rc=$rc, exit=$jexit, validate rc=$valid_rc): down: $(tail -n 1 <<<"$down") job: $(tail -n 4 <<<"$jlogs" | tr '\n' ' ') validate: $(tail -n 2 <<<"$valid" | tr '\n' ' ')"
fi
timeout 60 podman kube down "$T/kube/job.play.yaml" >/dev/null 2>&1

log "networks in our dockerd: $networks"
echo "measured: image stepwise:test $IMAGE_SIZE; compose up -> app running: cold $COMPOSE_MS ms, warm $WARM_MS ms; kube play -> app running $KUBE_MS ms; docker stop -> exit 7 in $STOP_MS ms"
finish
