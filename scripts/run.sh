#!/usr/bin/env bash
# Builds zoomprobe and runs the daemon on the built-in default config: it
# captures on the default-route interface and serves metrics on :18801.
# Capture needs root or CAP_NET_RAW. Extra arguments go to `zoomprobe run`.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"
go mod download
pkg=github.com/prometheus/common/version
CGO_ENABLED=0 go build -o zoomprobe -ldflags "-X $pkg.Version=$(cat VERSION) \
  -X $pkg.Revision=$(git rev-parse --short HEAD 2>/dev/null || echo unknown) \
  -X $pkg.Branch=$(git rev-parse --abbrev-ref HEAD 2>/dev/null || echo unknown)" ./cmd/zoomprobe
exec ./zoomprobe run "$@"
