#!/usr/bin/env bash
# Builds the release into dist/ (or --out DIR), stamped with VERSION and the
# git revision:
#   zoomprobe-VERSION-linux-amd64, -linux-arm64     static daemon (CGO_ENABLED=0)
#   zoomprobe-VERSION-windows-amd64.exe, -darwin-*  the same command, for
#                                                    `audit` and `analyze` there
#                                                    (live capture is Linux only)
#   zoomprobe_VERSION_amd64.deb, ..._arm64.deb,     packages: binary, systemd unit,
#   zoomprobe-VERSION-1.x86_64.rpm, ...aarch64.rpm  system user, example config
#   SHA256SUMS
# --only linux/ARCH builds just that binary and its packages (CI uses it).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/toolchain.sh
zp_go_toolchain

out=dist
only=""
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out=$2; shift 2 ;;
    --only) only=$2; shift 2 ;;
    *) echo "usage: $0 [--out DIR] [--only linux/ARCH]" >&2; exit 2 ;;
  esac
done
version=$(cat VERSION)
revision=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
pkg=github.com/prometheus/common/version
ldflags="-s -w -X $pkg.Version=$version -X $pkg.Revision=$revision -X $pkg.Branch=release"
mkdir -p "$out"
out=$(cd "$out" && pwd)

targets="linux/amd64 linux/arm64 windows/amd64 darwin/amd64 darwin/arm64"
[ -n "$only" ] && targets=$only
zp_log "building zoomprobe $version ($revision) for: $targets"
for t in $targets; do
  goos=${t%/*} goarch=${t#*/}
  bin="$out/zoomprobe-$version-$goos-$goarch"
  [ "$goos" = windows ] && bin="$bin.exe"
  zp_log "  $t -> $(basename "$bin")"
  CGO_ENABLED=0 GOOS=$goos GOARCH=$goarch go build -trimpath -ldflags "$ldflags" -o "$bin" ./cmd/zoomprobe
  if [ "$goos" = linux ]; then
    # nfpm expands variables in version and arch, not in file sources.
    sed "s|\${ZP_BINARY}|$bin|" deploy/packaging/nfpm.yaml > "$out/.nfpm.yaml"
    for packager in deb rpm; do
      zp_log "  $t -> $packager"
      ZP_ARCH=$goarch ZP_VERSION=$version \
        go tool nfpm package --config "$out/.nfpm.yaml" --packager "$packager" --target "$out/" >/dev/null
    done
    rm -f "$out/.nfpm.yaml"
  fi
done
(cd "$out" && rm -f SHA256SUMS && sha256sum -- * > SHA256SUMS)
zp_log "done: $out"
ls -l "$out" >&2
