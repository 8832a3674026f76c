// The collector engine: the streamer (CSV ingest, replay, watch directory,
// single points), the collector group members writing to the store, and
// the queries the API serves. No gRPC here; collector_service.cc adapts it.
#pragma once

#include <absl/status/statusor.h>
#include <spdlog/logger.h>

#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "collector_options.h"
#include "collector_worker.h"
#include "ingest.h"
#include "live_feed.h"
#include "reject_log.h"
#include "telekern/metrics.h"
#include "telekern/work_queue.h"
#include "telemetry_store.h"
#include "watch_tap.h"

namespace telekern::collector {

struct IngestRequest {
  std::string path;
  std::string csv;
  bool replay = false;
  double rate = 0;  // 0 = configured replay_rate
  bool loop = false;
};

struct IngestOutcome {
  IngestResult result;
  std::string reject_file;
  bool background = false;
};

struct CollectorStatus {
  std::string store;
  bool store_reachable = false;
  std::string store_error;
  int breaker = 0;  // 0 closed, 1 open, 2 half-open
  uint64_t retries = 0;
  uint64_t rows_waiting = 0;
  uint64_t rows_ingested = 0;
  uint64_t rows_rejected = 0;
  uint64_t points_written = 0;
  uint64_t write_errors = 0;
  uint32_t consumers = 0;
  std::string topic;
  std::string group;
  // The group's lag on the topic, per partition (the last query, every few
  // seconds); lag_error says why it is unknown.
  std::vector<stream::PartitionLag> lags;
  uint64_t consumer_lag = 0;
  std::string lag_error;
};

// "1000/s", "600/m", "3600/h" or "50" rows per second; INVALID_ARGUMENT otherwise.
absl::StatusOr<double> parse_rate(const std::string& text);

class CollectorEngine {
 public:
  CollectorEngine(CollectorOptions options, std::filesystem::path data_dir,
                  std::shared_ptr<spdlog::logger> log, MetricsRegistry* metrics);
  ~CollectorEngine();

  // Starts the store check, the group members and the watch directory.
  absl::Status start();
  // Stops every thread; idempotent.
  void shutdown();
  // Adapter work runs here (EngineBinding).
  absl::Status submit(std::function<void()> work);

  absl::StatusOr<IngestOutcome> ingest(const IngestRequest& request);
  // Ingests `lines` as they arrive (a client stream named `source`); replay
  // paces them, a stream cannot loop. Ends early when `stop` is requested.
  absl::StatusOr<IngestOutcome> ingest_lines(const std::string& source, bool replay, double rate,
                                             LineReader& lines, std::stop_token stop);
  absl::StatusOr<std::string> submit_point(const TelemetryPoint& point);
  absl::StatusOr<std::vector<GpuInfo>> list_gpus(const std::string& host);
  absl::StatusOr<TelemetryPage> query(const TelemetryQuery& query);
  absl::StatusOr<std::vector<HostInfo>> list_hosts();
  absl::StatusOr<std::vector<std::string>> list_namespaces();
  CollectorStatus status() const;
  LiveFeed& feed() { return feed_; }
  // Empty when healthy; otherwise why not (store unreachable, ...).
  std::string degraded_reason() const;

 private:
  void check_store(std::stop_token stop);
  void watch_directory(std::stop_token stop);
  // Asks a group member's consumer for the group's lag every kLagInterval.
  void follow_lag(std::stop_token stop);
  uint64_t rows_waiting() const;
  std::vector<CollectedFamily> collect() const;

  CollectorOptions options_;
  std::filesystem::path data_dir_;
  std::shared_ptr<spdlog::logger> log_;
  MetricsRegistry* metrics_;
  std::unique_ptr<TelemetryStore> store_;
  RejectLog rejects_;
  LiveFeed feed_;
  std::unique_ptr<CsvIngester> ingester_;
  std::vector<std::unique_ptr<CollectorWorker>> workers_;
  std::unique_ptr<WatchTap> watch_tap_;

  Counter* rows_ingested_ = nullptr;
  CounterFamily* rows_rejected_ = nullptr;
  Counter* points_written_ = nullptr;
  Counter* write_errors_ = nullptr;
  std::unique_ptr<CollectorHandle> collector_handle_;

  mutable std::mutex mutex_;
  bool store_ready_ = false;
  std::string store_error_ = "not checked yet";
  std::vector<std::jthread> threads_;  // store check, workers, watcher, background replays
  std::unique_ptr<WorkQueue> work_;
  bool stopped_ = false;
  std::vector<stream::PartitionLag> lags_;  // guarded by mutex_
  std::string lag_error_ = "not asked yet";
};

}  // namespace telekern::collector
