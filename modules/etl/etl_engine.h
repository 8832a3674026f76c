// The etl engine: every pipeline of the module (from config, a directory,
// or started at runtime), each on its own thread so a failing one never
// stops the others; the processor catalogue and dry runs. No gRPC here.
#pragma once

#include <map>
#include <memory>
#include <mutex>

#include "pipeline.h"
#include "telekern/work_queue.h"

namespace telekern::etl {

struct DryRunRow {
  std::string processor;
  std::string table;
  std::string json;
};
struct DryRunResult {
  std::vector<DryRunRow> rows;
  std::vector<std::pair<std::string, std::string>> rejected;  // processor, reason
  bool matched = false;
};

struct PipelineView {
  PipelineSpec spec;
  PipelineCounters counters;
  std::vector<std::string> processors;
};

class EtlEngine {
 public:
  EtlEngine(EtlOptions options, MetricsRegistry* metrics, std::shared_ptr<spdlog::logger> logger);
  ~EtlEngine();

  // Starts every configured pipeline; one that cannot start is listed FAILED.
  void start();
  void shutdown();
  absl::Status submit(std::function<void()> work);

  std::vector<PipelineView> list() const;
  // By configured name, or a definition in YAML text, or a YAML file.
  absl::StatusOr<PipelineView> start_pipeline(const std::string& name, const std::string& yaml,
                                              const std::string& file);
  absl::StatusOr<PipelineView> stop_pipeline(const std::string& name);
  absl::StatusOr<PipelineView> view(const std::string& name) const;
  std::vector<ProcessorDescription> processors() const;
  // Encodes for `profile` (default: a current server).
  absl::StatusOr<DryRunResult> dry_run(
      const std::string& processor, const std::string& message, const std::string& yaml,
      const ServerProfile& profile = ServerProfile::modern()) const;
  // Empty when every pipeline runs; else why not.
  std::string problems() const;

 private:
  absl::StatusOr<PipelineView> launch(PipelineSpec spec);
  PipelineView view_of(const std::string& name) const;
  std::vector<std::pair<std::string, absl::StatusOr<PipelineSpec>>> configured() const;

  std::shared_ptr<PipelineEnvironment> environment_;
  WorkQueue work_{2, 256};
  mutable std::mutex mutex_;
  std::map<std::string, std::unique_ptr<Pipeline>> pipelines_;
  std::map<std::string, std::pair<PipelineSpec, std::string>> failed_;  // spec, why
};

}  // namespace telekern::etl
