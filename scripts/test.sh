#!/usr/bin/env bash
# Runs every test: vet, unit and fuzz-seed tests, the live namespace test bed
# (as root), promtool rule tests, and the end-to-end Prometheus/Alertmanager
# test. Installs what it needs first.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/toolchain.sh
zp_go_toolchain
scripts/deps.sh

echo "== go vet" >&2
go vet ./...
echo "== staticcheck (honnef.co/go/tools, pinned)" >&2
go run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...
echo "== static build (CGO_ENABLED=0)" >&2
CGO_ENABLED=0 go build -o /dev/null ./cmd/zoomprobe
if [ -x scripts/check-deploy.sh ]; then
  echo "== deploy files (promtool, amtool)" >&2
  scripts/check-deploy.sh
fi
if [ "$(id -u)" -eq 0 ]; then
  echo "== .deb package: install, check, purge" >&2
  scripts/check-package.sh
fi
echo "== go test" >&2
go test -count=1 -timeout 20m ./... 2>&1 | tee /tmp/zoomprobe-test.log
