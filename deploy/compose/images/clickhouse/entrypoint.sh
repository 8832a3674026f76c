#!/bin/sh
# ClickHouse (Debian's 18.16) on CLICKHOUSE_HOST with the ports from the env
# (host network); a complete config, data under /var/lib/clickhouse.
set -eu
root=/var/lib/clickhouse
mkdir -p "$root/data" "$root/tmp" "$root/user_files" "$root/format_schemas" "$root/conf"
cat > "$root/conf/config.xml" <<XML
<?xml version="1.0"?>
<yandex>
  <logger><level>warning</level><console>1</console></logger>
  <http_port>${CLICKHOUSE_HTTP_PORT}</http_port>
  <tcp_port>${CLICKHOUSE_TCP_PORT}</tcp_port>
  <interserver_http_port>${CLICKHOUSE_INTERSERVER_PORT:-0}</interserver_http_port>
  <listen_host>${CLICKHOUSE_HOST}</listen_host>
  <interserver_http_host>${CLICKHOUSE_HOST}</interserver_http_host>
  <max_connections>256</max_connections>
  <keep_alive_timeout>3</keep_alive_timeout>
  <max_concurrent_queries>64</max_concurrent_queries>
  <uncompressed_cache_size>1073741824</uncompressed_cache_size>
  <mark_cache_size>268435456</mark_cache_size>
  <path>$root/data/</path>
  <tmp_path>$root/tmp/</tmp_path>
  <user_files_path>$root/user_files/</user_files_path>
  <format_schema_path>$root/format_schemas/</format_schema_path>
  <users_config>$root/conf/users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <mlock_executable>false</mlock_executable>
</yandex>
XML
cat > "$root/conf/users.xml" <<XML
<?xml version="1.0"?>
<yandex>
  <profiles><default><max_memory_usage>2000000000</max_memory_usage></default></profiles>
  <users><default><password></password><networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
    <profile>default</profile><quota>default</quota></default></users>
  <quotas><default></default></quotas>
</yandex>
XML
exec /usr/sbin/clickhouse-server --config-file "$root/conf/config.xml"
