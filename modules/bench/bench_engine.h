// The bench module's engine (the seed's orchestrator): runs a workload with
// health snapshots around it, stores the results, renders reports, compares
// runs and cancels running ones. No gRPC service code; bench_service.cc
// adapts it.
#pragma once

#include <absl/status/statusor.h>
#include <spdlog/logger.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>
#include <vector>

#include "driver.h"
#include "report.h"
#include "run_store.h"
#include "runner.h"
#include "telekern/work_queue.h"

namespace telekern::bench {

struct BenchOptions {
  std::string results_dir;    // empty = <module data dir>/results
  std::string workloads_dir;  // relative workload and payload paths resolve here
  std::string default_driver = "telekern";
  std::chrono::milliseconds window{10000};
  std::chrono::milliseconds health_interval{30000};
  std::vector<std::string> health_targets = {"self"};
  std::chrono::milliseconds max_publish_delay{100};
  bool report = true;
  double regression_threshold = 0.10;
  uint32_t max_concurrent_runs = 1;
  uint32_t worker_threads = 2;
  uint32_t max_pending_requests = 64;
};

struct RunRequest {
  std::string workload;  // a file path or the YAML itself
  std::string driver;    // a file path, YAML, or short form; empty = default_driver
  std::optional<bool> report;
  std::chrono::milliseconds window{0};           // 0 = options.window
  std::chrono::milliseconds health_interval{0};  // 0 = options.health_interval
  std::vector<std::string> health_targets;       // non-empty replaces options.health_targets
  std::chrono::milliseconds duration{0};         // non-zero overrides testDurationMinutes
  std::optional<std::chrono::milliseconds> warmup;
};

struct Progress {
  enum class Kind { kStarted, kWindow, kFinished };
  Kind kind = Kind::kStarted;
  std::string run_id;
  double planned_seconds = 0;  // warm-up + test
  WindowStats window;
  RunSummary summary;
  std::string report_path;
  std::vector<std::string> health_failures;  // "target: error"
  std::vector<std::string> invalid_reasons;
};

class BenchEngine {
 public:
  BenchEngine(BenchOptions options, std::filesystem::path data_dir, DriverEnvironment environment,
              std::shared_ptr<spdlog::logger> logger);
  ~BenchEngine();

  absl::Status submit(std::function<void()> work);
  void shutdown();

  // Runs on the caller's thread; `progress` gets started, every window, finished.
  absl::StatusOr<RunSummary> run(const RunRequest& request, std::stop_token stop,
                                 const std::function<void(const Progress&)>& progress);
  absl::Status cancel(const std::string& id);
  std::vector<RunSummary> list() const;
  absl::StatusOr<nlohmann::json> get(const std::string& id) const;
  absl::StatusOr<std::filesystem::path> render_report(const std::string& id) const;
  absl::StatusOr<ComparisonReport> compare(const std::vector<std::string>& ids) const;
  size_t running() const;
  const RunStore& store() const { return store_; }
  const BenchOptions& options() const { return options_; }

 private:
  absl::StatusOr<Workload> resolve_workload(const RunRequest& request) const;
  absl::StatusOr<DriverSpec> resolve_driver(const RunRequest& request) const;

  BenchOptions options_;
  RunStore store_;
  DriverEnvironment environment_;
  std::shared_ptr<spdlog::logger> logger_;
  mutable std::mutex mutex_;
  std::map<std::string, std::stop_source> running_;
  WorkQueue queue_;
};

}  // namespace telekern::bench
