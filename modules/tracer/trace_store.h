// Finished traces kept under <data_dir>/traces/<trace_id>/ (summary and
// events as binary protobuf), newest max_stored_traces kept.
#pragma once

#include <absl/status/status.h>
#include <absl/status/statusor.h>

#include <filesystem>
#include <mutex>
#include <vector>

#include "telekern/tracer/v1/tracer.pb.h"

namespace telekern::tracer {

class TraceStore {
 public:
  TraceStore(std::filesystem::path root, uint32_t max_traces);

  absl::Status save(const v1::Summary& summary, const std::vector<v1::Event>& events);
  // Newest first.
  absl::StatusOr<std::vector<v1::Summary>> list();
  absl::StatusOr<v1::Summary> summary(const std::string& trace_id);
  absl::StatusOr<std::vector<v1::Event>> events(const std::string& trace_id);

 private:
  absl::StatusOr<std::filesystem::path> dir_of(const std::string& trace_id) const;
  void prune();

  std::filesystem::path root_;
  uint32_t max_traces_;
  std::mutex mutex_;
};

}  // namespace telekern::tracer
