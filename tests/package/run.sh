#!/usr/bin/env bash
# Installs the stepwise build in BUILD_DIR to a temporary prefix, builds the out-of-tree
# example project (tests/package/example) with find_package(stepwise) and
# stepwise_add_migrator(), and runs its migrator against the server in
# STEPWISE_TEST_DATABASE_URL. Prints "N passed, N failed".
set -uo pipefail
BUILD_DIR=$(cd "$1" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d /tmp/stepwise-package.XXXXXX)
db="pkg_$$_$RANDOM"
passed=0 failed=0
cleanup() {
  [ -n "${STEPWISE_TEST_DATABASE_URL:-}" ] && psql -qAtX "$STEPWISE_TEST_DATABASE_URL" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1
  rm -rf "$work"
}
trap cleanup EXIT
check() { # name, command...
  local name=$1; shift
  if "$@" >"$work/out" 2>&1; then echo "PASS $name"; passed=$((passed + 1));
  else echo "FAIL $name"; sed 's/^/    /' "$work/out" | tail -n 30; failed=$((failed + 1)); fi
}
[ -n "${STEPWISE_TEST_DATABASE_URL:-}" ] || { echo "STEPWISE_TEST_DATABASE_URL is not set"; echo "0 passed, 1 failed"; exit 1; }

check "cmake --install to a prefix" cmake --install "$BUILD_DIR" --prefix "$work/prefix"
# A sanitized stepwise build needs its consumers to link the sanitizer runtime too.
san=$(sed -n 's/^STEPWISE_SANITIZE:STRING=//p' "$BUILD_DIR/CMakeCache.txt")
flags=()
[ -n "$san" ] && flags=(-DCMAKE_EXE_LINKER_FLAGS="-fsanitize=${san//;/,}")
gen=()
command -v ninja >/dev/null && gen=(-G Ninja)
check "configure with find_package(stepwise)" \
  cmake -S "$HERE/example" -B "$work/build" "${gen[@]}" -DCMAKE_PREFIX_PATH="$work/prefix" "${flags[@]}"
check "build the migrator with stepwise_add_migrator()" cmake --build "$work/build"
m="$work/build/shop-migrator"
check "the migrator names its own embedded set" bash -c "'$m' --version | grep -q 'embedded set, 2 migration(s), newest 2'"
psql -qAtX "$STEPWISE_TEST_DATABASE_URL" -c "CREATE DATABASE $db" >/dev/null
url="${STEPWISE_TEST_DATABASE_URL%/*}/$db"
check "the migrator applies its set" "$m" --database-url "$url" up
check "its tables exist" bash -c "[ \"\$(psql -qAtX '$url' -c \"SELECT count(*) FROM pg_tables WHERE tablename IN ('products','orders')\")\" = 2 ]"
check "a second run is a no-op" bash -c "'$m' --database-url '$url' up | grep -q 'nothing to do'"
check "and it goes down with its own down files" "$m" --database-url "$url" migrate-to 0
# serve's HTTP module is copied beside the migrator, and serve loads it and listens.
check "serve's HTTP module is beside the migrator" test -f "$work/build/stepwise-http.so"
check "the migrator's serve listens" bash -c "timeout 5 '$m' --database-url '$url' serve --listen 127.0.0.1:0 --public-read 2>&1 | grep -q -m1 'serve: listening on'"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
