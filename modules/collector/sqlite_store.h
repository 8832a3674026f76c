// SQLite as the embedded default telemetry store (no server to run): one
// table keyed by series (the tag set) and time, so a rewritten point
// replaces itself as in InfluxDB; indexes for the query API's lookups.
#pragma once

#include <memory>
#include <mutex>
#include <string>

#include "telekern/sqlite.h"
#include "telemetry_store.h"

namespace telekern::collector {

class SqliteStore final : public TelemetryStore {
 public:
  // Opens (creating) the database file in WAL mode with the schema.
  static absl::StatusOr<std::unique_ptr<SqliteStore>> open(const std::string& path);

  std::string describe() const override { return "sqlite " + database_->path(); }
  absl::Status prepare() override { return absl::OkStatus(); }
  absl::Status write(const std::vector<TelemetryPoint>& points, std::stop_token stop) override;
  absl::StatusOr<std::vector<GpuInfo>> list_gpus(const std::string& host) override;
  absl::StatusOr<TelemetryPage> query(const TelemetryQuery& query) override;
  absl::StatusOr<std::vector<std::string>> list_namespaces() override;
  int breaker_state() const override { return 0; }
  uint64_t retries() const override { return retries_; }

 private:
  explicit SqliteStore(std::unique_ptr<sqlite::Database> database)
      : database_(std::move(database)) {}
  std::unique_ptr<sqlite::Database> database_;
  std::mutex mutex_;
  uint64_t retries_ = 0;
};

}  // namespace telekern::collector
