# Sourced by the other scripts: puts the Go toolchain go.mod asks for first
# on PATH, getting it if needed, and says so on stderr (the first time it
# downloads about 70 MB and compiles for a minute or two).
#
#   no go at all        as root: installs Debian's golang-go (apt) to bootstrap;
#                       otherwise says what to install
#   go 1.21 or later    GOTOOLCHAIN=goX.Y.Z: the go command fetches the
#                       toolchain from the Go module proxy and checks it
#                       against the checksum database
#   go older than 1.21  (Debian 12's golang-go is 1.19) `go mod download`
#                       fetches the same toolchain module, checked the same
#                       way, and we run it from the module cache
#
# Only the Go module proxy (GOPROXY) and Debian's archive are contacted.

zp_log() { printf 'zoomprobe: %s\n' "$*" >&2; }

zp_go_toolchain() {
  local want have minor
  want=$(awk '$1 == "go" { print $2; exit }' go.mod)
  export PATH="/usr/local/go/bin:$PATH"
  if ! command -v go >/dev/null 2>&1; then
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
      zp_log "no go command: installing Debian's golang-go to bootstrap Go $want"
      DEBIAN_FRONTEND=noninteractive apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends golang-go ca-certificates >/dev/null
    else
      zp_log "no go command: install Go (Debian: apt-get install golang-go, as root) and run this again; Go $want is then fetched automatically"
      return 1
    fi
  fi
  have=$(GOTOOLCHAIN=local go env GOVERSION 2>/dev/null || go version | awk '{print $3}')
  have=${have#go}
  if [ "$(printf '%s\n%s\n' "$want" "$have" | sort -V | head -n1)" = "$want" ]; then
    export GOTOOLCHAIN=local
    return 0
  fi
  minor=$(echo "$have" | cut -d. -f2)
  if [ "${have%%.*}" -eq 1 ] && [ "$minor" -ge 21 ]; then
    local cached
    cached="$(GOTOOLCHAIN=local go env GOMODCACHE)/golang.org/toolchain@v0.0.1-go$want.$(GOTOOLCHAIN=local go env GOOS)-$(GOTOOLCHAIN=local go env GOARCH)"
    [ -d "$cached" ] || zp_log "Go $have is older than go.mod's $want: fetching go$want from the Go module proxy (once, about 70 MB)"
    export GOTOOLCHAIN="go$want"
    go version >/dev/null
    return 0
  fi
  # A go command that predates GOTOOLCHAIN: fetch the toolchain module
  # ourselves, outside this module (its go.mod uses newer directives).
  local goos goarch mod dir tmp
  goos=$(go env GOOS) goarch=$(go env GOARCH)
  mod="golang.org/toolchain@v0.0.1-go$want.$goos-$goarch"
  [ -d "$(go env GOMODCACHE 2>/dev/null || echo "$HOME/go/pkg/mod")/$mod" ] ||
    zp_log "Go $have predates automatic toolchains: fetching $mod from the Go module proxy (once, about 70 MB)"
  tmp=$(mktemp -d)
  dir=$(cd "$tmp" && GO111MODULE=on GOFLAGS= go mod download -json "$mod" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  rmdir "$tmp"
  if [ -z "$dir" ] || [ ! -f "$dir/bin/go" ]; then
    zp_log "could not fetch $mod"
    return 1
  fi
  # The module cache keeps no execute bits; the go command sets them the
  # same way when it switches toolchains itself.
  chmod a+x "$dir/bin/"* "$dir/pkg/tool/"*/*
  export PATH="$dir/bin:$PATH" GOTOOLCHAIN=local
  unset GOROOT
  zp_log "using $(go version)"
}
