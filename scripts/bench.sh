#!/usr/bin/env bash
# zoomprobe's throughput on one capture file, against the floors and peers:
#   read      zoomprobe-bench read: every frame read from the file, nothing else
#   gopacket  zoomprobe-bench gopacket: read + gopacket's DecodingLayerParser
#             (Ethernet, VLAN, IPv4/6, TCP, UDP, ICMP; no flows, no analysis)
#   analyze   zoomprobe analyze --workers N: decode, flows, every analyzer,
#             certificates judged (one row per worker count)
#   tshark    tshark -n -q -z conv,tcp: full dissection of every packet and
#             a TCP conversation table (tshark -q alone skips dissection)
#   ndpi      ndpiReader -q -i FILE: nDPI's flow table and protocol detection
# Peers that are not installed are skipped. Each figure is the best of --runs
# wall-clock runs; ratios are time over the floor's time, from the same run.
#
# Usage:
#   scripts/bench.sh [--bin DIR] [--capture FILE] [--packets N] [--runs R] [--hot] [WORKERS...]
#     --bin DIR      use prebuilt zoomprobe, zoomprobe-gen and zoomprobe-bench
#                    from DIR (no Go toolchain needed); default: build them
#     --capture FILE use this capture; default: zoomprobe-gen -large PACKETS
#                    (realistic flow sizes: media calls, TLS sessions, DNS)
#     --packets N    size of the generated capture (default 2000000)
#     --runs R       runs per figure, best kept (default 3)
#     --hot          also run the Go hot-path benchmarks (needs Go)
#     WORKERS        worker counts for analyze (default: 1 2)
# Example on a many-core machine with static binaries:
#   scripts/bench.sh --bin ./bin --capture /tmp/large.pcap 1 2 4 8 16
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
bin="" capture="" packets=2000000 runs=3 hot=0 workers=()
while [ $# -gt 0 ]; do
  case "$1" in
    --bin) bin=$2; shift 2 ;;
    --capture) capture=$2; shift 2 ;;
    --packets) packets=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --hot) hot=1; shift ;;
    -h|--help) sed -n '2,25p' "$0"; exit 0 ;;
    -*) echo "bench.sh: unknown option $1" >&2; exit 2 ;;
    *) workers+=("$1"); shift ;;
  esac
done
[ ${#workers[@]} -gt 0 ] || workers=(1 2)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

if [ -z "$bin" ]; then
  export PATH="/usr/local/go/bin:$PATH"
  command -v go >/dev/null || { echo "bench.sh: no Go toolchain: give --bin DIR with prebuilt binaries" >&2; exit 2; }
  bin=$out/bin
  (cd "$here" && for c in zoomprobe zoomprobe-gen zoomprobe-bench; do CGO_ENABLED=0 go build -o "$bin/$c" "./cmd/$c"; done)
fi
for c in zoomprobe zoomprobe-bench; do
  [ -x "$bin/$c" ] || { echo "bench.sh: $bin/$c missing" >&2; exit 2; }
done
if [ -z "$capture" ]; then
  [ -x "$bin/zoomprobe-gen" ] || { echo "bench.sh: $bin/zoomprobe-gen missing: give --capture FILE" >&2; exit 2; }
  capture=$out/large.pcap
  "$bin/zoomprobe-gen" -large "$packets" -o "$capture" >/dev/null
fi

if [ "$hot" = 1 ]; then
  echo "== hot path (go test -bench; ns and allocations per packet)"
  (cd "$here" && go test ./engine ./flow -run '^$' -bench 'PacketPath|Table|File' -benchmem -benchtime=200000x | grep -E '^Benchmark')
fi

now() { date +%s.%N; }
# best RUNS wall-clock seconds of a command (output discarded)
best() {
  local b="" s e t i
  for ((i = 0; i < runs; i++)); do
    s=$(now)
    "$@" >/dev/null 2>&1 || { echo "bench.sh: failed: $*" >&2; return 1; }
    e=$(now)
    t=$(awk -v s="$s" -v e="$e" 'BEGIN { printf "%.6f", e - s }')
    if [ -z "$b" ] || awk -v t="$t" -v b="$b" 'BEGIN { exit !(t < b) }'; then b=$t; fi
  done
  echo "$b"
}

cat "$capture" >/dev/null # page cache: every run reads from memory
n=$("$bin/zoomprobe-bench" read "$capture" | awk '{ print $1 }')
size=$(wc -c <"$capture")
cores=$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo "?")
echo "== $capture: $n packets, $((size / 1048576)) MiB; $cores CPUs; best of $runs runs"

floor=$(best "$bin/zoomprobe-bench" read "$capture")
gp=$(best "$bin/zoomprobe-bench" gopacket "$capture")
rows=("read (floor)|$floor" "gopacket DecodingLayerParser|$gp")
for w in "${workers[@]}"; do
  rows+=("zoomprobe analyze --workers $w|$(best "$bin/zoomprobe" analyze --workers "$w" "$capture")")
done
if command -v tshark >/dev/null 2>&1; then
  rows+=("tshark -z conv,tcp|$(best tshark -n -q -z conv,tcp -r "$capture")")
else
  echo "(tshark not installed: skipped)"
fi
if command -v ndpiReader >/dev/null 2>&1; then
  rows+=("ndpiReader|$(best ndpiReader -q -i "$capture")")
else
  echo "(ndpiReader not installed: skipped)"
fi

printf '%-32s %9s %12s %9s %11s\n' "run" "seconds" "packets/s" "×floor" "×gopacket"
for r in "${rows[@]}"; do
  name=${r%|*} t=${r##*|}
  awk -v name="$name" -v t="$t" -v n="$n" -v f="$floor" -v g="$gp" \
    'BEGIN { printf "%-32s %9.3f %12.0f %9.2f %11.2f\n", name, t, n / t, t / f, t / g }'
done
