// The broker engine: topics, consumer groups and the threads that serve
// them. Everything here is plain C++ with absl::Status results; the gRPC
// adapter (broker_service.cc) translates and calls in from broker threads.
#pragma once

#include <absl/status/status.h>
#include <absl/status/statusor.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include "consumer_group.h"
#include "group_commit.h"
#include "telekern/metrics.h"
#include "telekern/work_queue.h"
#include "topic.h"

namespace telekern::broker {

enum class Durability { kNone, kFsync };

struct BrokerOptions {
  uint32_t default_partitions = 4;
  uint32_t max_partitions = 64;
  bool auto_create_topics = true;
  // A produce naming partition p >= the topic's count grows the topic to p+1
  // (below max_partitions) instead of failing with INVALID_ARGUMENT.
  bool produce_grows_partitions = false;
  // A produce that only appends to the page cache runs on the gRPC thread
  // that received it instead of queueing for an engine thread.
  bool inline_produce = true;
  uint64_t segment_bytes = 64u << 20;
  std::chrono::milliseconds retention{7LL * 24 * 3600 * 1000};  // 0 = forever
  uint64_t retention_bytes = 0;
  uint64_t max_record_bytes = 1u << 20;
  uint32_t max_in_flight = 2000;
  std::chrono::milliseconds visibility_timeout{30000};
  uint32_t max_deliveries = 5;
  std::vector<std::chrono::milliseconds> nack_backoff{
      std::chrono::seconds(1), std::chrono::seconds(5), std::chrono::seconds(30)};
  Durability default_durability = Durability::kFsync;
  uint32_t worker_threads = 4;
  uint32_t max_pending_requests = 2000;
  uint32_t index_interval_bytes = 4096;
  std::chrono::milliseconds retention_check_interval{30000};
  std::chrono::milliseconds flush_interval{1000};
  // Descriptors the broker's files may hold (0 = half the process's
  // RLIMIT_NOFILE); idle ones close, least recently used first.
  uint64_t max_open_files = 0;
  // A descriptor no call used for this long closes (0 = only under the cap).
  std::chrono::milliseconds file_idle_timeout{60000};
  // Quotas, so one client cannot exhaust the machine. Dead-letter topics count.
  uint32_t max_topics = 10000;
  uint32_t max_groups = 10000;  // all topics together
  uint32_t max_groups_per_topic = 1000;
  // Produce and topic creation are refused while the data directory's file
  // system has less free space than the larger of these (0 = no reserve).
  uint64_t min_free_disk_bytes = 64u << 20;
  uint32_t min_free_disk_percent = 0;
};

struct TopicLimits {
  uint32_t max_partitions = 0;
  uint64_t max_record_bytes = 0;
  uint32_t max_in_flight = 0;
  // Quotas with their usage now.
  uint32_t max_topics = 0;
  uint32_t topics = 0;
  uint32_t max_groups = 0;
  uint32_t groups = 0;
  uint32_t max_groups_per_topic = 0;
  uint32_t topic_groups = 0;         // groups of the described topic (0 in a listing)
  uint64_t min_free_disk_bytes = 0;  // the reserve in force (bytes and percent resolved)
  uint64_t free_disk_bytes = 0;
  uint64_t max_open_files = 0;
  uint64_t open_files = 0;
};

// Free space of the file system holding the data directory.
struct DiskSpace {
  uint64_t free_bytes = 0;  // available to the daemon (statvfs f_bavail)
  uint64_t total_bytes = 0;
};

struct CreateTopicOptions {
  uint32_t partitions = 0;              // 0 = default_partitions
  std::optional<int64_t> retention_ms;  // unset = default
  uint64_t retention_bytes = 0;         // 0 = default
  uint64_t segment_bytes = 0;           // 0 = default
};

struct PartitionDescription {
  uint32_t partition = 0;
  PartitionStats stats;
};

struct TopicDescription {
  std::string name;
  TopicSpec spec;
  std::vector<PartitionDescription> partitions;
  std::vector<GroupInfo> groups;
  TopicLimits limits;
  uint64_t bytes = 0;
  uint64_t records = 0;
};

struct ProduceCall {
  std::string topic;
  std::vector<Record> records;
  std::optional<uint32_t> partition;
  std::optional<Durability> durability;
  bool grow_partitions = false;  // a missing `partition` is created (up to max_partitions)
};

struct PartitionAppend {
  uint32_t partition = 0;
  uint64_t first_offset = 0;
  uint32_t count = 0;
};

using ProduceResult = absl::StatusOr<std::vector<PartitionAppend>>;

struct GroupKey {
  std::string topic;
  std::string group;
  auto operator<=>(const GroupKey&) const = default;
};

class Broker {
 public:
  // Opens every topic and group under data_dir (recovering torn tails) and
  // starts the broker's threads. `metrics` may be null (tests).
  static absl::StatusOr<std::unique_ptr<Broker>> open(BrokerOptions options,
                                                      std::filesystem::path data_dir,
                                                      std::shared_ptr<spdlog::logger> logger,
                                                      MetricsRegistry* metrics);
  ~Broker();
  // Stops background threads after running queued work and pending fsyncs. Idempotent.
  void shutdown();
  std::stop_token stop_token() const { return stop_.get_token(); }
  const BrokerOptions& options() const { return options_; }

