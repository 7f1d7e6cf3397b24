#!/bin/sh
# Stand-in for the application: refuse to start unless the database holds the schema this
# build expects (a non-zero exit names the reason: docs/exit-codes.md), then idle until stopped.
set -eu
stepwise validate --skip-drift
echo "app started"
trap 'echo "app stopping"; exit 0' TERM INT
sleep infinity &
wait $!
