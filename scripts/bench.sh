#!/usr/bin/env bash
# zoomprobe's benchmarks, in one run on this machine:
#  1. the per-packet hot path (go test -bench, ns and allocs per packet);
#  2. `zoomprobe analyze` on a large generated capture against `tshark -r` on
#     the same file (tshark dissects the same packets; we quote the ratio).
# Usage: scripts/bench.sh [PACKETS]   (default 1000000)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"
n=${1:-1000000}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

echo "== hot path (go test -bench)"
go test ./engine ./flow ./decode -run '^$' -bench . -benchmem -benchtime=200000x | grep -E '^Benchmark|^ok'

CGO_ENABLED=0 go build -o "$out/zoomprobe" ./cmd/zoomprobe
go build -o "$out/zoomprobe-gen" ./cmd/zoomprobe-gen
"$out/zoomprobe-gen" -large "$n" -o "$out/large.pcap" >/dev/null
size=$(stat -c %s "$out/large.pcap")
echo "== whole file: $n packets, $((size / 1048576)) MiB"

secs() { local s e; s=$(date +%s.%N); "$@" >/dev/null 2>&1; e=$(date +%s.%N); echo "$e - $s" | bc -l; }
cat "$out/large.pcap" >/dev/null # page cache, so both read from memory
for workers in 1 2; do
  t=$(secs "$out/zoomprobe" analyze --workers "$workers" "$out/large.pcap")
  printf 'zoomprobe analyze (workers=%d): %.2f s  %.0f packets/s  %.0f ns/packet\n' "$workers" "$t" "$(echo "$n / $t" | bc -l)" "$(echo "$t * 1000000000 / $n" | bc -l)"
  eval "zp_$workers=$t"
done
if command -v tshark >/dev/null 2>&1; then
  t=$(secs tshark -n -r "$out/large.pcap" -q)
  printf 'tshark -r (dissect only):      %.2f s  %.0f packets/s\n' "$t" "$(echo "$n / $t" | bc -l)"
  printf 'ratio: zoomprobe (1 worker) is %.1fx tshark\n' "$(echo "$t / $zp_1" | bc -l)"
else
  echo "tshark not installed (scripts/deps.sh installs it): no comparison"
fi
