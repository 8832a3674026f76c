// The monitor backend: ingests samples (from the stream consumer or
// directly), keeps node liveness and the alert book, stores everything
// through a MonitorStore, answers the service's queries and feeds the Watch
// streams and the Prometheus gauges. Time comes from an injected clock, so
// tests drive `for` durations and staleness without sleeping.
#pragma once

#include <absl/status/status.h>
#include <absl/status/statusor.h>
#include <spdlog/logger.h>

#include <atomic>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "alert_book.h"
#include "monitor_options.h"
#include "monitor_store.h"
#include "node_tracker.h"
#include "telekern/metrics.h"
#include "telekern/monitor/v1/monitor.pb.h"
#include "telekern/stream.h"
#include "telekern/work_queue.h"
#include "watch_hub.h"

namespace telekern::monitor {

using NowFunction = std::function<TimePoint()>;

// Parses one record of the metrics topic (protobuf JSON of MetricSample,
// the seed's field names accepted as well).
absl::StatusOr<v1::MetricSample> parse_sample(const std::string& value);

class MonitorEngine {
 public:
  MonitorEngine(
      MonitorOptions options, std::unique_ptr<MonitorStore> store,
      std::shared_ptr<spdlog::logger> logger, MetricsRegistry* metrics,
      NowFunction now = [] { return Clock::now(); });
  ~MonitorEngine();

  // Restores nodes, thresholds and open alerts from the store.
  absl::Status load();
  // Starts consuming the metrics topic and the evaluation timer.
  void start(std::unique_ptr<stream::Consumer> consumer);
  // Stops the threads; idempotent.
  void shutdown();
  absl::Status submit(std::function<void()> work);

  // Stores, tracks and evaluates samples (already parsed). Fails only when
  // the store refused them; the caller then must not commit the records.
  absl::Status ingest(std::vector<v1::MetricSample> samples);
  // Node liveness, pending breaches whose `for` elapsed, retention, node flush.
  void tick();

  std::vector<v1::Node> list_nodes(v1::NodeStatus status) const;
  absl::StatusOr<v1::GetNodeResponse> get_node(const std::string& node_id) const;
  std::vector<v1::MetricSample> latest(const std::string& node_id) const;
  absl::StatusOr<v1::MetricHistoryResponse> history(const v1::MetricHistoryRequest& request);
  absl::StatusOr<v1::SummaryResponse> summary(const v1::SummaryRequest& request);
  v1::OverviewResponse overview() const;

  std::vector<v1::Threshold> list_thresholds(const std::string& node_id,
                                             const std::string& metric) const;
  absl::StatusOr<v1::UpsertThresholdResponse> upsert_threshold(
      const v1::UpsertThresholdRequest& request, const std::string& actor);
  absl::StatusOr<v1::Threshold> delete_threshold(uint64_t id, const std::string& actor);

  absl::StatusOr<std::vector<v1::Alert>> list_alerts(const v1::ListAlertsRequest& request);
  absl::StatusOr<v1::Alert> acknowledge(uint64_t id, const std::string& actor,
                                        const std::string& note);
  absl::StatusOr<std::vector<v1::AlertEvent>> alert_history(const v1::AlertHistoryRequest& request);
  std::vector<v1::Alert> open_alerts() const;

  // Writes CSV (header first) in chunks of about `chunk_bytes`, reading the
  // store page by page; `write` returning false stops (client gone).
  absl::Status export_csv(const v1::ExportCsvRequest& request, size_t chunk_bytes,
                          const std::function<bool(std::string chunk, uint64_t rows)>& write);

  // Subscriptions for the Watch streams, taken together with a snapshot.
  std::shared_ptr<WatchHub<v1::WatchAlertsResponse>::Subscription> watch_alerts(
      std::vector<v1::Alert>* open_now);
  std::shared_ptr<WatchHub<v1::WatchMetricsResponse>::Subscription> watch_metrics();

  // Users of the monitor (admin-managed; passwords PBKDF2-hashed in the format
  // the kernel's Login verifies: the module offers them to it).
  absl::StatusOr<v1::User> create_user(const v1::CreateUserRequest& request);
  absl::StatusOr<std::vector<v1::User>> list_users();
  absl::Status delete_user(const std::string& name);
  // A user's stored record (hash and role), for the kernel's Login; nullopt when unknown.
  absl::StatusOr<std::optional<StoredUser>> find_user(std::string_view name);
  // Creates an admin with a random password when there are no users; returns it (once).
  absl::StatusOr<std::string> ensure_admin();

  const MonitorStore& store() const { return *store_; }
  TimePoint now() const { return now_(); }
  uint64_t consumed_batches() const { return consumed_batches_.load(); }
  std::string ingest_error() const;

 private:
  void apply(std::vector<AlertChange> changes);  // store and broadcast; mutex_ held
  absl::Status range(const google::protobuf::Timestamp& from, const google::protobuf::Timestamp& to,
                     const google::protobuf::Duration& since, std::chrono::milliseconds fallback,
                     TimePoint* out_from, TimePoint* out_to) const;
  // Visits stored samples page by page, holding the lock only per page.
  absl::Status scan(const std::string& node_id, TimePoint from, TimePoint to,
                    const std::function<bool(const v1::MetricSample&)>& visit);
  void consume_loop(std::stop_token stop);
  void tick_loop(std::stop_token stop);
  std::unique_ptr<CollectorHandle> register_collector();

  MonitorOptions options_;
  std::shared_ptr<spdlog::logger> logger_;
  MetricsRegistry* metrics_;
  NowFunction now_;
  WorkQueue work_;

  mutable std::mutex mutex_;  // guards everything below and the store
  std::unique_ptr<MonitorStore> store_;
  NodeTracker nodes_;
  AlertBook book_;
  std::set<std::string> dirty_nodes_;
  TimePoint last_retention_{};
  std::deque<std::pair<TimePoint, uint64_t>> recent_counts_;  // per second, for Overview
  uint64_t samples_total_ = 0;
  std::string ingest_error_;

  WatchHub<v1::WatchAlertsResponse> alert_hub_;
  WatchHub<v1::WatchMetricsResponse> metric_hub_;

  Counter* samples_stored_;
  Counter* samples_duplicate_;
  Counter* samples_rejected_;
  CounterFamily* alert_transitions_;
  std::unique_ptr<CollectorHandle> collector_;

  std::unique_ptr<stream::Consumer> consumer_;
  std::atomic<uint64_t> consumed_batches_{0};
  std::jthread consume_thread_;
  std::jthread tick_thread_;
  bool shut_down_ = false;
};

}  // namespace telekern::monitor
