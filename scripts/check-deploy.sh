#!/usr/bin/env bash
# Validates the shipped deploy files with the real tools: promtool for the
# alert rules (and their unit tests) and scrape config, amtool for the
# Alertmanager routing.
set -euo pipefail
cd "$(dirname "$0")/.."
amtool=amtool
command -v amtool >/dev/null 2>&1 || amtool=prometheus-alertmanager-amtool
promtool check rules deploy/prometheus/zoomprobe-rules.yml
promtool test rules deploy/prometheus/zoomprobe-rules.test.yml
promtool check config --syntax-only deploy/prometheus/prometheus.yml
$amtool check-config deploy/alertmanager/alertmanager.yml
$amtool config routes test --config.file=deploy/alertmanager/alertmanager.yml --verify.receivers=network-oncall severity=critical
$amtool config routes test --config.file=deploy/alertmanager/alertmanager.yml --verify.receivers=network-team severity=warning
promtool check rules deploy/fleet/fleet-rules.yml
promtool test rules deploy/fleet/fleet-rules.test.yml
promtool check config deploy/fleet/prometheus-central.yml
promtool check config --syntax-only deploy/fleet/prometheus-agent.yml
