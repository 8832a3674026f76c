// InfluxDB 1.x as the telemetry store: line protocol POSTed to /write over
// keep-alive connections, InfluxQL on /query. One measurement with a `metric`
// tag (see README: one GPU's metrics come back from one query).
#pragma once

#include <memory>
#include <string>

#include "telekern/http_writer.h"
#include "telemetry_store.h"

namespace telekern::collector {

struct InfluxOptions {
  std::string url = "http://127.0.0.1:8086";
  std::string token;                 // "user:password" (InfluxDB 1.x credentials) or empty
  std::string org;                   // accepted for 2.x-style configs; 1.x ignores it
  std::string bucket = "telemetry";  // "database" or "database/retention_policy"
  std::string measurement = "gpu_telemetry";
  std::string precision = "ms";  // ns | u | ms | s
  bool create_database = true;
  HttpWriterOptions http;  // base_url and credentials are filled from the above
};

class InfluxStore final : public TelemetryStore {
 public:
  static absl::StatusOr<std::unique_ptr<InfluxStore>> create(InfluxOptions options);

  std::string describe() const override;
  absl::Status prepare() override;
  absl::Status write(const std::vector<TelemetryPoint>& points, std::stop_token stop) override;
  absl::StatusOr<std::vector<GpuInfo>> list_gpus(const std::string& host) override;
  absl::StatusOr<TelemetryPage> query(const TelemetryQuery& query) override;
  absl::StatusOr<std::vector<std::string>> list_namespaces() override;
  int breaker_state() const override;
  uint64_t retries() const override { return http_->retries(); }

  // The line protocol of `points` (exposed for tests and the benchmark's peer).
  std::string line_protocol(const std::vector<TelemetryPoint>& points) const;
  std::string write_path() const;

 private:
  InfluxStore(InfluxOptions options, std::unique_ptr<HttpWriter> http);
  // Runs InfluxQL; the "series" arrays of the first statement's result.
  absl::StatusOr<std::string> run_query(const std::string& influxql, bool post = false);

  InfluxOptions options_;
  std::string database_;
  std::string retention_policy_;
  std::unique_ptr<HttpWriter> http_;
};

}  // namespace telekern::collector
