// The collector module's settings, bound from its config section.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "telekern/stream.h"

namespace telekern::collector {

enum class StoreKind { kSqlite, kInfluxDb };

struct CollectorOptions {
  stream::StreamConfig stream;
  std::string topic = "telemetry";
  std::string group = "collector";
  std::string instance;  // member name prefix; default: hostname-pid
  uint32_t consumers = 4;
  uint32_t batch_size = 5000;
  std::chrono::milliseconds batch_age{1000};
  std::chrono::milliseconds batch_linger{20};

  StoreKind store = StoreKind::kSqlite;
  std::string sqlite_path;  // default <data_dir>/telemetry.db
  std::string influxdb_url = "http://127.0.0.1:8086";
  std::string influxdb_token;
  std::string influxdb_org;
  std::string influxdb_bucket = "telemetry";
  std::string influxdb_measurement = "gpu_telemetry";
  std::string influxdb_precision = "ms";
  bool influxdb_create_database = true;
  std::chrono::milliseconds influxdb_timeout{10000};

  std::chrono::milliseconds retry_initial{100};
  std::chrono::milliseconds retry_max{5000};
  uint32_t breaker_failures = 5;
  std::chrono::milliseconds breaker_open_for{5000};

  uint32_t publish_attempts = 3;
  std::chrono::milliseconds publish_backoff{100};

  std::string reject_file;  // default <data_dir>/rejects.csv
  std::string watch_dir;
  std::chrono::milliseconds watch_interval{2000};
  bool watch_replay = false;
  double replay_rate = 1000;
  bool replay_loop = false;

  uint32_t worker_threads = 4;
  uint32_t max_pending_requests = 256;
};

}  // namespace telekern::collector
