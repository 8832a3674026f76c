// The monitor module's options, bound from `modules.monitor.*` (monitor_module.cc).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "telekern/stream.h"

namespace telekern::monitor {

struct MonitorOptions {
  // Agent: samples this host and publishes to `topic`.
  bool agent_enabled = false;
  std::chrono::milliseconds agent_interval{5000};
  std::string node_id;    // empty = host name
  std::string node_name;  // empty = host name
  uint32_t agent_buffer = 720;  // samples kept while publishing fails
  std::string proc_root = "/proc";
  std::string sys_root = "/sys";
  // Backend: consumes `topic`, stores, evaluates thresholds.
  bool backend_enabled = true;
  std::string topic = "metrics";
  std::string group = "monitor";
  std::string sqlite_path = "monitor.db";  // relative to the module's data dir
  std::string postgres_url;                // set = PostgreSQL instead of SQLite
  std::chrono::milliseconds retention{7LL * 24 * 3600 * 1000};  // 0 = keep forever
  uint32_t stale_intervals = 3;
  std::chrono::milliseconds down_after{60000};
  std::chrono::milliseconds evaluation_interval{250};
  bool node_status_alerts = true;
  uint32_t max_batch = 1000;
  uint32_t worker_threads = 2;
  stream::StreamConfig stream;
};

}  // namespace telekern::monitor
