#!/bin/sh
# Writes /prometheus/prometheus.yml from TARGETS and SCRAPE_INTERVAL, then runs Prometheus.
set -eu
config=/prometheus/prometheus.yml
{
  echo "global: {scrape_interval: ${SCRAPE_INTERVAL}, evaluation_interval: ${SCRAPE_INTERVAL}}"
  echo "rule_files: [/etc/prometheus/rules/*.yml]"
  echo "scrape_configs:"
  echo "  - job_name: telekern"
  echo "    static_configs:"
  echo "      - targets: [$(echo "$TARGETS" | sed 's/,/, /g')]"
} > "$config"
promtool check config "$config" >/dev/null
exec /usr/bin/prometheus --config.file="$config" --storage.tsdb.path=/prometheus \
  --web.listen-address="$LISTEN" --web.enable-lifecycle "$@"
