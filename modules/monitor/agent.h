// The host agent: every `interval` it samples /proc and /sys and publishes
// the sample (protobuf JSON, keyed by node_id) to the metrics topic through
// telekern::stream. Samples that could not be delivered stay in a bounded
// buffer (oldest dropped first, counted) and are sent again on the next
// round; the backend skips a sample it already stored. It runs on its own
// thread and never blocks the kernel.
#pragma once

#include <spdlog/logger.h>

#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "monitor_options.h"
#include "proc_sampler.h"
#include "telekern/metrics.h"
#include "telekern/stream.h"

namespace telekern::monitor {

using ProducerFactory =
    std::function<absl::StatusOr<std::unique_ptr<stream::Producer>>()>;

class Agent {
 public:
  Agent(const MonitorOptions& options, ProducerFactory producers,
        std::shared_ptr<spdlog::logger> logger, MetricsRegistry& metrics);
  ~Agent();
  void start();
  void stop();

  // One round: sample, then publish what is buffered. Public for tests.
  void round();
  size_t buffered() const;
  std::string last_error() const;
  const std::string& node_id() const { return node_id_; }

 private:
  std::string topic_;
  std::string node_id_;
  std::string node_name_;
  std::chrono::milliseconds interval_;
  size_t capacity_;
  ProducerFactory producers_;
  std::shared_ptr<spdlog::logger> logger_;
  ProcSampler sampler_;
  std::unique_ptr<stream::Producer> producer_;
  mutable std::mutex mutex_;
  std::deque<std::string> buffer_;
  std::string last_error_;
  Counter* published_;
  Counter* dropped_;
  Gauge* buffered_gauge_;
  std::jthread thread_;
};

}  // namespace telekern::monitor
