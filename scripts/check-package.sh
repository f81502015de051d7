#!/usr/bin/env bash
# CI step (scripts/test.sh runs it as root): builds the .deb for this
# machine, installs it with dpkg, checks `zoomprobe version`, the system
# user, the shipped config (check-config) and the unit (systemd-analyze
# verify, where installed), then purges it and checks nothing is left. It
# leaves the machine as it found it, and skips when it could not: not root,
# no dpkg, or a zoomprobe package or user already there.
set -euo pipefail
cd "$(dirname "$0")/.."
skip() { echo "check-package: skipped: $*" >&2; exit 0; }
[ "$(id -u)" -eq 0 ] || skip "needs root (dpkg -i)"
command -v dpkg >/dev/null 2>&1 || skip "no dpkg"
if dpkg-query -W -f='${Status}' zoomprobe 2>/dev/null | grep -q "installed"; then
  skip "a zoomprobe package is installed here; it is not touched"
fi
getent passwd zoomprobe >/dev/null && skip "a user zoomprobe exists; purging the package would remove it"

. scripts/toolchain.sh
zp_go_toolchain
version=$(cat VERSION)
tmp=$(mktemp -d)
cleanup() {
  dpkg --purge zoomprobe >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT
scripts/release.sh --only "linux/$(go env GOARCH)" --out "$tmp"
deb=$(ls "$tmp"/zoomprobe_*.deb)

fail() { echo "check-package: FAIL: $*" >&2; exit 1; }
echo "check-package: dpkg -i $(basename "$deb")" >&2
dpkg -i "$deb" >/dev/null
out=$(zoomprobe version) || fail "zoomprobe version: exit $?"
grep -q "version $version" <<<"$out" || fail "zoomprobe version says: $out (want $version)"
getent passwd zoomprobe >/dev/null || fail "no system user zoomprobe after install"
zoomprobe --config.file /etc/zoomprobe/zoomprobe.yml check-config 2>/dev/null ||
  fail "the installed /etc/zoomprobe/zoomprobe.yml does not pass check-config"
unit=/usr/lib/systemd/system/zoomprobe.service
[ -f "$unit" ] || fail "no $unit"
if command -v systemd-analyze >/dev/null 2>&1; then
  v=$(systemd-analyze verify "$unit" 2>&1) || fail "systemd-analyze verify: $v"
  [ -z "$v" ] || fail "systemd-analyze verify: $v"
fi
echo "check-package: dpkg --purge zoomprobe" >&2
dpkg --purge zoomprobe >/dev/null
for p in /usr/bin/zoomprobe "$unit" /etc/zoomprobe /var/log/zoomprobe; do
  [ ! -e "$p" ] || fail "$p left after purge"
done
! getent passwd zoomprobe >/dev/null || fail "user zoomprobe left after purge"
! getent group zoomprobe >/dev/null || fail "group zoomprobe left after purge"
echo "check-package: OK (zoomprobe $version installed, checked and purged)" >&2
