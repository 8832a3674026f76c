#!/usr/bin/env python3
"""Writes the Grafana dashboards (dashboards/*.json) for telekern: one per
area, every panel a PromQL query against the Prometheus data source "prometheus".
Edit the panels here and run `python3 deploy/grafana/generate.py`; the deploy
test checks the committed JSON equals this output and that every metric the
queries name exists in a running telekernd's /metrics."""
import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}


def panel(title, exprs, unit="short", kind="timeseries", legend="{{instance}}", width=12):
    if isinstance(exprs, str):
        exprs = [(exprs, legend)]
    return {
        "type": kind,
        "title": title,
        "datasource": DATASOURCE,
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {"legend": {"displayMode": "list", "placement": "bottom"}} if kind == "timeseries" else {},
        "targets": [
            {"refId": chr(ord("A") + i), "datasource": DATASOURCE, "expr": expr, "legendFormat": fmt}
            for i, (expr, fmt) in enumerate(exprs)
        ],
        "gridPos": {"w": width, "h": 8},
    }


def dashboard(uid, title, description, panels):
    x = y = 0
    for index, item in enumerate(panels):
        item["id"] = index + 1
        w = item["gridPos"]["w"]
        if x + w > 24:
            x, y = 0, y + 8
        item["gridPos"].update({"x": x, "y": y})
        x += w
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["telekern"],
        "timezone": "browser",
        "schemaVersion": 39,
        "version": 1,
        "editable": True,
        "refresh": "10s",
        "time": {"from": "now-1h", "to": "now"},
        "templating": {"list": [
            {"name": "datasource", "type": "datasource", "query": "prometheus", "label": "Data source",
             "current": {"text": "prometheus", "value": "prometheus"}},
            {"name": "instance", "type": "query", "datasource": DATASOURCE, "label": "Instance",
             "query": {"query": "label_values(telekern_build_info, instance)", "refId": "instance"},
             "definition": "label_values(telekern_build_info, instance)",
             "includeAll": True, "multi": True, "refresh": 2, "current": {"text": "All", "value": "$__all"}},
        ]},
        "annotations": {"list": []},
        "panels": panels,
    }


I = 'instance=~"$instance"'

