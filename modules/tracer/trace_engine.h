// Runs traces: picks the source, discovers and filters topics, plans every
// partition (watermarks, max_age seek), scans up to max_parallel units at
// once, matches records, reports progress and matched events while it runs,
// and ends with a summary that says for each partition what was covered.
// Finished traces are stored under the data dir and written as outputs.
#pragma once

#include <absl/status/status.h>
#include <absl/status/statusor.h>
#include <spdlog/logger.h>

#include <atomic>
#include <filesystem>
#include <functional>
#include <memory>
#include <stop_token>

#include "source.h"
#include "telekern/metrics.h"
#include "telekern/tracer/v1/tracer.pb.h"
#include "telekern/work_queue.h"
#include "trace_store.h"
#include "tracer_options.h"

namespace telekern::tracer {

// Receives what a running trace reports, on the thread that called trace().
class TraceObserver {
 public:
  virtual ~TraceObserver() = default;
  // False: the receiver has gone; the trace stops.
  virtual bool progress(const v1::Progress& progress) = 0;
  virtual bool event(const v1::Event& event) = 0;
};

// Makes the source a request asks for.
using SourceFactory = std::function<absl::StatusOr<std::unique_ptr<TraceSource>>(
    const v1::TraceDeviceRequest& request, const ScanLimits& limits)>;

class TraceEngine {
 public:
  TraceEngine(TracerOptions options, std::filesystem::path data_dir, SourceFactory sources,
              std::shared_ptr<spdlog::logger> logger, MetricsRegistry* metrics);
  ~TraceEngine();
  TraceEngine(const TraceEngine&) = delete;
  TraceEngine& operator=(const TraceEngine&) = delete;

  absl::Status submit(std::function<void()> work);
  void shutdown();

  // Runs one trace to its end (or until `stop`); the summary is also stored.
  absl::StatusOr<v1::Summary> trace(const v1::TraceDeviceRequest& request, TraceObserver& observer,
                                    std::stop_token stop);

  absl::StatusOr<v1::ListTracesResponse> list_traces(const v1::ListTracesRequest& request);
  absl::StatusOr<v1::GetTraceResponse> get_trace(const v1::GetTraceRequest& request);
  absl::StatusOr<v1::RenderReportResponse> render_report(const v1::RenderReportRequest& request);
  // The HTML report of a stored trace, rendered from the store (no file written).
  absl::StatusOr<v1::GetReportResponse> get_report(const v1::GetReportRequest& request);

  const TracerOptions& options() const { return options_; }
  TraceStore& store() { return store_; }

 private:
  std::filesystem::path output_dir_for(const std::string& requested, const std::string& trace_id);

  TracerOptions options_;
  std::filesystem::path data_dir_;
  SourceFactory sources_;
  std::shared_ptr<spdlog::logger> logger_;
  TraceStore store_;
  WorkQueue work_;
  std::atomic<int> running_{0};
  Counter* traces_total_ = nullptr;
  Counter* scanned_total_ = nullptr;
  Counter* matched_total_ = nullptr;
  Counter* incomplete_total_ = nullptr;
};

}  // namespace telekern::tracer
