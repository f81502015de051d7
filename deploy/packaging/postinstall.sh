#!/bin/sh
# The system user the unit runs as (User=zoomprobe). Nothing is started:
# the active checks contact Zoom, NTP and DNS servers, so the admin decides
# (systemctl enable --now zoomprobe; `probes.enabled: false` in
# /etc/zoomprobe/zoomprobe.yml keeps it passive).
set -e
if ! getent passwd zoomprobe >/dev/null; then
  useradd --system --user-group --no-create-home --home-dir /nonexistent \
    --shell /usr/sbin/nologin --comment "zoomprobe daemon" zoomprobe
fi
if [ -d /run/systemd/system ]; then
  systemctl daemon-reload >/dev/null 2>&1 || true
fi
echo "zoomprobe: installed, not started. Review /etc/zoomprobe/zoomprobe.yml (capture.interfaces, probes.enabled), then: systemctl enable --now zoomprobe"
