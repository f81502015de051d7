#!/usr/bin/env bash
# Builds zoomprobe and runs the daemon on the built-in default config: it
# captures on the default-route interface and serves metrics on :18801.
# Capture needs root or CAP_NET_RAW. Extra arguments go to `zoomprobe run`.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"
go mod download
CGO_ENABLED=0 go build -o zoomprobe ./cmd/zoomprobe
exec ./zoomprobe run "$@"
