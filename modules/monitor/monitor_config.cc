#include "monitor_config.h"

#include "telekern/strings.h"

namespace telekern::monitor {

ConfigMap<MonitorOptions> monitor_config() {
  using O = MonitorOptions;
  ConfigMap<O> map;
  map.key("agent.enabled", &O::agent_enabled, "false",
          "Sample this host (CPU, memory, disk, network, load) and publish to `topic`")
      .key("agent.interval", &O::agent_interval, "5s",
           "Time between samples (the seed's METRIC_INTERVAL)", positive_duration())
      .key("agent.node_id", &O::node_id, "", "Node id in every sample; empty = host name")
      .key("agent.node_name", &O::node_name, "", "Human-readable node name; empty = node_id")
      .key("agent.buffer", &O::agent_buffer, "720",
           "Samples kept while publishing fails (oldest dropped first)", at_least<uint32_t>(1))
      .key("agent.proc_root", &O::proc_root, "/proc", "Where procfs is mounted")
      .key("agent.sys_root", &O::sys_root, "/sys", "Where sysfs is mounted")
      .key("backend.enabled", &O::backend_enabled, "true",
           "Consume `topic`, store samples, evaluate thresholds and serve the Monitor API")
      .key("topic", &O::topic, "metrics", "Topic agents publish to and the backend consumes")
      .key("backend.group", &O::group, "monitor", "Consumer group of the backend")
      .key("backend.sqlite_path", &O::sqlite_path, "monitor.db",
           "SQLite file (relative to the module's data dir) when no postgres_url is set")
      .secret("backend.postgres_url", &O::postgres_url,
              "PostgreSQL connection string (libpq, e.g. postgresql://user:pw@host/db); set = "
              "PostgreSQL instead of SQLite")
      .key("backend.retention", &O::retention, "7d", "How long samples are kept (0 = forever)")
      .key("backend.stale_intervals", &O::stale_intervals, "3",
           "Missed intervals before a node is stale", at_least<uint32_t>(1))
      .key("backend.down_after", &O::down_after, "60s", "Silence after which a node is down",
           positive_duration())
      .key("backend.evaluation_interval", &O::evaluation_interval, "250ms",
           "How often liveness and pending `for` breaches are checked", positive_duration())
      .key("backend.node_status_alerts", &O::node_status_alerts, "true",
           "Alert when a node turns stale (warning) or down (critical)")
      .key("backend.max_batch", &O::max_batch, "1000", "Records consumed and stored per batch",
           between<uint32_t>(1, 100000))
      .key("backend.worker_threads", &O::worker_threads, "2", "Threads serving API calls",
           at_least<uint32_t>(1))
      .nest("stream.", &O::stream, stream::stream_config_map())
      .rule({"backend.down_after", "backend.stale_intervals", "agent.interval"},
            [](const O& options) -> absl::Status {
              auto stale = options.agent_interval * options.stale_intervals;
              if (options.down_after > stale) return absl::OkStatus();
              return absl::InvalidArgumentError(str_cat("down_after=", options.down_after.count(),
                                                        "ms must exceed stale_intervals x "
                                                        "agent.interval = ",
                                                        stale.count(), "ms; raise down_after"));
            });
  return map;
}

}  // namespace telekern::monitor