  // Runs `work` on a broker thread. Returns RESOURCE_EXHAUSTED (queue full)
  // or UNAVAILABLE (stopping) without running it.
  absl::Status submit(std::function<void()> work);

  // The calls below block on disk: run them on broker threads (submit).
  absl::StatusOr<TopicDescription> create_topic(const std::string& name,
                                                const CreateTopicOptions& options);
  absl::Status delete_topic(const std::string& name);
  std::vector<TopicDescription> list_topics();
  absl::StatusOr<TopicDescription> describe_topic(const std::string& name);
  absl::StatusOr<uint32_t> add_partitions(const std::string& name, uint32_t partitions);

  // Appends on the calling thread; `done` runs there for NONE and on the
  // group-commit thread for FSYNC.
  void produce(ProduceCall call, std::function<void(ProduceResult)> done);
  // Whether produce(call) would only append to the page cache (a hint, for
  // running it on the thread that received it rather than queueing it): the
  // topic exists and needs no growing, the records are small, and no
  // partition it may write is busy or due a segment roll.
  bool produce_is_quick(const ProduceCall& call);

  // The group, created (with `mode`, LOG when unset) when it does not exist;
  // the topic is auto-created when allowed.
  absl::StatusOr<std::shared_ptr<ConsumerGroup>> open_group(const std::string& topic,
                                                            const std::string& group,
                                                            std::optional<GroupMode> mode);
  // An existing group, or NOT_FOUND naming it.
  absl::StatusOr<std::shared_ptr<ConsumerGroup>> find_group(const std::string& topic,
                                                            const std::string& group);
  std::vector<GroupInfo> list_groups(const std::string& topic);

  // Limits and quotas with their usage now (topic_groups left 0).
  TopicLimits limits();
  // Why the broker is DEGRADED (a partition holds unreadable data), if it is.
  std::optional<std::string> degraded_reason();
  uint64_t fsync_count() const { return committer_.fsyncs(); }

 private:
  Broker(BrokerOptions options, std::filesystem::path data_dir,
         std::shared_ptr<spdlog::logger> logger, MetricsRegistry* metrics);
  absl::Status load();
  absl::StatusOr<std::shared_ptr<Topic>> find_topic(const std::string& name);
  absl::StatusOr<std::shared_ptr<Topic>> create_topic_locked(const std::string& name,
                                                             const CreateTopicOptions& options);
  absl::StatusOr<std::shared_ptr<Topic>> topic_for_produce(const std::string& name);
  absl::StatusOr<std::shared_ptr<ConsumerGroup>> load_group(const std::shared_ptr<Topic>& topic,
                                                            const std::string& group,
                                                            std::optional<GroupMode> mode);
  absl::Status dead_letter(const std::string& topic, uint32_t partition, Record record);
  TopicDescription describe(const std::shared_ptr<Topic>& topic);
  void background(std::stop_token stop);
  void log_error(const absl::Status& status, std::string_view what);
  std::vector<CollectedFamily> collect_gauges();
  GroupMetrics group_metrics(const std::string& topic);
  absl::StatusOr<DiskSpace> disk_space() const;
  uint64_t disk_reserve(const DiskSpace& space) const;
  // RESOURCE_EXHAUSTED when free disk space is below the reserve: `what` is refused.
  absl::Status check_disk_reserve(std::string_view what) const;
  size_t groups_of_locked(const std::string& topic) const;

  BrokerOptions options_;
  std::filesystem::path data_dir_;
  std::shared_ptr<spdlog::logger> logger_;
  MetricsRegistry* metrics_;
  CounterFamily* produced_ = nullptr;
  CounterFamily* consumed_ = nullptr;
  CounterFamily* acked_ = nullptr;
  CounterFamily* redelivered_ = nullptr;
  CounterFamily* dead_lettered_ = nullptr;
  CounterFamily* produce_errors_ = nullptr;
  HistogramFamily* produce_latency_ = nullptr;
  HistogramFamily* ack_latency_ = nullptr;
  HistogramFamily* fsync_latency_ = nullptr;
  std::unique_ptr<CollectorHandle> collector_;

  std::mutex mutex_;  // topics_ and groups_
  std::map<std::string, std::shared_ptr<Topic>> topics_;
  std::map<GroupKey, std::shared_ptr<ConsumerGroup>> groups_;

  std::stop_source stop_;
  GroupCommitter committer_;
  WorkQueue work_;
  std::jthread background_;
  std::once_flag shutdown_once_;
};

// partition = fnv1a64(key) mod partitions: stable across restarts and builds.
uint64_t stable_key_hash(std::string_view key);

}  // namespace telekern::broker
