// Where the monitor keeps samples, nodes, thresholds, alerts with their
// history, and users. Two implementations share this interface and its
// tests: SQLite (the embedded default, sqlite_store.cc) and PostgreSQL
// (postgres_store.cc, when a connection string is configured). Schemas are
// created and migrated by migrate(). Calls come from one thread at a time
// (the engine serialises them).
#pragma once

#include <absl/status/status.h>
#include <absl/status/statusor.h>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "telekern/monitor/v1/monitor.pb.h"

namespace telekern::monitor {

using StoreTime = std::chrono::system_clock::time_point;

struct AlertQuery {
  std::vector<v1::AlertState> states;  // empty = any
  std::optional<bool> acknowledged;
  v1::Severity severity = v1::SEVERITY_UNSPECIFIED;
  std::string node_id;
  uint32_t limit = 500;
};

struct StoredUser {
  std::string name;
  std::string password_hash;
  int role = 1;
  int64_t created_ms = 0;
};

class MonitorStore {
 public:
  virtual ~MonitorStore() = default;
  virtual std::string kind() const = 0;  // "sqlite" or "postgresql"
  // Creates or upgrades the schema.
  virtual absl::Status migrate() = 0;

  // Stores samples; a sample already stored (same node and time) is skipped.
  virtual absl::Status insert_samples(const std::vector<v1::MetricSample>& samples) = 0;
  // Samples of a node (empty = every node) in [from, to), by time; `visit`
  // returning false stops the scan. Rows are read as they are visited.
  virtual absl::Status scan_samples(const std::string& node_id, StoreTime from, StoreTime to,
                                    const std::function<bool(const v1::MetricSample&)>& visit) = 0;
  // Deletes samples older than `cutoff`; returns how many.
  virtual absl::StatusOr<uint64_t> delete_samples_before(StoreTime cutoff) = 0;

  // Replaces the stored nodes with these (one transaction).
  virtual absl::Status save_nodes(const std::vector<v1::Node>& nodes) = 0;
  virtual absl::StatusOr<std::vector<v1::Node>> load_nodes() = 0;

  // Inserts (id 0: the id is assigned and returned) or replaces by id.
  virtual absl::StatusOr<uint64_t> save_threshold(const v1::Threshold& threshold) = 0;
  virtual absl::Status delete_threshold(uint64_t id) = 0;
  virtual absl::StatusOr<std::vector<v1::Threshold>> load_thresholds() = 0;

  // Inserts or replaces the alert with its id, and appends its event.
  virtual absl::Status save_alert(const v1::Alert& alert, const v1::AlertEvent& event) = 0;
  virtual absl::StatusOr<std::vector<v1::Alert>> list_alerts(const AlertQuery& query) = 0;
  virtual absl::StatusOr<uint64_t> max_alert_id() = 0;
  virtual absl::StatusOr<std::vector<v1::AlertEvent>> alert_events(uint64_t alert_id,
                                                                   const std::string& node_id,
                                                                   StoreTime from,
                                                                   uint32_t limit) = 0;

  virtual absl::Status save_user(const StoredUser& user) = 0;
  virtual absl::Status delete_user(const std::string& name) = 0;
  virtual absl::StatusOr<std::vector<StoredUser>> list_users() = 0;
};

absl::StatusOr<std::unique_ptr<MonitorStore>> open_sqlite_store(const std::string& path);
absl::StatusOr<std::unique_ptr<MonitorStore>> open_postgres_store(const std::string& conninfo);

// The sample's columns apart from the metrics: cores and devices, serialized.
std::string sample_detail(const v1::MetricSample& sample);

// A sample is keyed by node and its exact time, stored as the whole
// milliseconds queries range over plus the nanoseconds within that
// millisecond: two samples of one node within a millisecond are two rows, and
// only a redelivery (the same time to the nanosecond) is skipped.
struct SampleTimeKey {
  int64_t ms = 0;
  int64_t sub_ms_ns = 0;  // 0..999'999
};
inline SampleTimeKey sample_time_key(const google::protobuf::Timestamp& time) {
  int64_t ns = time.seconds() * 1'000'000'000 + time.nanos();
  int64_t ms = ns / 1'000'000;
  if (ns % 1'000'000 < 0) --ms;  // floor for times before 1970
  return {ms, ns - ms * 1'000'000};
}
inline google::protobuf::Timestamp sample_time(int64_t ms, int64_t sub_ms_ns) {
  int64_t ns = ms * 1'000'000 + sub_ms_ns;
  google::protobuf::Timestamp time;
  int64_t seconds = ns / 1'000'000'000;
  int64_t nanos = ns % 1'000'000'000;
  if (nanos < 0) {
    nanos += 1'000'000'000;
    --seconds;
  }
  time.set_seconds(seconds);
  time.set_nanos(static_cast<int32_t>(nanos));
  return time;
}

}  // namespace telekern::monitor
