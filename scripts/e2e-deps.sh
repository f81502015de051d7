#!/usr/bin/env bash
# Installs what the deploy checks and the end-to-end tests run, idempotently:
#   prometheus               prometheus + promtool (Debian 12: 2.42)
#   prometheus-alertmanager  prometheus-alertmanager + amtool (0.25)
#   systemd                  systemd-analyze, for `systemd-analyze verify` of the unit
# The tests run their own Prometheus and Alertmanager on random loopback ports,
# so the packaged services (ports 9090/9093) do not get in their way.
set -euo pipefail

packages=(prometheus prometheus-alertmanager systemd)
need=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || need+=("$p")
done
if ((${#need[@]} == 0)); then
  echo "e2e-deps: all installed (${packages[*]})"
else
  sudo=()
  [[ $(id -u) -eq 0 ]] || sudo=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  echo "e2e-deps: installed ${need[*]}"
fi
for bin in promtool prometheus amtool prometheus-alertmanager systemd-analyze; do
  command -v "$bin" >/dev/null || { echo "e2e-deps: $bin missing after install" >&2; exit 1; }
done
