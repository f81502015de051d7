#!/bin/sh
# deb purge / rpm erase: remove the system user and what the unit wrote, so
# the machine is as before the install. Upgrades keep everything.
set -e
case "$1" in
  purge|0)
    rm -rf /var/log/zoomprobe /var/lib/zoomprobe
    if getent passwd zoomprobe >/dev/null; then
      userdel zoomprobe >/dev/null 2>&1 || true
    fi
    if getent group zoomprobe >/dev/null; then
      groupdel zoomprobe >/dev/null 2>&1 || true
    fi ;;
esac
if [ -d /run/systemd/system ]; then
  systemctl daemon-reload >/dev/null 2>&1 || true
fi
