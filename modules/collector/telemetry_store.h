// Where collectors write points and the query API reads them. One
// implementation per store (influx_store.cc); every one answers the same
// queries with the same results.
#pragma once

#include <absl/status/status.h>
#include <absl/status/statusor.h>

#include <chrono>
#include <optional>
#include <stop_token>
#include <string>
#include <vector>

#include "telemetry_point.h"

namespace telekern::collector {

struct GpuInfo {
  std::string id;  // TelemetryPoint::gpu_identity()
  std::string gpu_id;
  std::string device;
  std::string uuid;
  std::string model_name;
  std::string hostname;
  TimePoint last_seen{};
};

struct HostInfo {
  std::string hostname;
  uint32_t gpus = 0;
  TimePoint last_seen{};
};

enum class Aggregate { kMean, kMax };

struct TelemetryQuery {
  std::string gpu;  // uuid or device
  TimePoint start{};
  TimePoint end{};
  std::vector<std::string> metrics;  // empty = all
  size_t limit = 1000;
  size_t offset = 0;
  std::optional<std::chrono::milliseconds> window;  // downsample when set
  Aggregate aggregate = Aggregate::kMean;
};

struct TelemetryPage {
  std::vector<TelemetryPoint> points;
  bool more = false;  // a next page exists
};

class TelemetryStore {
 public:
  virtual ~TelemetryStore() = default;
  // "influxdb http://127.0.0.1:8086 db=telemetry" (for status and logs).
  virtual std::string describe() const = 0;
  // Prepares the store (creates the database); UNAVAILABLE when unreachable.
  virtual absl::Status prepare() = 0;
  // Writes all points or none: retried with backoff behind the store's
  // breaker until it succeeds, fails for good (bad data), or `stop`.
  virtual absl::Status write(const std::vector<TelemetryPoint>& points, std::stop_token stop) = 0;
  virtual absl::StatusOr<std::vector<GpuInfo>> list_gpus(const std::string& host) = 0;
  virtual absl::StatusOr<TelemetryPage> query(const TelemetryQuery& query) = 0;
  virtual absl::StatusOr<std::vector<std::string>> list_namespaces() = 0;
  // 0 closed, 1 open, 2 half-open.
  virtual int breaker_state() const = 0;
  virtual uint64_t retries() const = 0;
};

}  // namespace telekern::collector
