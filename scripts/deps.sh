#!/usr/bin/env bash
# Installs what zoomprobe's build and tests need on a fresh Debian machine:
# Go modules, and the Debian packages the live test bed, the end-to-end tests
# and the screenshots (audit report, daemon findings page: chromium) use.
# Idempotent: installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
have() { command -v "$1" >/dev/null 2>&1; }
have ip         || need+=(iproute2)
have iptables   || need+=(iptables)
have nft        || need+=(nftables)
have ethtool    || need+=(ethtool)
have tcpdump    || need+=(tcpdump)
have tshark     || need+=(tshark)
have promtool   || need+=(prometheus)
have prometheus-alertmanager || have alertmanager || need+=(prometheus-alertmanager)
have chromium   || need+=(chromium)
have openssl    || need+=(openssl)
have bc         || need+=(bc)
[ -s /etc/ssl/certs/ca-certificates.crt ] || need+=(ca-certificates)
have systemd-analyze || need+=(systemd)
if [ "${#need[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "deps: missing ${need[*]}; run as root (or install them) to test everything" >&2
  else
    echo "deps: installing ${need[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections 2>/dev/null || true
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  fi
fi
# Debian may start Prometheus, Alertmanager and node-exporter on install
# (ports 9090, 9093/9094, 9100). They are left alone: the tests run their own
# instances on free loopback ports and stop only the processes they started.
. scripts/toolchain.sh
zp_go_toolchain
zp_log "downloading Go modules"
go mod download
