#!/usr/bin/env bash
# Regenerates migrations/expected/<VERSION>.json (the schema each release, and the head, should
# have) by applying the set release by release on a scratch database. Run after adding a
# migration or a release; commit the result.
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=${1:-migrations}
cmake --preset release >/dev/null
cmake --build --preset release --target stepwise >/dev/null
rm -f "$DIR/expected/"*.json
scripts/with-postgres.sh build/release/stepwise --log-level warn --source "$DIR" generate-expected --out "$DIR/expected"
cmake --build --preset release --target stepwise >/dev/null  # embed the new files