DASHBOARDS = {
    "kernel": dashboard("telekern-kernel", "telekern / kernel",
        "telekernd: modules, RPCs, HTTP, process", [
        panel("Modules up", f"telekern_module_up{{{I}}}", legend="{{instance}} {{module}}"),
        panel("RPC rate by service", f"sum by (service) (rate(telekern_rpc_requests_total{{{I}}}[$__rate_interval]))",
              unit="reqps", legend="{{service}}"),
        panel("RPC errors by code", f'sum by (service, code) (rate(telekern_rpc_requests_total{{{I}, code!="OK"}}[$__rate_interval]))',
              unit="reqps", legend="{{service}} {{code}}"),
        panel("RPC latency p99", f"histogram_quantile(0.99, sum by (service, le) (rate(telekern_rpc_duration_seconds_bucket{{{I}}}[$__rate_interval])))",
              unit="s", legend="{{service}}"),
        panel("RPCs in flight", f"telekern_rpc_in_flight{{{I}}}"),
        panel("HTTP requests", f"sum by (path, code) (rate(telekern_http_requests_total{{{I}}}[$__rate_interval]))",
              unit="reqps", legend="{{path}} {{code}}"),
        panel("Resident memory", f"process_resident_memory_bytes{{{I}}}", unit="bytes"),
        panel("CPU", f"rate(process_cpu_seconds_total{{{I}}}[$__rate_interval])", unit="percentunit"),
        panel("Open files / limit", [(f"process_open_fds{{{I}}}", "{{instance}} open"),
                                     (f"process_max_fds{{{I}}}", "{{instance}} limit")]),
        panel("Threads", f"process_threads{{{I}}}"),
    ]),
    "broker": dashboard("telekern-broker", "telekern / broker",
        "Embedded broker: throughput, lag, latency, disk", [
        panel("Produced records/s", f"sum by (topic) (rate(telekern_broker_messages_produced_total{{{I}}}[$__rate_interval]))",
              unit="ops", legend="{{topic}}"),
        panel("Consumed records/s", f"sum by (topic) (rate(telekern_broker_messages_consumed_total{{{I}}}[$__rate_interval]))",
              unit="ops", legend="{{topic}}"),
        panel("Consumer group lag", f"max by (topic, group) (telekern_broker_group_lag{{{I}}})", legend="{{topic}} {{group}}"),
        panel("In-flight (unacked)", f"sum by (topic, group) (telekern_broker_group_in_flight{{{I}}})", legend="{{topic}} {{group}}"),
        panel("Produce latency p99", f"histogram_quantile(0.99, sum by (topic, le) (rate(telekern_broker_produce_duration_seconds_bucket{{{I}}}[$__rate_interval])))",
              unit="s", legend="{{topic}}"),
        panel("fsync p99", f"histogram_quantile(0.99, sum by (le) (rate(telekern_broker_fsync_duration_seconds_bucket{{{I}}}[$__rate_interval])))",
              unit="s"),
        panel("Produce errors", f"sum by (reason) (rate(telekern_broker_produce_errors_total{{{I}}}[$__rate_interval]))",
              unit="ops", legend="{{reason}}"),
        panel("Dead letters/s", f"sum by (topic) (rate(telekern_broker_messages_dlq_total{{{I}}}[$__rate_interval]))",
              unit="ops", legend="{{topic}}"),
        panel("Disk usage by topic", f"sum by (topic) (telekern_broker_disk_usage_bytes{{{I}}})", unit="bytes", legend="{{topic}}"),
        panel("Free disk / reserve", [(f"telekern_broker_free_disk_bytes{{{I}}}", "{{instance}} free"),
                                      (f"telekern_broker_free_disk_reserve_bytes{{{I}}}", "{{instance}} reserve")],
              unit="bytes"),
        panel("Open files / cap", [(f"telekern_broker_open_files{{{I}}}", "{{instance}} open"),
                                   (f"telekern_broker_open_files_cap{{{I}}}", "{{instance}} cap")]),
        panel("Degraded partitions", f"sum(telekern_broker_partition_degraded{{{I}}})", kind="stat", width=6),
        panel("Storage faults (1h)", f"sum(increase(telekern_broker_storage_faults_total{{{I}}}[1h]))", kind="stat", width=6),
    ]),
    "proxy": dashboard("telekern-proxy", "telekern / proxy",
        "Consistent-hashing proxy: upstream health, routing, failovers", [
        panel("Upstream health", f"broker_health_status{{{I}}}", legend="{{upstream}}"),
        panel("Key-space share", f"telekern_proxy_upstream_share{{{I}}}", unit="percentunit", legend="{{upstream}}"),
        panel("Routed calls/s", f"sum by (upstream, code) (rate(telekern_proxy_routed_calls_total{{{I}}}[$__rate_interval]))",
              unit="reqps", legend="{{upstream}} {{code}}"),
        panel("Forwarded latency p99", f"histogram_quantile(0.99, sum by (method, le) (rate(telekern_proxy_call_seconds_bucket{{{I}}}[$__rate_interval])))",
              unit="s", legend="{{method}}"),
        panel("In flight per upstream", f"telekern_proxy_upstream_in_flight{{{I}}}", legend="{{upstream}}"),
        panel("Failovers / rebalances", [(f"increase(telekern_proxy_failovers_total{{{I}}}[$__rate_interval])", "{{instance}} failovers"),
                                         (f"increase(telekern_proxy_rebalances_total{{{I}}}[$__rate_interval])", "{{instance}} rebalances")]),
    ]),
    "collector": dashboard("telekern-collector", "telekern / collector",
        "CSV in -> broker -> time-series store", [
        panel("Rows ingested/s", f"rate(telekern_collector_rows_ingested_total{{{I}}}[$__rate_interval])", unit="ops"),
        panel("Points written/s", f"rate(telekern_collector_points_written_total{{{I}}}[$__rate_interval])", unit="ops"),
        panel("Rows rejected by reason", f"sum by (reason) (rate(telekern_collector_rows_rejected_total{{{I}}}[$__rate_interval]))",
              unit="ops", legend="{{reason}}"),
        panel("Backlog (rows waiting)", f"telekern_collector_rows_waiting{{{I}}}"),
        panel("Write latency p99", f"histogram_quantile(0.99, sum by (le) (rate(telekern_collector_write_duration_seconds_bucket{{{I}}}[$__rate_interval])))",
              unit="s"),
        panel("Write errors / retries", [(f"increase(telekern_collector_write_errors_total{{{I}}}[$__rate_interval])", "{{instance}} errors"),
                                         (f"increase(telekern_collector_write_retries_total{{{I}}}[$__rate_interval])", "{{instance}} retries")]),
        panel("Store up", f"telekern_collector_store_up{{{I}}}", kind="stat", width=6),
        panel("Breaker (0 closed, 1 open, 2 half-open)", f"telekern_collector_breaker_state{{{I}}}", kind="stat", width=6),
    ]),
    "etl": dashboard("telekern-etl", "telekern / etl",
        "Consumer -> processors -> ClickHouse/Redis writers", [
        panel("Messages/s by processor", f"sum by (pipeline, processor) (rate(telekern_etl_messages_total{{{I}}}[$__rate_interval]))",
              unit="ops", legend="{{pipeline}} {{processor}}"),
        panel("Rows written/s by table", f"sum by (pipeline, table) (rate(telekern_etl_rows_written_total{{{I}}}[$__rate_interval]))",
              unit="ops", legend="{{pipeline}} {{table}}"),
        panel("Errors by reason", f"sum by (pipeline, reason) (rate(telekern_etl_errors_total{{{I}}}[$__rate_interval]))",
              unit="ops", legend="{{pipeline}} {{reason}}"),
        panel("Pending messages", f"telekern_etl_pending_messages{{{I}}}", legend="{{pipeline}}"),
        panel("Batches/s", f"sum by (pipeline) (rate(telekern_etl_batches_total{{{I}}}[$__rate_interval]))",
              unit="ops", legend="{{pipeline}}"),
        panel("Writer latency p99", f"histogram_quantile(0.99, sum by (le) (rate(telekern_etl_writer_latency_seconds_bucket{{{I}}}[$__rate_interval])))",
              unit="s"),
    ]),
    "monitor": dashboard("telekern-monitor", "telekern / monitor",
        "Host agents, thresholds and alerts", [
        panel("Nodes up", f"telekern_node_up{{{I}}}", legend="{{node_name}}"),
        panel("CPU %", f"telekern_node_cpu_percent{{{I}}}", unit="percent", legend="{{node_name}}"),
        panel("Memory %", f"telekern_node_memory_percent{{{I}}}", unit="percent", legend="{{node_name}}"),
        panel("Load (1 min)", f"telekern_node_load1{{{I}}}", legend="{{node_name}}"),
        panel("Open alerts by severity", f"sum by (severity) (telekern_monitor_alerts_open{{{I}}})", legend="{{severity}}"),
        panel("Samples/s by outcome", f"sum by (outcome) (rate(telekern_monitor_samples_total{{{I}}}[$__rate_interval]))",
              unit="ops", legend="{{outcome}}"),
        panel("Alert transitions", f"sum(increase(telekern_monitor_alert_transitions_total{{{I}}}[$__rate_interval]))"),
    ]),
}


def render():
    return {f"telekern-{name}.json": json.dumps(board, indent=2, sort_keys=True) + "\n"
            for name, board in DASHBOARDS.items()}


if __name__ == "__main__":
    for file, text in render().items():
        with open(os.path.join(HERE, "dashboards", file), "w") as out:
            out.write(text)
        print(f"wrote deploy/grafana/dashboards/{file}")
