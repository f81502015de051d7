#!/bin/sh
# Stop the daemon before its binary goes (deb: remove; rpm: erase, $1 = 0).
set -e
case "$1" in
  remove|purge|0)
    if [ -d /run/systemd/system ]; then
      systemctl disable --now zoomprobe.service >/dev/null 2>&1 || true
    fi ;;
esac
