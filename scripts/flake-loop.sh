#!/usr/bin/env bash
# Runs tests again and again while busy loops keep every core loaded, and stops
# at the first failure: the check that the suite is deterministic on a busy
# machine. It only stops the load processes it started itself.
#
#   scripts/flake-loop.sh [RUNS] [go test args...]
#   scripts/flake-loop.sh 20                          # the whole suite (scripts/test.sh's go test), 20 times
#   scripts/flake-loop.sh 20 ./internal/testbed -run 'TestScenarios/injected-rst'
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"
runs=${1:-20}
shift || true
args=("$@")
[ ${#args[@]} -gt 0 ] || args=(./...)

pids=()
cleanup() { [ ${#pids[@]} -eq 0 ] || kill "${pids[@]}" 2>/dev/null || true; }
trap cleanup EXIT INT TERM
for _ in $(seq "$(nproc)"); do
  ( while :; do :; done ) &
  pids+=($!)
done

for i in $(seq "$runs"); do
  start=$(date +%s)
  if ! go test -count=1 -timeout 20m "${args[@]}" >/tmp/zoomprobe-flake-$$.log 2>&1; then
    grep -E -- '^(--- FAIL|FAIL|panic)' /tmp/zoomprobe-flake-$$.log | head -40 >&2
    echo "flake-loop: run $i of $runs FAILED (log: /tmp/zoomprobe-flake-$$.log)" >&2
    exit 1
  fi
  echo "flake-loop: run $i of $runs passed in $(( $(date +%s) - start )) s under load" >&2
done
rm -f /tmp/zoomprobe-flake-$$.log
echo "flake-loop: $runs of $runs runs passed under load"
