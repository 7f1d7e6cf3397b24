#!/usr/bin/env bash
# Installs the other migration tools the adopt tests run for real (tests/integration/
# adopt_test.cpp, AdoptRealTools.*): dbmate, node-pg-migrate, postgrator-cli and
# graphile-migrate from npm, pinned, into a directory outside the tree
# ($STEPWISE_PEER_TOOLS, default /opt/stepwise-peer-tools, else ~/.cache/stepwise-peer-tools
# when /opt is not writable). Idempotent: nothing is fetched when the pinned versions are there.
# Without npm or the registry it prints one warning line and exits 0 (those tests then skip),
# unless STEPWISE_REQUIRE_PEER_TOOLS=1 (then it fails).
# Prints nothing else on stdout but, with --print-env, the `export` lines for the tests.
set -euo pipefail

# Bump these together with the "Tested against" table in docs/commands/adopt.md.
pins=(
  dbmate@2.36.0
  node-pg-migrate@9.0.0
  postgrator-cli@9.1.1
  graphile-migrate@1.4.1
  pg@8.23.1
)

dir=${STEPWISE_PEER_TOOLS:-}
if [ -z "$dir" ]; then
  dir=/opt/stepwise-peer-tools
  if ! { [ -d "$dir" ] && [ -w "$dir" ]; } && ! mkdir -p "$dir" 2>/dev/null; then
    dir=${XDG_CACHE_HOME:-$HOME/.cache}/stepwise-peer-tools
  fi
fi
stamp="$dir/.pins"
want=$(printf '%s\n' "${pins[@]}")

fail() {
  if [ "${STEPWISE_REQUIRE_PEER_TOOLS:-}" = 1 ]; then
    echo "install-peer-tools: $1 (STEPWISE_REQUIRE_PEER_TOOLS=1)" >&2
    exit 1
  fi
  echo "install-peer-tools: warning: $1; the AdoptRealTools tests for npm tools will skip" >&2
  exit 0
}

print_env() {
  echo "export STEPWISE_PEER_TOOLS=$dir"
  echo "export STEPWISE_TEST_DBMATE=$dir/node_modules/.bin/dbmate"
  echo "export STEPWISE_TEST_NODE_PG_MIGRATE=$dir/node_modules/.bin/node-pg-migrate"
  echo "export STEPWISE_TEST_POSTGRATOR=$dir/node_modules/.bin/postgrator"
  echo "export STEPWISE_TEST_GRAPHILE_MIGRATE=$dir/node_modules/.bin/graphile-migrate"
}

installed() {
  [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] &&
    [ -x "$dir/node_modules/.bin/dbmate" ] && [ -x "$dir/node_modules/.bin/node-pg-migrate" ] &&
    [ -x "$dir/node_modules/.bin/postgrator" ] && [ -x "$dir/node_modules/.bin/graphile-migrate" ]
}

if ! installed; then
  command -v npm >/dev/null || fail "npm is not installed"
  command -v node >/dev/null || fail "node is not installed"
  mkdir -p "$dir" || fail "cannot create $dir"
  # One package installer at a time on this machine (apt-get and npm share the lock).
  exec 9>/tmp/pkg.lock
  flock 9
  if ! installed; then
    echo "install-peer-tools: installing ${pins[*]} into $dir" >&2
    rm -f "$stamp"
    # The package.json keeps npm from walking up to another project's.
    [ -f "$dir/package.json" ] || echo '{"name": "stepwise-peer-tools", "private": true}' >"$dir/package.json"
    if ! timeout 240 npm install --no-audit --no-fund --no-update-notifier --loglevel=error \
      --fetch-retries=1 --fetch-retry-mintimeout=2000 --fetch-retry-maxtimeout=5000 --fetch-timeout=30000 \
      --prefix "$dir" "${pins[@]}" >"$dir/npm-install.log" 2>&1; then
      fail "npm install failed (see $dir/npm-install.log)"
    fi
    installed_ok=1
    for b in dbmate node-pg-migrate postgrator graphile-migrate; do
      [ -x "$dir/node_modules/.bin/$b" ] || installed_ok=0
    done
    [ "$installed_ok" = 1 ] || fail "npm install left no binaries in $dir/node_modules/.bin"
    echo "$want" >"$stamp"
  fi
  flock -u 9
fi
[ "${1:-}" = --print-env ] && print_env
exit 0
