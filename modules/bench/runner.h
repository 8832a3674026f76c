// Runs one workload on one driver: creates the topics, starts consumers then
// paced producers, and every window merges the clients' histograms exactly
// into per-window statistics (OMB's periodic stats); the warm-up is run and
// then excluded from the aggregated figures. Latencies are measured from each
// message's intended send time (no coordinated omission).
#pragma once

#include <absl/status/statusor.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <stop_token>
#include <string>
#include <vector>

#include "driver.h"
#include "telekern/hdr_histogram.h"
#include "workload.h"

namespace telekern::bench {

struct RunOptions {
  std::chrono::milliseconds window{10000};  // statistics interval (OMB: 10 s)
  // The run is flagged invalid when the aggregated p99 publish delay (actual
  // minus intended send time) is above this: the load generator fell behind.
  std::chrono::milliseconds max_publish_delay{100};
  std::string topic_prefix = "bench";
  std::filesystem::path payload_dir;  // where relative payloadFile paths are looked up
  size_t max_batch = 500;             // messages per send_batch at most
};

// Latency figures in milliseconds.
struct LatencyFigures {
  double avg = 0, p50 = 0, p75 = 0, p95 = 0, p99 = 0, p999 = 0, p9999 = 0, max = 0;
  static LatencyFigures of(const HdrHistogram& microseconds);
};

struct WindowStats {
  int index = 0;
  bool warmup = false;
  double elapsed_seconds = 0;  // since the run started, at the window's end
  double seconds = 0;          // the window's length
  double publish_rate = 0;     // msg/s
  double publish_mb = 0;       // MB/s
  double publish_error_rate = 0;
  double consume_rate = 0;
  double consume_mb = 0;
  int64_t backlog = 0;  // messages published (times subscriptions) not yet consumed
  LatencyFigures publish_latency;
  LatencyFigures publish_delay;  // milliseconds here; OMB's JSON gets microseconds
  LatencyFigures end_to_end_latency;
  uint64_t published = 0;
  uint64_t consumed = 0;
};

struct RunResult {
  Workload workload;
  DriverSpec driver;
  std::vector<WindowStats> windows;  // warm-up windows included, flagged
  HdrHistogram publish_latency;      // aggregated over the measured phase, microseconds
  HdrHistogram publish_delay;
  HdrHistogram end_to_end_latency;
  uint64_t published = 0;  // measured phase
  uint64_t consumed = 0;
  uint64_t publish_errors = 0;
  double measured_seconds = 0;
  uint32_t message_size = 0;  // actual payload size
  bool cancelled = false;
  bool valid = true;
  std::vector<std::string> invalid_reasons;
  std::vector<std::string> notes;  // e.g. payload file missing, errors seen
  std::chrono::system_clock::time_point started;
  std::chrono::system_clock::time_point finished;
};

using WindowCallback = std::function<void(const WindowStats&)>;

// Runs the workload; returns an error only when the run could not start
// (topics, clients); errors during the run are counted and noted.
absl::StatusOr<RunResult> run_workload(const Workload& workload, const DriverSpec& spec,
                                       Driver& driver, const RunOptions& options,
                                       std::stop_token stop, const WindowCallback& on_window);

}  // namespace telekern::bench
