#!/usr/bin/env bash
# Builds zoomprobe and runs the daemon on the built-in default config: it
# captures on the default-route interface, serves metrics on :18801 and runs
# the active checks, which contact Zoom's servers, pool.ntp.org,
# time.cloudflare.com and the system's resolver. `scripts/run.sh --passive`
# only listens. Capture needs root or CAP_NET_RAW. Extra arguments go to
# `zoomprobe run`.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/toolchain.sh
zp_go_toolchain
zp_log "downloading Go modules (first run only)"
go mod download
zp_log "building ./zoomprobe (the first build compiles every dependency: a minute or two; later builds take seconds)"
pkg=github.com/prometheus/common/version
CGO_ENABLED=0 go build -o zoomprobe -ldflags "-X $pkg.Version=$(cat VERSION) \
  -X $pkg.Revision=$(git rev-parse --short HEAD 2>/dev/null || echo unknown) \
  -X $pkg.Branch=$(git rev-parse --abbrev-ref HEAD 2>/dev/null || echo unknown)" ./cmd/zoomprobe
zp_log "starting: ./zoomprobe run $*"
exec ./zoomprobe run "$@"
