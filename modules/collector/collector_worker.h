// One member of the collector group: consumes the telemetry topic (the
// partitions the broker assigns it), batches points by size and age, writes
// each batch to the store and commits its offsets only after the store took
// it. While the store is down the write is retried behind the store's
// breaker and nothing more is consumed (at-least-once, no loss).
#pragma once

#include <spdlog/logger.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <stop_token>
#include <string>

#include "reject_log.h"
#include "telekern/metrics.h"
#include "telekern/stream.h"
#include "telemetry_store.h"

namespace telekern::collector {

struct WorkerSettings {
  std::string topic = "telemetry";
  std::string group = "collector";
  std::string member;  // unique per consumer
  size_t batch_size = 5000;
  std::chrono::milliseconds batch_age{1000};
  // A batch is also written when no record came for this long (the topic is
  // drained for now); 0: only batch_size and batch_age decide.
  std::chrono::milliseconds batch_linger{20};
  stream::StreamConfig stream;
};

struct WorkerMetrics {
  Counter* points_written = nullptr;
  Counter* write_errors = nullptr;
  Counter* data_points = nullptr;  // telemetry_data_points_total (the seed's name)
  CounterFamily* rows_rejected = nullptr;
  Histogram* batch_size = nullptr;
  Histogram* write_duration = nullptr;
};

class CollectorWorker {
 public:
  CollectorWorker(WorkerSettings settings, TelemetryStore& store, RejectLog& rejects,
                  WorkerMetrics metrics, std::shared_ptr<spdlog::logger> log);
  // Consumes until `stop`; uncommitted points are consumed again by whoever
  // owns the partition next.
  void run(std::stop_token stop);
  // Points consumed and not yet written.
  uint64_t waiting() const { return waiting_.load(std::memory_order_relaxed); }
  // The group member's consumer while it has one (for lag queries from
  // another thread); nullptr between reconnects.
  std::shared_ptr<stream::Consumer> consumer() const;

 private:
  // Writes the batch and commits it; false when stopped before the store took it.
  bool flush(stream::Consumer& consumer, std::vector<stream::Record>& records,
             std::vector<TelemetryPoint>& points, std::stop_token stop);

  WorkerSettings settings_;
  TelemetryStore& store_;
  RejectLog& rejects_;
  WorkerMetrics metrics_;
  std::shared_ptr<spdlog::logger> log_;
  std::atomic<uint64_t> waiting_{0};
  mutable std::mutex consumer_mutex_;
  std::shared_ptr<stream::Consumer> consumer_;
};

}  // namespace telekern::collector
