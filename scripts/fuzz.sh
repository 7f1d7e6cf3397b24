#!/usr/bin/env bash
# fuzz.sh [TARGET...]
# Builds the libFuzzer targets (tests/fuzz) with clang, AddressSanitizer and
# UndefinedBehaviorSanitizer in build/fuzz, then runs each target for $FUZZ_SECONDS seconds
# (default 60) starting from the seed corpus in tests/fuzz/corpus/<name>. Targets: migration,
# releases (default: both). A short run suits CI (FUZZ_SECONDS=15); run longer by hand.
#
# The working corpus grows in build/fuzz/corpus/<name> and is reused by the next run; crashes
# are written to build/fuzz/artifacts/<name>/ (crash-*, leak-*, timeout-*). Reproduce one with
#   build/fuzz/tests/fuzz/<name>_fuzz build/fuzz/artifacts/<name>/crash-...
# Exit status: 0 when every target ran its time without a finding, 1 otherwise.
# Other knobs: FUZZ_JOBS (parallel fuzzing processes per target, default 1), FUZZ_BUILD_DIR,
# FUZZ_KEEP_GOING=1 (fork mode: record a finding and keep fuzzing instead of stopping at it),
# STEPWISE_FUZZ_IGNORE=<text> (the harness skips an exception whose message holds <text>: a
# known, reported finding, so that a long run can look past it).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${FUZZ_SECONDS:-60}
jobs=${FUZZ_JOBS:-1}
build=${FUZZ_BUILD_DIR:-build/fuzz}
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(migration releases)

# clang with libFuzzer (Debian's clang package ships it), plus the project's own dependencies.
if ! command -v clang++ >/dev/null 2>&1; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "fuzz: installing clang" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends clang >/dev/null
fi
scripts/install-deps.sh >&2

generator=()
command -v ninja >/dev/null 2>&1 && generator=(-G Ninja)
CC=clang CXX=clang++ cmake -S . -B "$build" "${generator[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DSTEPWISE_FUZZ=ON -DSTEPWISE_BUILD_TESTS=OFF -DSTEPWISE_SANITIZE='address;undefined' >/dev/null
names=()
for t in "${targets[@]}"; do names+=("${t}_fuzz"); done
cmake --build "$build" --target "${names[@]}"

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

status=0
for t in "${targets[@]}"; do
  bin="$build/tests/fuzz/${t}_fuzz"
  corpus="$build/corpus/$t"
  artifacts="$build/artifacts/$t"
  mkdir -p "$corpus" "$artifacts"
  echo "fuzz: $t for ${seconds}s (corpus $corpus, findings in $artifacts/)" >&2
  args=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
        -dict="tests/fuzz/$t.dict" -artifact_prefix="$artifacts/")
  if [ "${FUZZ_KEEP_GOING:-0}" = 1 ]; then
    args+=(-fork="$jobs" -ignore_crashes=1 -ignore_ooms=1 -ignore_timeouts=1)
  elif [ "$jobs" -gt 1 ]; then
    args+=(-jobs="$jobs" -workers="$jobs")
  fi
  before=$(find "$artifacts" -type f | wc -l)
  if ! "$bin" "${args[@]}" "$corpus" "tests/fuzz/corpus/$t" || [ "$(find "$artifacts" -type f | wc -l)" -gt "$before" ]; then
    echo "fuzz: $t FOUND A PROBLEM; reproducers:" >&2
    ls -1 "$artifacts" >&2 || true
    status=1
  fi
done
exit $status
