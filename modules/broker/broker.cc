#include "broker.h"

#include <spdlog/logger.h>
#include <sys/statvfs.h>

#include <algorithm>

#include "telekern/log.h"
#include "telekern/service/inline_step_scope.h"
#include "telekern/strings.h"

namespace telekern::broker {
namespace {

constexpr std::chrono::milliseconds kTickInterval{50};

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string dead_letter_topic(const std::string& topic) { return topic + ".dlq"; }

absl::Status validate_group_name(const std::string& group) {
  auto status = validate_topic_name(group);
  if (status.ok()) return status;
  return absl::InvalidArgumentError(
      str_cat("group name '", group, "' is invalid: use 1-200 characters of A-Z a-z 0-9 . _ -"));
}

}  // namespace

uint64_t stable_key_hash(std::string_view key) {
  uint64_t hash = 14695981039346656037ull;
  for (unsigned char c : key) {
    hash ^= c;
    hash *= 1099511628211ull;
  }
  return hash;
}

Broker::Broker(BrokerOptions options, std::filesystem::path data_dir,
               std::shared_ptr<spdlog::logger> logger, MetricsRegistry* metrics)
    : options_(std::move(options)),
      data_dir_(std::move(data_dir)),
      logger_(std::move(logger)),
      metrics_(metrics),
      work_(options_.worker_threads, options_.max_pending_requests) {
  if (metrics_) {
    produced_ = &metrics_->counter("telekern_broker_messages_produced_total",
                                   "Records appended, by topic", {"topic"});
    consumed_ = &metrics_->counter(
        "telekern_broker_messages_consumed_total",
        "Records delivered to consumers (redeliveries included), by topic", {"topic"});
    acked_ = &metrics_->counter("telekern_broker_messages_acked_total",
                                "QUEUE-mode deliveries acknowledged, by topic", {"topic"});
    redelivered_ = &metrics_->counter("telekern_broker_messages_redelivered_total",
                                      "QUEUE-mode deliveries after the first, by topic", {"topic"});
    dead_lettered_ = &metrics_->counter("telekern_broker_messages_dlq_total",
                                        "Records moved to <topic>.dlq, by source topic", {"topic"});
    produce_errors_ =
        &metrics_->counter("telekern_broker_produce_errors_total",
                           "Produce requests refused or failed, by reason", {"reason"});
    produce_latency_ =
        &metrics_->histogram("telekern_broker_produce_duration_seconds",
                             "Produce latency from arrival to answer, by topic", {"topic"});
    ack_latency_ = &metrics_->histogram("telekern_broker_ack_latency_seconds",
                                        "Time from delivery to ack, by topic", {"topic"});
    fsync_latency_ = &metrics_->histogram("telekern_broker_fsync_duration_seconds",
                                          "Group-commit fdatasync latency, by topic", {"topic"});
  }
}

Broker::~Broker() { shutdown(); }

absl::StatusOr<std::unique_ptr<Broker>> Broker::open(BrokerOptions options,
                                                     std::filesystem::path data_dir,
                                                     std::shared_ptr<spdlog::logger> logger,
                                                     MetricsRegistry* metrics) {
  uint64_t cap = options.max_open_files == 0 ? OpenFiles::default_cap() : options.max_open_files;
  OpenFiles::set_cap(cap);
  if (logger) {
    uint64_t limit = OpenFiles::process_limit();
    logger->info("open files: at most {} (max_open_files={}, process limit {})", cap,
                 options.max_open_files,
                 limit == 0 ? std::string("unlimited") : std::to_string(limit));
    if (limit > 0 && cap > limit) {
      logger->warn(
          "max_open_files={} exceeds the process's open-file limit {}: opens will fail with "
          "RESOURCE_EXHAUSTED before idle files are closed; lower max_open_files or raise the "
          "limit",
          cap, limit);
    }
  }
  std::unique_ptr<Broker> broker(
      new Broker(std::move(options), std::move(data_dir), std::move(logger), metrics));
  if (auto status = broker->load(); !status.ok()) {
    broker->shutdown();
    return status;
  }
  broker->background_ =
      std::jthread([raw = broker.get()](std::stop_token stop) { raw->background(stop); });
  if (metrics) {
    broker->collector_ =
        metrics->add_collector([raw = broker.get()] { return raw->collect_gauges(); });
  }
  return broker;
}

void Broker::shutdown() {
  std::call_once(shutdown_once_, [this] {
    collector_.reset();
    stop_.request_stop();
    work_.stop();
    committer_.stop();
    if (background_.joinable()) {
      background_.request_stop();
      background_.join();
    }
    std::vector<std::shared_ptr<ConsumerGroup>> groups;
    std::vector<std::shared_ptr<Topic>> topics;
    {
      std::lock_guard lock(mutex_);
      for (const auto& [_, group] : groups_) groups.push_back(group);
      for (const auto& [_, topic] : topics_) topics.push_back(topic);
    }
    for (auto& group : groups) {
      if (auto status = group->sync_state(); !status.ok() && logger_) {
        logger_->error("group '{}' on '{}': final state sync failed: {}", group->name(),
                       group->topic_name(), status.message());
      }
    }
    for (auto& topic : topics) {
      for (auto& partition : topic->partitions()) {
        if (partition->sync().ok()) log_error(partition->write_high_water(), "high-water mark");
      }
    }
  });
}

absl::Status Broker::submit(std::function<void()> work) {
  if (stop_.stop_requested()) return absl::UnavailableError("broker is stopping; retry");
  if (!work_.try_submit(std::move(work))) {
    if (stop_.stop_requested()) return absl::UnavailableError("broker is stopping; retry");
    if (produce_errors_) produce_errors_->with({"queue_full"}).inc();
    return absl::ResourceExhaustedError(str_cat(
        "broker request queue is full (max_pending_requests=", options_.max_pending_requests,
        "); retry with backoff"));
  }
  return absl::OkStatus();
}

absl::Status Broker::load() {
  std::error_code error;
  auto topics_dir = data_dir_ / "topics";
  std::filesystem::create_directories(topics_dir, error);
  if (error) return io_error("cannot create", topics_dir, error.value());
  std::lock_guard lock(mutex_);
  for (const auto& entry : std::filesystem::directory_iterator(topics_dir, error)) {
    if (!entry.is_directory()) continue;
    std::string name = entry.path().filename().string();
    if (!validate_topic_name(name).ok()) continue;
    if (!std::filesystem::exists(entry.path() / "topic.conf")) {
      // The spec is written last: a creation the daemon died in. Nothing
      // half-created stays.
      if (logger_)
        logger_->warn("removing {}: a topic creation that never finished (no topic.conf)",
                      entry.path().string());
      std::filesystem::remove_all(entry.path(), error);
      continue;
    }
    auto topic = Topic::open(entry.path(), name, options_.index_interval_bytes, logger_);
    if (!topic.ok()) {
      return absl::Status(topic.status().code(),
                          str_cat("cannot open topic '", name, "': ", topic.status().message()));
    }
    topics_[name] = std::move(*topic);
  }
  auto groups_dir = data_dir_ / "groups";
  std::filesystem::create_directories(groups_dir, error);
  for (const auto& topic_dir : std::filesystem::directory_iterator(groups_dir, error)) {
    auto topic = topics_.find(topic_dir.path().filename().string());
    if (topic == topics_.end()) continue;
    for (const auto& file : std::filesystem::directory_iterator(topic_dir.path(), error)) {
      if (file.path().extension() != ".state") continue;
      auto group = load_group(topic->second, file.path().stem().string(), std::nullopt);
      if (!group.ok()) return group.status();
    }
  }
  // A group may have committed past what recovery left (records read before
  // a power loss, a cut log): new offsets continue after what it has seen.
  for (const auto& [key, group] : groups_) {
    auto topic = topics_.find(key.topic);
    if (topic == topics_.end()) continue;
    for (const auto& [id, offset] : group->highest_positions()) {
      auto partition = topic->second->partition(id);
      if (!partition || offset <= partition->end_offset()) continue;
      auto status = partition->advance_to(
          offset, str_cat("group '", key.group, "' has committed or acked up to ", offset));
      if (!status.ok()) return status;
    }
  }
  if (logger_)
    logger_->info("broker opened {} topic(s), {} group(s) in {}", topics_.size(), groups_.size(),
                  data_dir_.string());
  return absl::OkStatus();
}

GroupMetrics Broker::group_metrics(const std::string& topic) {
  GroupMetrics metrics;
  if (!metrics_) return metrics;
  metrics.consumed = &consumed_->with({topic});
  metrics.acked = &acked_->with({topic});
  metrics.redelivered = &redelivered_->with({topic});
  metrics.dead_lettered = &dead_lettered_->with({topic});
  metrics.ack_latency = &ack_latency_->with({topic});
  return metrics;
}

absl::StatusOr<std::shared_ptr<ConsumerGroup>> Broker::load_group(
    const std::shared_ptr<Topic>& topic, const std::string& group, std::optional<GroupMode> mode) {
  GroupSettings settings;
  settings.visibility_timeout = options_.visibility_timeout;
  settings.max_deliveries = options_.max_deliveries;
  settings.max_in_flight = options_.max_in_flight;
  settings.nack_backoff = options_.nack_backoff;
  std::string topic_name = topic->name();
  auto opened = ConsumerGroup::open(
      data_dir_ / "groups" / topic_name / (group + ".state"), group, topic, mode, settings,
      [this, topic_name](uint32_t partition, Record record) {
        return dead_letter(topic_name, partition, std::move(record));
      },
      group_metrics(topic_name), logger_);
  if (!opened.ok()) return opened.status();
  std::shared_ptr<ConsumerGroup> shared = std::move(*opened);
  groups_[{topic_name, group}] = shared;
  return shared;
}

void Broker::log_error(const absl::Status& status, std::string_view what) {
  if (!status.ok() && logger_) logger_->error("{}: {}", what, status.message());
}

std::optional<std::string> Broker::degraded_reason() {
  std::vector<std::shared_ptr<Topic>> topics;
  {
    std::lock_guard lock(mutex_);
    for (const auto& [_, topic] : topics_) topics.push_back(topic);
  }
  for (const auto& topic : topics) {
    for (const auto& partition : topic->partitions()) {
      if (auto reason = partition->degraded_reason()) {
        return str_cat("topic '", topic->name(), "' partition ", partition->id(), ": ", *reason);
      }
    }
  }
  return std::nullopt;
}

TopicLimits Broker::limits() {
  TopicLimits limits;
  limits.max_partitions = options_.max_partitions;
  limits.max_record_bytes = options_.max_record_bytes;
  limits.max_in_flight = options_.max_in_flight;
  limits.max_topics = options_.max_topics;
  limits.max_groups = options_.max_groups;
  limits.max_groups_per_topic = options_.max_groups_per_topic;
  {
    std::lock_guard lock(mutex_);
    limits.topics = static_cast<uint32_t>(topics_.size());
    limits.groups = static_cast<uint32_t>(groups_.size());
  }
  if (auto space = disk_space(); space.ok()) {
    limits.free_disk_bytes = space->free_bytes;
    limits.min_free_disk_bytes = disk_reserve(*space);
  }
  auto files = OpenFiles::usage();
  limits.max_open_files = files.cap;
  limits.open_files = files.open;
  return limits;
}

absl::StatusOr<DiskSpace> Broker::disk_space() const {
  struct statvfs info {};
  if (::statvfs(data_dir_.c_str(), &info) != 0) return io_error("cannot statvfs", data_dir_, errno);
  return DiskSpace{static_cast<uint64_t>(info.f_bavail) * info.f_frsize,
                   static_cast<uint64_t>(info.f_blocks) * info.f_frsize};
}

uint64_t Broker::disk_reserve(const DiskSpace& space) const {
  uint64_t by_percent = space.total_bytes / 100 * options_.min_free_disk_percent;
  return std::max(options_.min_free_disk_bytes, by_percent);
}

absl::Status Broker::check_disk_reserve(std::string_view what) const {
  if (options_.min_free_disk_bytes == 0 && options_.min_free_disk_percent == 0)
    return absl::OkStatus();
  auto space = disk_space();
  if (!space.ok()) return space.status();
  uint64_t reserve = disk_reserve(*space);
  if (space->free_bytes >= reserve) return absl::OkStatus();
  return absl::ResourceExhaustedError(str_cat(
      what, " refused: ", space->free_bytes, " bytes free on ", data_dir_.string(),
      " is below the reserve of ", reserve, " bytes (modules.broker.min_free_disk_bytes=",
      options_.min_free_disk_bytes, ", min_free_disk_percent=", options_.min_free_disk_percent,
      "); reads, acks and commits still work: delete topics or lower retention to free space, "
      "or lower the reserve"));
}

size_t Broker::groups_of_locked(const std::string& topic) const {
  auto first = groups_.lower_bound(GroupKey{topic, ""});
  size_t count = 0;
  for (auto it = first; it != groups_.end() && it->first.topic == topic; ++it) ++count;
  return count;
}

absl::StatusOr<std::shared_ptr<Topic>> Broker::find_topic(const std::string& name) {
  std::lock_guard lock(mutex_);
  auto it = topics_.find(name);
  if (it == topics_.end()) {
    return absl::NotFoundError(
        str_cat("topic '", name, "' does not exist; `broker topic create ", name, "` creates it"));
  }
  return it->second;
}

absl::StatusOr<std::shared_ptr<Topic>> Broker::create_topic_locked(
    const std::string& name, const CreateTopicOptions& options) {
  if (auto status = validate_topic_name(name); !status.ok()) return status;
  if (topics_.count(name))
    return absl::AlreadyExistsError(str_cat("topic '", name, "' already exists"));
  if (topics_.size() >= options_.max_topics) {
    return absl::ResourceExhaustedError(
        str_cat("topic '", name, "' not created: ", topics_.size(),
                " topics exist (dead-letter topics included), max_topics=", options_.max_topics,
                "; delete unused topics or raise modules.broker.max_topics"));
  }
  if (auto status = check_disk_reserve(str_cat("creating topic '", name, "'")); !status.ok())
    return status;
  TopicSpec spec;
  spec.partitions = options.partitions == 0 ? options_.default_partitions : options.partitions;
  if (spec.partitions > options_.max_partitions) {
    return absl::ResourceExhaustedError(
        str_cat("topic '", name, "': ", spec.partitions,
                " partitions exceed max_partitions=", options_.max_partitions));
  }
  spec.retention_ms = options.retention_ms.value_or(options_.retention.count());
  spec.retention_bytes =
      options.retention_bytes == 0 ? options_.retention_bytes : options.retention_bytes;
  spec.segment_bytes = options.segment_bytes == 0 ? options_.segment_bytes : options.segment_bytes;
  if (spec.segment_bytes < 1024 || spec.segment_bytes > (1ull << 30)) {
    return absl::InvalidArgumentError(
        str_cat("segment_bytes=", spec.segment_bytes, " is out of range: use 1 KiB to 1 GiB"));
  }
  if (spec.retention_ms < 0) return absl::InvalidArgumentError("retention must not be negative");
  auto directory = data_dir_ / "topics" / name;
  auto topic = Topic::create(directory, name, spec, options_.index_interval_bytes, logger_);
  if (!topic.ok()) {
    // Nothing half-created stays: the next open must not find a topic
    // without its spec or with some partitions only.
    std::error_code ignored;
    std::filesystem::remove_all(directory, ignored);
    (void)sync_directory(directory.parent_path());
    if (logger_)
      logger_->error("topic '{}' not created (removed what was made): {}", name,
                     topic.status().message());
    return absl::Status(topic.status().code(),
                        str_cat("topic '", name, "' not created: ", topic.status().message()));
  }
  std::shared_ptr<Topic> shared = std::move(*topic);
  topics_[name] = shared;
  if (logger_) logger_->info("topic '{}' created with {} partition(s)", name, spec.partitions);
  return shared;
}

absl::StatusOr<TopicDescription> Broker::create_topic(const std::string& name,
                                                      const CreateTopicOptions& options) {
  std::shared_ptr<Topic> topic;
  {
    std::lock_guard lock(mutex_);
    auto created = create_topic_locked(name, options);
    if (!created.ok()) return created.status();
    topic = *created;
  }
  return describe(topic);
}

absl::Status Broker::delete_topic(const std::string& name) {
  std::shared_ptr<Topic> topic;
  std::vector<std::shared_ptr<ConsumerGroup>> groups;
  {
    std::lock_guard lock(mutex_);
    auto it = topics_.find(name);
    if (it == topics_.end())
      return absl::NotFoundError(str_cat("topic '", name, "' does not exist"));
    topic = it->second;
    topics_.erase(it);
    for (auto group = groups_.begin(); group != groups_.end();) {
      if (group->first.topic == name) {
        groups.push_back(group->second);
        group = groups_.erase(group);
      } else {
        ++group;
      }
    }
  }
  for (auto& group : groups) (void)group->remove();
  std::error_code ignored;
  std::filesystem::remove_all(data_dir_ / "groups" / name, ignored);
  auto status = topic->remove();
  topic->notify();
  if (logger_) logger_->info("topic '{}' deleted with {} group(s)", name, groups.size());
  return status;
}

TopicDescription Broker::describe(const std::shared_ptr<Topic>& topic) {
  TopicDescription description;
  description.name = topic->name();
  description.spec = topic->spec();
  description.limits = limits();
  for (const auto& partition : topic->partitions()) {
    auto stats = partition->stats();
    description.bytes += stats.bytes;
    description.records += stats.end_offset - stats.start_offset;
    description.partitions.push_back({partition->id(), stats});
  }
  std::vector<std::shared_ptr<ConsumerGroup>> groups;
  {
    std::lock_guard lock(mutex_);
    for (const auto& [key, group] : groups_) {
      if (key.topic == topic->name()) groups.push_back(group);
    }
  }
  for (const auto& group : groups) description.groups.push_back(group->describe());
  description.limits.topic_groups = static_cast<uint32_t>(groups.size());
  return description;
}

std::vector<TopicDescription> Broker::list_topics() {
  std::vector<std::shared_ptr<Topic>> topics;
  {
    std::lock_guard lock(mutex_);
    for (const auto& [_, topic] : topics_) topics.push_back(topic);
  }
  std::vector<TopicDescription> out;
  for (const auto& topic : topics) {
    TopicDescription description;
    description.name = topic->name();
    description.spec = topic->spec();
    for (const auto& partition : topic->partitions()) {
      auto stats = partition->stats();
      description.bytes += stats.bytes;
      description.records += stats.end_offset - stats.start_offset;
    }
    out.push_back(std::move(description));
  }
  return out;
}

absl::StatusOr<TopicDescription> Broker::describe_topic(const std::string& name) {
  auto topic = find_topic(name);
  if (!topic.ok()) return topic.status();
  return describe(*topic);
}

absl::StatusOr<uint32_t> Broker::add_partitions(const std::string& name, uint32_t partitions) {
  auto topic = find_topic(name);
  if (!topic.ok()) return topic.status();
  if (partitions > options_.max_partitions) {
    return absl::ResourceExhaustedError(
        str_cat("topic '", name, "': ", partitions,
                " partitions exceed max_partitions=", options_.max_partitions));
  }
  uint32_t current = (*topic)->partition_count();
  if (partitions < current) {
    return absl::FailedPreconditionError(
        str_cat("topic '", name, "' has ", current, " partitions and cannot shrink to ", partitions,
                "; partitions can only grow (ask for ", current, " or more)"));
  }
  if (auto status = (*topic)->grow(partitions); !status.ok()) return status;
  return (*topic)->partition_count();
}

absl::StatusOr<std::shared_ptr<Topic>> Broker::topic_for_produce(const std::string& name) {
  std::lock_guard lock(mutex_);
  auto it = topics_.find(name);
  if (it != topics_.end()) return it->second;
  if (!options_.auto_create_topics) {
    return absl::NotFoundError(str_cat(
        "topic '", name, "' does not exist and auto_create_topics is off; `broker topic create ",
        name, "` creates it"));
  }
  return create_topic_locked(name, {});
}

bool Broker::produce_is_quick(const ProduceCall& call) {
  constexpr size_t kQuickBytes = 256 * 1024;
  constexpr uint32_t kQuickPartitions = 64;  // partitions checked for a round-robin produce
  if (!options_.inline_produce || stop_.stop_requested()) return false;
  size_t bytes = 0;
  for (const auto& record : call.records) bytes += record_user_bytes(record);
  if (bytes > kQuickBytes) return false;
  std::shared_ptr<Topic> topic;
  {
    std::lock_guard lock(mutex_);
    auto it = topics_.find(call.topic);
    if (it == topics_.end()) return false;
    topic = it->second;
  }
  uint32_t count = topic->partition_count();
  if (call.partition) {
    auto partition = *call.partition < count ? topic->partition(*call.partition) : nullptr;
    return partition && partition->append_is_quick();
  }
  if (count > kQuickPartitions) return false;
  for (uint32_t id = 0; id < count; ++id) {
    auto partition = topic->partition(id);
    if (!partition || !partition->append_is_quick()) return false;
  }
  return true;
}

void Broker::produce(ProduceCall call, std::function<void(ProduceResult)> done) {
  auto started = std::chrono::steady_clock::now();
  auto fail = [&](absl::Status status, const char* reason) {
    if (produce_errors_) produce_errors_->with({reason}).inc();
    done(std::move(status));
  };
  if (stop_.stop_requested())
    return fail(absl::UnavailableError("broker is stopping; retry"), "stopping");
  if (auto status = validate_topic_name(call.topic); !status.ok()) return fail(status, "invalid");
  if (call.records.empty())
    return fail(absl::InvalidArgumentError("produce needs at least one record"), "invalid");
  for (size_t i = 0; i < call.records.size(); ++i) {
    size_t size = record_user_bytes(call.records[i]);
    if (size > options_.max_record_bytes) {
      return fail(
          absl::ResourceExhaustedError(str_cat(
              "record ", i, " is ", size, " bytes; max_record_bytes=", options_.max_record_bytes)),
          "record_too_large");
    }
  }
  if (auto status = check_disk_reserve(str_cat("produce to '", call.topic, "'")); !status.ok())
    return fail(status, "disk_reserve");
  auto topic_or = topic_for_produce(call.topic);
  if (!topic_or.ok()) return fail(topic_or.status(), "topic");
  auto topic = *topic_or;
  if (call.partition) {
    uint32_t wanted = *call.partition;
    if (wanted >= topic->partition_count()) {
      if (!options_.produce_grows_partitions && !call.grow_partitions) {
        return fail(
            absl::InvalidArgumentError(str_cat(
                "topic '", call.topic, "' has ", topic->partition_count(),
                " partitions; partition ", wanted, " does not exist (use 0..",
                topic->partition_count() - 1,
                ", `broker topic add-partitions` to grow it, or produce_grows_partitions)")),
            "invalid_partition");
      }
      if (wanted >= options_.max_partitions) {
        return fail(absl::ResourceExhaustedError(
                        str_cat("topic '", call.topic, "' has ", topic->partition_count(),
                                " partitions; partition ", wanted,
                                " exceeds max_partitions=", options_.max_partitions)),
                    "max_partitions");
      }
      if (auto status = topic->grow(wanted + 1); !status.ok()) return fail(status, "io");
      if (logger_)
        logger_->info("topic '{}' grown to {} partitions by a produce", call.topic, wanted + 1);
    }
  }
  uint32_t count = topic->partition_count();
  int64_t now = now_ms();
  std::map<uint32_t, std::vector<Record>> by_partition;
  for (auto& record : call.records) {
    if (record.timestamp_ms == 0) record.timestamp_ms = now;
    uint32_t partition;
    if (call.partition) {
      partition = *call.partition;
    } else if (!record.key.empty()) {
      partition = static_cast<uint32_t>(stable_key_hash(record.key) % count);
    } else {
      partition = static_cast<uint32_t>(topic->next_round_robin() % count);
    }
    by_partition[partition].push_back(std::move(record));
  }
  std::vector<PartitionAppend> appends;
  std::vector<std::pair<std::shared_ptr<Partition>, uint64_t>> to_sync;
  for (auto& [id, records] : by_partition) {
    auto partition = topic->partition(id);
    auto appended = partition->append(records);
    if (!appended.ok()) {
      if (logger_)
        logger_->error("produce to '{}' partition {} failed: {}", call.topic, id,
                       appended.status().message());
      topic->notify();  // earlier partitions of this request may have been written
      return fail(appended.status(),
                  absl::IsResourceExhausted(appended.status()) ? "disk_full" : "io");
    }
    appends.push_back({id, appended->first_offset, appended->count});
    to_sync.emplace_back(partition, appended->sync_sequence);
  }
  if (produced_) produced_->with({call.topic}).inc(static_cast<double>(call.records.size()));
  {
    // A consumer this append wakes takes its records on this thread, before
    // the producer's answer, not on a step thread after a hand-off.
    InlineStepScope woken_consumer;
    topic->notify();
  }
  Histogram* latency = produce_latency_ ? &produce_latency_->with({call.topic}) : nullptr;
  auto durability = call.durability.value_or(options_.default_durability);
  if (durability == Durability::kNone) {
    if (latency)
      latency->observe(
          std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
    done(std::move(appends));
    return;
  }
  // One answer once every partition written is durable.
  struct Pending {
    std::mutex mutex;
    size_t remaining;
    absl::Status status;
    std::vector<PartitionAppend> appends;
    std::function<void(ProduceResult)> done;
  };
  auto pending = std::make_shared<Pending>();
  pending->remaining = to_sync.size();
  pending->appends = std::move(appends);
  pending->done = std::move(done);
  Histogram* fsync_latency = fsync_latency_ ? &fsync_latency_->with({call.topic}) : nullptr;
  CounterFamily* errors = produce_errors_;
  for (auto& [partition, sequence] : to_sync) {
    committer_.await(
        partition, sequence, fsync_latency,
        [pending, latency, started, errors](absl::Status status) {
          std::unique_lock lock(pending->mutex);
          if (!status.ok() && pending->status.ok()) pending->status = status;
          if (--pending->remaining > 0) return;
          lock.unlock();
          if (latency)
            latency->observe(
                std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
          if (pending->status.ok()) {
            pending->done(std::move(pending->appends));
          } else {
            if (errors) errors->with({"fsync"}).inc();
            pending->done(pending->status);
          }
        });
  }
}

absl::StatusOr<std::shared_ptr<ConsumerGroup>> Broker::open_group(const std::string& topic_name,
                                                                  const std::string& group,
                                                                  std::optional<GroupMode> mode) {
  if (auto status = validate_topic_name(topic_name); !status.ok()) return status;
  if (auto status = validate_group_name(group); !status.ok()) return status;
  std::lock_guard lock(mutex_);
  auto topic = topics_.find(topic_name);
  std::shared_ptr<Topic> shared;
  if (topic == topics_.end()) {
    if (!options_.auto_create_topics) {
      return absl::NotFoundError(
          str_cat("topic '", topic_name, "' does not exist and auto_create_topics is off"));
    }
    auto created = create_topic_locked(topic_name, {});
    if (!created.ok()) return created.status();
    shared = *created;
  } else {
    shared = topic->second;
  }
  auto existing = groups_.find({topic_name, group});
  if (existing != groups_.end()) {
    if (mode && *mode != existing->second->mode()) {
      return absl::FailedPreconditionError(
          str_cat("group '", group, "' on '", topic_name, "' is in ",
                  existing->second->mode() == GroupMode::kQueue ? "QUEUE" : "LOG",
                  " mode; use another group name or leave mode unset"));
    }
    return existing->second;
  }
  if (groups_.size() >= options_.max_groups) {
    return absl::ResourceExhaustedError(
        str_cat("group '", group, "' on '", topic_name, "' not created: ", groups_.size(),
                " groups exist, max_groups=", options_.max_groups,
                "; delete unused topics (their groups go with them) or raise "
                "modules.broker.max_groups"));
  }
  if (size_t count = groups_of_locked(topic_name); count >= options_.max_groups_per_topic) {
    return absl::ResourceExhaustedError(
        str_cat("group '", group, "' on '", topic_name, "' not created: the topic has ", count,
                " groups, max_groups_per_topic=", options_.max_groups_per_topic,
                "; reuse a group name or raise modules.broker.max_groups_per_topic"));
  }
  return load_group(shared, group, mode);
}

absl::StatusOr<std::shared_ptr<ConsumerGroup>> Broker::find_group(const std::string& topic,
                                                                  const std::string& group) {
  std::lock_guard lock(mutex_);
  auto it = groups_.find({topic, group});
  if (it == groups_.end()) {
    return absl::NotFoundError(
        str_cat("group '", group, "' on topic '", topic, "' does not exist"));
  }
  return it->second;
}

std::vector<GroupInfo> Broker::list_groups(const std::string& topic) {
  std::vector<std::shared_ptr<ConsumerGroup>> groups;
  {
    std::lock_guard lock(mutex_);
    for (const auto& [key, group] : groups_) {
      if (topic.empty() || key.topic == topic) groups.push_back(group);
    }
  }
  std::vector<GroupInfo> out;
  for (const auto& group : groups) out.push_back(group->describe());
  return out;
}

absl::Status Broker::dead_letter(const std::string& topic_name, uint32_t partition, Record record) {
  std::string target = dead_letter_topic(topic_name);
  std::shared_ptr<Topic> topic;
  {
    std::lock_guard lock(mutex_);
    auto it = topics_.find(target);
    if (it != topics_.end()) {
      topic = it->second;
    } else {
      auto source = topics_.find(topic_name);
      CreateTopicOptions options;
      options.partitions = source == topics_.end() ? 1 : source->second->partition_count();
      auto created = create_topic_locked(target, options);
      if (!created.ok()) return created.status();
      topic = *created;
    }
  }
  if (partition >= topic->partition_count()) {
    if (auto status = topic->grow(partition + 1); !status.ok()) return status;
  }
  auto appended = topic->partition(partition)->append({std::move(record)});
  if (!appended.ok()) return appended.status();
  if (produced_) produced_->with({target}).inc();
  topic->notify();
  return absl::OkStatus();
}

void Broker::background(std::stop_token stop) {
  auto next_flush = std::chrono::steady_clock::now() + options_.flush_interval;
  auto next_retention = std::chrono::steady_clock::now();
  std::mutex sleep_mutex;
  std::condition_variable_any sleeper;
  while (!stop.stop_requested()) {
    {
      std::unique_lock lock(sleep_mutex);
      sleeper.wait_for(lock, stop, kTickInterval, [] { return false; });
    }
    if (stop.stop_requested()) break;
    std::vector<std::shared_ptr<ConsumerGroup>> groups;
    std::vector<std::shared_ptr<Topic>> topics;
    {
      std::lock_guard lock(mutex_);
      for (const auto& [_, group] : groups_) groups.push_back(group);
      for (const auto& [_, topic] : topics_) topics.push_back(topic);
    }
    auto now = std::chrono::steady_clock::now();
    for (auto& group : groups) group->tick(now);
    if (options_.file_idle_timeout.count() > 0)
      OpenFiles::close_unused_for(options_.file_idle_timeout);
    if (now >= next_flush) {
      next_flush = now + options_.flush_interval;
      for (auto& group : groups) {
        if (auto status = group->sync_state(); !status.ok() && logger_) {
          logger_->error("group '{}': state sync failed: {}", group->name(), status.message());
        }
      }
      // NONE-durability appends reach the disk within flush_interval.
      for (auto& topic : topics) {
        for (auto& partition : topic->partitions()) {
          if (partition->durable_sequence() < partition->appended_sequence())
            (void)partition->sync();
          log_error(partition->write_high_water(), "high-water mark");
        }
      }
    }
    if (now >= next_retention) {
      next_retention = now + options_.retention_check_interval;
      for (auto& topic : topics) {
        auto spec = topic->spec();
        for (auto& partition : topic->partitions()) {
          auto removed =
              partition->enforce_retention(spec.retention_ms, spec.retention_bytes, now_ms());
          if (removed.ok() && *removed > 0 && logger_) {
            logger_->info("topic '{}' partition {}: retention deleted {} segment(s)", topic->name(),
                          partition->id(), *removed);
          } else if (!removed.ok() && logger_) {
            logger_->error("topic '{}' partition {}: retention failed: {}", topic->name(),
                           partition->id(), removed.status().message());
          }
        }
      }
    }
  }
}

std::vector<CollectedFamily> Broker::collect_gauges() {
  CollectedFamily backlog{
      "telekern_broker_partition_backlog",
      "Records not yet consumed by the slowest group (all stored records when no group)",
      "gauge",
      {}};
  CollectedFamily disk{
      "telekern_broker_disk_usage_bytes", "Bytes of segment files on disk", "gauge", {}};
  CollectedFamily segments{"telekern_broker_segments", "Segment files per partition", "gauge", {}};
  CollectedFamily lag{
      "telekern_broker_group_lag", "Records behind the end of the topic, by group", "gauge", {}};
  CollectedFamily in_flight{"telekern_broker_group_in_flight",
                            "QUEUE-mode deliveries not yet acked, by group",
                            "gauge",
                            {}};
  CollectedFamily faults{"telekern_broker_storage_faults_total",
                         "Storage faults met by kind: torn_tail, corrupt_batch, missing_offsets, "
                         "offsets_skipped, index_rebuilt",
                         "counter",
                         {}};
  CollectedFamily degraded{"telekern_broker_partition_degraded",
                           "1 when a partition holds unreadable data (served around)",
                           "gauge",
                           {}};
  std::vector<std::shared_ptr<Topic>> topics;
  std::vector<std::shared_ptr<ConsumerGroup>> groups;
  {
    std::lock_guard lock(mutex_);
    for (const auto& [_, topic] : topics_) topics.push_back(topic);
    for (const auto& [_, group] : groups_) groups.push_back(group);
  }
  std::map<std::pair<std::string, uint32_t>, uint64_t> slowest;
  for (const auto& group : groups) {
    auto info = group->describe();
    lag.samples.push_back(
        {lag.name, {{"topic", info.topic}, {"group", info.name}}, double(info.lag)});
    in_flight.samples.push_back(
        {in_flight.name, {{"topic", info.topic}, {"group", info.name}}, double(info.in_flight)});
    for (const auto& partition : info.partitions) {
      auto& value = slowest[{info.topic, partition.partition}];
      value = std::max(value, partition.lag);
    }
  }
  for (const auto& topic : topics) {
    for (const auto& partition : topic->partitions()) {
      auto stats = partition->stats();
      std::vector<std::pair<std::string, std::string>> labels{
          {"topic", topic->name()}, {"partition", std::to_string(partition->id())}};
      auto found = slowest.find({topic->name(), partition->id()});
      double pending = found != slowest.end() ? double(found->second)
                                              : double(stats.end_offset - stats.start_offset);
      backlog.samples.push_back({backlog.name, labels, pending});
      disk.samples.push_back({disk.name, labels, double(stats.bytes)});
      segments.samples.push_back({segments.name, labels, double(stats.segments)});
      degraded.samples.push_back(
          {degraded.name, labels, partition->degraded_reason().has_value() ? 1.0 : 0.0});
      for (const auto& [kind, count] : partition->faults()) {
        auto with_kind = labels;
        with_kind.emplace_back("kind", kind);
        faults.samples.push_back({faults.name, with_kind, double(count)});
      }
    }
  }
  auto files = OpenFiles::usage();
  CollectedFamily open_files{"telekern_broker_open_files",
                             "Descriptors the broker's files hold now (segments, indexes, group "
                             "state), shared by every broker in the process",
                             "gauge",
                             {{"telekern_broker_open_files", {}, double(files.open)}}};
  CollectedFamily open_files_cap{
      "telekern_broker_open_files_cap",
      "max_open_files in force: idle files close above it (0 = unbounded)",
      "gauge",
      {{"telekern_broker_open_files_cap", {}, double(files.cap)}}};
  CollectedFamily reopens{"telekern_broker_file_reopens_total",
                          "Files opened again after an idle close (reads of old data)",
                          "counter",
                          {{"telekern_broker_file_reopens_total", {}, double(files.reopens)}}};
  CollectedFamily quota_used{"telekern_broker_quota_used",
                             "Usage of each quota: topics, groups, open_files, and the groups "
                             "of the busiest topic (groups_per_topic)",
                             "gauge",
                             {}};
  CollectedFamily quota_limit{"telekern_broker_quota_limit",
                              "Each quota's limit (max_topics, max_groups, max_open_files, "
                              "max_groups_per_topic)",
                              "gauge",
                              {}};
  std::map<std::string, size_t> groups_by_topic;
  for (const auto& group : groups) ++groups_by_topic[group->topic_name()];
  size_t busiest = 0;
  for (const auto& [_, count] : groups_by_topic) busiest = std::max(busiest, count);
  auto quota = [&](const std::string& name, double used, double limit) {
    quota_used.samples.push_back({quota_used.name, {{"quota", name}}, used});
    quota_limit.samples.push_back({quota_limit.name, {{"quota", name}}, limit});
  };
  quota("topics", double(topics.size()), options_.max_topics);
  quota("groups", double(groups.size()), options_.max_groups);
  quota("groups_per_topic", double(busiest), options_.max_groups_per_topic);
  quota("open_files", double(files.open), double(files.cap));
  CollectedFamily free_disk{"telekern_broker_free_disk_bytes",
                            "Free bytes on the data directory's file system",
                            "gauge",
                            {}};
  CollectedFamily reserve{"telekern_broker_free_disk_reserve_bytes",
                          "Free bytes below which produce and topic creation are refused",
                          "gauge",
                          {}};
  if (auto space = disk_space(); space.ok()) {
    free_disk.samples.push_back({free_disk.name, {}, double(space->free_bytes)});
    reserve.samples.push_back({reserve.name, {}, double(disk_reserve(*space))});
  }
  return {backlog,    disk,           segments, lag,        in_flight,   faults,    degraded,
          open_files, open_files_cap, reopens,  quota_used, quota_limit, free_disk, reserve};
}

}  // namespace telekern::broker
