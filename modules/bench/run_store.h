// Stored runs under results/: results/<exp-id>/ holds
// benchmark_results/result.json (OMB fields + telekern's), workload.yaml,
// driver.yaml, metrics/ (health snapshots) and report/ (index.html,
// metrics.csv, metrics.json); results/latest points at the newest run.
#pragma once

#include <absl/status/statusor.h>

#include <filesystem>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace telekern::bench {

struct RunSummary {
  std::string id;
  std::string workload;
  std::string driver;
  std::string state;  // running | completed | failed | cancelled
  std::string started;
  std::string error;
  bool valid = false;
  double publish_rate = 0;  // mean over measured windows
  double publish_p99_ms = 0;
  double end_to_end_p99_ms = 0;
};

class RunStore {
 public:
  explicit RunStore(std::filesystem::path root) : root_(std::move(root)) {}

  const std::filesystem::path& root() const { return root_; }
  // A new exp-YYYYMMDD-HHMMSS[-N] directory.
  absl::StatusOr<std::string> create_run();
  std::filesystem::path dir(const std::string& id) const { return root_ / id; }
  // NOT_FOUND names the id and how to list runs; INVALID_ARGUMENT for ids with path parts.
  absl::Status check_id(const std::string& id) const;

  absl::Status write_file(const std::string& id, const std::filesystem::path& relative,
                          const std::string& content) const;
  absl::StatusOr<std::string> read_file(const std::string& id,
                                        const std::filesystem::path& relative) const;
  // run.json: the state the listing shows.
  absl::Status write_state(const std::string& id, const RunSummary& summary) const;
  absl::StatusOr<nlohmann::json> result(const std::string& id) const;
  nlohmann::json health(const std::string& id) const;  // plot_data.json or {}
  void point_latest(const std::string& id) const;

  // Newest first.
  std::vector<RunSummary> list() const;
  absl::StatusOr<RunSummary> summary(const std::string& id) const;

 private:
  std::filesystem::path root_;
  mutable std::mutex mutex_;
};

RunSummary summarize(const nlohmann::json& result);
nlohmann::json to_json(const RunSummary& summary);

}  // namespace telekern::bench
