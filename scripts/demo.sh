#!/usr/bin/env bash
# Installs the dependencies, builds stepwise (release preset), starts a throw-away local
# PostgreSQL, and runs `stepwise up` then `stepwise status` on the embedded example set.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake --preset release >/dev/null
cmake --build --preset release
scripts/with-postgres.sh bash -c '
  set -e
  echo "\$ stepwise up";      build/release/stepwise up
  echo "\$ stepwise up       # again: nothing to do"; build/release/stepwise up
  echo "\$ stepwise status";  build/release/stepwise status
'
