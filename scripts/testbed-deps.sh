#!/usr/bin/env bash
# Installs the Debian packages the live test bed (internal/testbed/) needs:
# ip and tc (iproute2), iptables, nft (nftables) and ethtool.
# Idempotent: runs apt-get only when one of the tools is missing.
set -euo pipefail

need=()
have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/sbin/$1" ]; }
have ip       || need+=(iproute2)
have tc       || need+=(iproute2)
have iptables || need+=(iptables)
have nft      || need+=(nftables)
have ethtool  || need+=(ethtool)

if [ "${#need[@]}" -eq 0 ]; then
  exit 0
fi
# iproute2 may be listed twice (ip and tc); apt-get does not mind, but keep the message tidy.
mapfile -t need < <(printf '%s\n' "${need[@]}" | sort -u)
if [ "$(id -u)" -ne 0 ]; then
  echo "testbed-deps: missing ${need[*]}; run as root to install them (the live test bed skips without them)" >&2
  exit 1
fi
echo "testbed-deps: installing ${need[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
if ! apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null 2>&1; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
