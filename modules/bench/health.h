// Infrastructure health around a run (the seed's MetricsCollector): a
// baseline snapshot before it, continuous snapshots every interval on a
// background thread, a final one after. Targets are Prometheus endpoints
// (telekernd's /metrics or any broker's) and local processes. Collection
// never fails a run: a target that cannot be read is logged and marked in
// its sample (ok=false with the error), and the run goes on.
#pragma once

#include <absl/status/statusor.h>
#include <spdlog/logger.h>
#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace telekern::bench {

struct HealthTarget {
  enum class Kind { kPrometheus, kProcess };
  Kind kind = Kind::kPrometheus;
  std::string name;  // as given: URL, "pid:N" or "self"
  std::string url;   // kPrometheus
  pid_t pid = 0;     // kProcess
};

// "http://host:port/metrics", "pid:1234" or "self" (this process).
absl::StatusOr<HealthTarget> parse_health_target(const std::string& spec);

// One target at one moment. Figures a target does not expose are absent.
struct TargetSample {
  std::string target;
  bool ok = false;
  std::string error;
  std::optional<double> cpu_percent;  // since the previous snapshot (100 = one core)
  std::optional<double> rss_bytes;
  std::optional<double> heap_bytes;  // JVM heap / Go heap where exposed
  std::optional<double> open_fds;
  std::optional<double> pause_ms;                // GC + fsync time since the previous snapshot
  std::optional<double> fsync_ms;                // fsync time alone, when exposed
  std::optional<double> disk_write_bytes_per_s;  // storage: process write rate (pid targets)
  std::map<std::string, double> queue;           // the broker's own lag/queue/backlog gauges
};

struct HealthSnapshot {
  std::string phase;           // baseline | continuous | final
  double elapsed_seconds = 0;  // since the baseline
  std::string time;            // ISO 8601 UTC
  std::vector<TargetSample> targets;
};

nlohmann::json to_json(const HealthSnapshot& snapshot);
HealthSnapshot snapshot_from_json(const nlohmann::json& json);

// Parses Prometheus text format into name -> sum over label sets; jvm heap
// series (area="heap") are kept apart as "jvm_memory_bytes_used_heap".
std::map<std::string, double> parse_prometheus_text(const std::string& text);

class HealthCollector {
 public:
  HealthCollector(std::vector<HealthTarget> targets, std::chrono::milliseconds interval,
                  std::shared_ptr<spdlog::logger> logger);
  ~HealthCollector();

  // Each returns the snapshot it took; none of them throws or fails.
  HealthSnapshot collect_baseline();
  void start_background();
  void stop_background();
  HealthSnapshot collect_final();

  std::optional<HealthSnapshot> baseline() const;
  std::vector<HealthSnapshot> timeseries() const;
  std::optional<HealthSnapshot> final_snapshot() const;
  // Targets that failed at least once, with their last error.
  std::map<std::string, std::string> failures() const;

  // metrics/baseline_snapshot.json, timeseries.json, final_snapshot.json,
  // plot_data.json; an error is returned (for the log), never thrown.
  absl::Status write(const std::filesystem::path& metrics_dir) const;
  // Series per target for the charts: {"targets": {name: {"t": [...], "cpu_percent": [...]}}}.
  nlohmann::json plot_data() const;

 private:
  HealthSnapshot take(const std::string& phase);
  TargetSample sample(const HealthTarget& target, double now_seconds);

  struct Previous {
    double at_seconds = 0;
    std::optional<double> cpu_seconds;
    std::optional<double> pause_seconds;
    std::optional<double> fsync_seconds;
    std::optional<double> write_bytes;
  };

  std::vector<HealthTarget> targets_;
  std::chrono::milliseconds interval_;
  std::shared_ptr<spdlog::logger> logger_;
  std::chrono::steady_clock::time_point origin_;
  mutable std::mutex mutex_;
  std::map<std::string, Previous> previous_;
  std::optional<HealthSnapshot> baseline_;
  std::vector<HealthSnapshot> timeseries_;
  std::optional<HealthSnapshot> final_;
  std::map<std::string, std::string> failures_;
  std::jthread background_;
};

}  // namespace telekern::bench
