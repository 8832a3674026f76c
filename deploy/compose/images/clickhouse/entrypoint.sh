#!/bin/sh
# ClickHouse on CLICKHOUSE_HOST with the ports from the env (host network).
set -eu
conf=/var/lib/clickhouse/config.d-telekern.xml
cat > "$conf" <<XML
<yandex>
  <listen_host>${CLICKHOUSE_HOST}</listen_host>
  <http_port>${CLICKHOUSE_HTTP_PORT}</http_port>
  <tcp_port>${CLICKHOUSE_TCP_PORT}</tcp_port>
  <interserver_http_port remove="1"/>
  <path>/var/lib/clickhouse/</path>
  <tmp_path>/var/lib/clickhouse/tmp/</tmp_path>
  <logger><console>1</console><level>warning</level></logger>
</yandex>
XML
mkdir -p /var/lib/clickhouse/config
cp /etc/clickhouse-server/config.xml /var/lib/clickhouse/config/config.xml
mkdir -p /var/lib/clickhouse/config/config.d
cp "$conf" /var/lib/clickhouse/config/config.d/telekern.xml
ln -sf /etc/clickhouse-server/users.xml /var/lib/clickhouse/config/users.xml
exec /usr/bin/clickhouse-server --config-file=/var/lib/clickhouse/config/config.xml
