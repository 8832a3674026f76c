#include "kafka_source.h"

#include <librdkafka/rdkafka.h>
#include <poll.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <deque>
#include <functional>
#include <limits>
#include <map>
#include <string_view>

#include "kafka_batch_fetch.h"
#include "telekern/strings.h"

namespace telekern::tracer {
namespace {

using Clock = std::chrono::steady_clock;

struct MetadataDeleter {
  void operator()(const rd_kafka_metadata_t* metadata) const {
    rd_kafka_metadata_destroy(metadata);
  }
};
struct PartitionListDeleter {
  void operator()(rd_kafka_topic_partition_list_t* list) const {
    rd_kafka_topic_partition_list_destroy(list);
  }
};
struct MessageDeleter {
  void operator()(rd_kafka_message_t* message) const { rd_kafka_message_destroy(message); }
};
using PartitionList = std::unique_ptr<rd_kafka_topic_partition_list_t, PartitionListDeleter>;
using Message = std::unique_ptr<rd_kafka_message_t, MessageDeleter>;

absl::Status set(rd_kafka_conf_t* conf, const std::string& name, const std::string& value) {
  char error[512];
  if (rd_kafka_conf_set(conf, name.c_str(), value.c_str(), error, sizeof(error)) !=
      RD_KAFKA_CONF_OK) {
    bool secret = name.find("password") != std::string::npos;
    return absl::InvalidArgumentError(
        str_cat("kafka setting ", name, "=", secret ? "***" : value, ": ", error));
  }
  return absl::OkStatus();
}

}  // namespace

void KafkaSource::HandleDeleter::operator()(rd_kafka_s* handle) const {
  rd_kafka_consumer_close(handle);
  rd_kafka_destroy(handle);
}

absl::StatusOr<std::unique_ptr<KafkaSource>> KafkaSource::create(KafkaSourceOptions options) {
  if (options.brokers.empty())
    return absl::InvalidArgumentError(
        "no Kafka bootstrap servers: set kafka_brokers in the request or "
        "modules.tracer.kafka_brokers");
  std::unique_ptr<KafkaSource> source(new KafkaSource(std::move(options)));
  auto admin = source->make_consumer();
  if (!admin.ok()) return admin.status();
  source->admin_ = std::move(*admin);
  return source;
}

KafkaSource::~KafkaSource() = default;

std::vector<std::pair<std::string, std::string>> consumer_settings(
    const KafkaSourceOptions& options) {
  std::vector<std::pair<std::string, std::string>> settings = {
      {"bootstrap.servers", options.brokers},
      {"group.id", "telekern-tracer"},
      {"enable.auto.commit", "false"},
      {"enable.auto.offset.store", "false"},
      {"enable.partition.eof", "true"},
      {"isolation.level", options.read_committed ? "read_committed" : "read_uncommitted"},
      {"fetch.max.bytes", std::to_string(options.fetch.fetch_max_bytes)},
      {"max.partition.fetch.bytes", std::to_string(options.fetch.max_partition_fetch_bytes)},
      // A response may be as big as a fetch allows (plus protocol framing).
      {"receive.message.max.bytes",
       std::to_string(std::max(100000000, options.fetch.fetch_max_bytes + 1048576))},
      {"fetch.wait.max.ms", std::to_string(options.fetch.fetch_wait_max_ms)},
      {"queued.max.messages.kbytes", std::to_string(options.fetch.queued_max_messages_kbytes)},
      {"queued.min.messages", "100000"},
      {"socket.timeout.ms", std::to_string(options.request_timeout.count())},
      {"log_level", "3"},
  };
  settings.insert(settings.end(), options.properties.begin(), options.properties.end());
  return settings;
}

absl::StatusOr<KafkaSource::Handle> KafkaSource::make_consumer() {
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  for (const auto& [name, value] : consumer_settings(options_)) {
    if (auto status = set(conf, name, value); !status.ok()) {
      rd_kafka_conf_destroy(conf);
      return status;
    }
  }
  char error[512];
  rd_kafka_t* handle = rd_kafka_new(RD_KAFKA_CONSUMER, conf, error, sizeof(error));
  if (handle == nullptr) {
    rd_kafka_conf_destroy(conf);
    return absl::InternalError(str_cat("cannot create a Kafka consumer: ", error));
  }
  return Handle(handle);
}

absl::StatusOr<KafkaSource::Handle> KafkaSource::take_consumer() {
  {
    std::lock_guard lock(mutex_);
    if (!idle_.empty()) {
      Handle consumer = std::move(idle_.back());
      idle_.pop_back();
      return consumer;
    }
  }
  return make_consumer();
}

void KafkaSource::give_back(Handle consumer) {
  rd_kafka_assign(consumer.get(), nullptr);
  std::lock_guard lock(mutex_);
  idle_.push_back(std::move(consumer));
}

absl::StatusOr<std::vector<std::string>> KafkaSource::list_topics() {
  const rd_kafka_metadata_t* raw = nullptr;
  auto error = rd_kafka_metadata(admin_.get(), 1, nullptr, &raw,
                                 static_cast<int>(options_.request_timeout.count()));
  if (error != RD_KAFKA_RESP_ERR_NO_ERROR)
    return absl::UnavailableError(str_cat("Kafka metadata from ", options_.brokers, ": ",
                                          rd_kafka_err2str(error),
                                          "; check kafka_brokers and that the cluster is up"));
  std::unique_ptr<const rd_kafka_metadata_t, MetadataDeleter> metadata(raw);
  std::vector<std::string> topics;
  for (int i = 0; i < metadata->topic_cnt; ++i) {
    std::string name = metadata->topics[i].topic;
    if (name.rfind("__", 0) == 0) continue;  // internal (__consumer_offsets)
    topics.push_back(std::move(name));
  }
  std::sort(topics.begin(), topics.end());
  return topics;
}

absl::StatusOr<ScanUnit> KafkaSource::plan(const std::string& topic, const ScanLimits& limits) {
  return std::move(plan_topics({topic}, limits).front());
}

std::vector<absl::StatusOr<ScanUnit>> KafkaSource::plan_topics(
    const std::vector<std::string>& topics, const ScanLimits& limits) {
  int timeout = static_cast<int>(options_.request_timeout.count());
  std::vector<absl::StatusOr<ScanUnit>> result;
  // Metadata of every topic: asking for one by name would create it on a
  // cluster with auto.create.topics.enable.
  const rd_kafka_metadata_t* raw = nullptr;
  auto error = rd_kafka_metadata(admin_.get(), 1, nullptr, &raw, timeout);
  if (error != RD_KAFKA_RESP_ERR_NO_ERROR) {
    for (const auto& topic : topics)
      result.push_back(absl::UnavailableError(
          str_cat("metadata of topic '", topic, "': ", rd_kafka_err2str(error))));
    return result;
  }
  std::unique_ptr<const rd_kafka_metadata_t, MetadataDeleter> metadata(raw);
  std::map<std::string_view, const rd_kafka_metadata_topic_t*> by_name;
  for (int i = 0; i < metadata->topic_cnt; ++i)
    by_name[metadata->topics[i].topic] = &metadata->topics[i];
  {
    std::lock_guard lock(metadata_mutex_);
    for (int i = 0; i < metadata->broker_cnt; ++i)
      brokers_[metadata->brokers[i].id] = {metadata->brokers[i].host, metadata->brokers[i].port};
    for (int i = 0; i < metadata->topic_cnt; ++i) {
      const auto& topic = metadata->topics[i];
      for (int p = 0; p < topic.partition_cnt; ++p)
        leaders_[{topic.topic, topic.partitions[p].id}] = topic.partitions[p].leader;
    }
  }
  for (const auto& topic : topics) {
    auto found = by_name.find(topic);
    if (found == by_name.end()) {
      result.push_back(absl::NotFoundError(str_cat("topic '", topic, "' does not exist")));
      continue;
    }
    if (found->second->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      result.push_back(absl::UnavailableError(
          str_cat("topic '", topic, "': ", rd_kafka_err2str(found->second->err))));
      continue;
    }
    ScanUnit unit{topic, {}};
    for (int i = 0; i < found->second->partition_cnt; ++i) {
      PartitionPlan plan;
      plan.partition = found->second->partitions[i].id;
      unit.partitions.push_back(plan);
    }
    std::sort(unit.partitions.begin(), unit.partitions.end(),
              [](const auto& a, const auto& b) { return a.partition < b.partition; });
    result.push_back(std::move(unit));
  }
  if (limits.skip_offsets) return result;

  // One ListOffsets round for every partition of every topic planned so far:
  // `timestamp` is a time in ms, or RD_KAFKA_OFFSET_BEGINNING / _END for the
  // watermarks (what rd_kafka_query_watermark_offsets asks, one partition at
  // a time). `apply` gets each partition's offset; an error fails its topic.
  auto offsets_at = [&](int64_t timestamp, const char* what,
                        const std::function<void(PartitionPlan&, int64_t)>& apply) {
    PartitionList list(rd_kafka_topic_partition_list_new(1));
    for (auto& unit : result) {
      if (!unit.ok()) continue;
      for (const auto& plan : unit->partitions)
        rd_kafka_topic_partition_list_add(list.get(), unit->topic.c_str(), plan.partition)->offset =
            timestamp;
    }
    if (list->cnt == 0) return;
    auto list_error = rd_kafka_offsets_for_times(admin_.get(), list.get(), timeout);
    for (auto& unit : result) {
      if (!unit.ok()) continue;
      if (list_error != RD_KAFKA_RESP_ERR_NO_ERROR) {
        unit = absl::UnavailableError(
            str_cat(what, " of topic '", unit->topic, "': ", rd_kafka_err2str(list_error)));
        continue;
      }
      std::string failure;
      for (auto& plan : unit->partitions) {
        auto* entry =
            rd_kafka_topic_partition_list_find(list.get(), unit->topic.c_str(), plan.partition);
        if (entry == nullptr) {
          failure = str_cat(what, " of ", unit->topic, "[", plan.partition, "]: no answer");
        } else if (entry->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
          failure = str_cat(what, " of ", unit->topic, "[", plan.partition,
                            "]: ", rd_kafka_err2str(entry->err));
        } else {
          apply(plan, entry->offset);
        }
        if (!failure.empty()) break;
      }
      if (!failure.empty()) unit = absl::UnavailableError(failure);
    }
  };
  offsets_at(RD_KAFKA_OFFSET_BEGINNING, "watermarks", [](PartitionPlan& plan, int64_t offset) {
    plan.low = offset;
    plan.start = offset;
  });
  offsets_at(RD_KAFKA_OFFSET_END, "watermarks",
             [](PartitionPlan& plan, int64_t offset) { plan.stop = offset; });
  if (limits.since_ms <= 0) return result;
  // The first offset at or after since, per partition.
  constexpr int64_t kSearch = std::numeric_limits<int64_t>::min();
  offsets_at(limits.since_ms, "offset by time", [&](PartitionPlan& plan, int64_t offset) {
    if (offset >= 0) {
      plan.start = offset;
    } else if (plan.stop > plan.low && plan.low >= 0) {
      plan.start = kSearch;
    } else {
      plan.start = plan.stop;
    }
  });
  for (auto& unit : result) {
    if (!unit.ok()) continue;
    for (auto& plan : unit->partitions) {
      if (plan.start != kSearch) continue;
      // -1 means "no record at or after since" from a broker that keeps
      // timestamp indexes; a broker without them (some proxies, the mock
      // cluster) answers the same: check by a search over offsets.
      auto start =
          search_by_time(unit->topic, plan.partition, plan.low, plan.stop, limits.since_ms);
      if (!start.ok()) {
        unit = start.status();
        break;
      }
      plan.start = *start;
    }
  }
  return result;
}

absl::StatusOr<std::pair<int64_t, int64_t>> KafkaSource::read_one(const std::string& topic,
                                                                  int32_t partition,
                                                                  int64_t offset) {
  PartitionList list(rd_kafka_topic_partition_list_new(1));
  rd_kafka_topic_partition_list_add(list.get(), topic.c_str(), partition)->offset = offset;
  if (auto error = rd_kafka_assign(admin_.get(), list.get()); error != RD_KAFKA_RESP_ERR_NO_ERROR)
    return absl::UnavailableError(
        str_cat("assign ", topic, "[", partition, "]: ", rd_kafka_err2str(error)));
  auto deadline = Clock::now() + options_.request_timeout;
  absl::StatusOr<std::pair<int64_t, int64_t>> result =
      absl::DeadlineExceededError(str_cat("no record of ", topic, "[", partition, "] at ", offset,
                                          " within ", options_.request_timeout.count(), " ms"));
  while (Clock::now() < deadline) {
    Message message(rd_kafka_consumer_poll(admin_.get(), 100));
    if (!message) continue;
    if (message->partition != partition || topic != rd_kafka_topic_name(message->rkt)) continue;
    if (message->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      result = std::make_pair(message->offset, int64_t{-1});
      break;
    }
    if (message->err != RD_KAFKA_RESP_ERR_NO_ERROR || message->offset < offset) continue;
    rd_kafka_timestamp_type_t type;
    result = std::make_pair(message->offset, rd_kafka_message_timestamp(message.get(), &type));
    break;
  }
  rd_kafka_assign(admin_.get(), nullptr);
  return result;
}

absl::StatusOr<int64_t> KafkaSource::search_by_time(const std::string& topic, int32_t partition,
                                                    int64_t low, int64_t high, int64_t since_ms) {
  // First offset whose record is at or after since, assuming times grow
  // along the partition (older records after it are still filtered out).
  // Interpolation on the timestamps seen at both ends (a few reads for
  // evenly spread times), bisection when it stops narrowing.
  auto first = read_one(topic, partition, low);
  if (!first.ok()) return first.status();
  if (first->second < 0 || first->second >= since_ms) return low;
  int64_t low_time = first->second;
  low = first->first + 1;
  int64_t high_time = -1;  // unknown
  int steps = 0;
  while (low < high) {
    int64_t middle = low + (high - low) / 2;
    if (high_time > low_time && steps % 2 == 0) {
      double fraction =
          static_cast<double>(since_ms - low_time) / static_cast<double>(high_time - low_time);
      middle = low + static_cast<int64_t>(fraction * static_cast<double>(high - low));
      middle = std::clamp<int64_t>(middle, low, high - 1);
    }
    ++steps;
    auto found = read_one(topic, partition, middle);
    if (!found.ok()) return found.status();
    auto [offset, timestamp] = *found;
    if (timestamp < 0 || timestamp >= since_ms) {
      high = middle;
      if (timestamp >= 0) high_time = timestamp;
    } else {
      low = offset + 1;
      low_time = timestamp;
    }
  }
  return low;
}

absl::Status KafkaSource::scan(const ScanUnit& unit, const ScanLimits& limits, UnitSink& sink,
                               std::stop_token stop) {
  return scan_together({unit}, limits, {&sink}, stop);
}

std::optional<KafkaSource::BrokerAddress> KafkaSource::leader_of(const std::string& topic,
                                                                 int32_t partition) {
  std::lock_guard lock(metadata_mutex_);
  auto leader = leaders_.find({topic, partition});
  if (leader == leaders_.end()) return std::nullopt;
  auto broker = brokers_.find(leader->second);
  if (broker == brokers_.end()) return std::nullopt;
  return broker->second;
}

bool KafkaSource::can_scan_batches(const ScanLimits& limits) const {
  if (!options_.fetch.batch_scan || limits.read_committed || limits.skip_offsets) return false;
  // A plain TCP connection reading uncommitted records only: TLS, SASL and
  // read_committed (set in kafka.properties too) stay with librdkafka.
  for (const auto& [name, value] : options_.properties) {
    std::string lower = value;
    std::transform(lower.begin(), lower.end(), lower.begin(),
                   [](unsigned char c) { return std::tolower(c); });
    if (name == "security.protocol" && lower != "plaintext") return false;
    if (name == "isolation.level" && lower != "read_uncommitted") return false;
  }
  return true;
}

// What a scan knows of each partition it reads.
struct KafkaCursor {
  int64_t stop = -1;
  int64_t next = -1;
  bool active = false;
  bool handed_over = false;  // the batch scan stopped here: librdkafka goes on
};
struct KafkaUnitState {
  std::vector<KafkaCursor> cursors;  // by partition id
  size_t active = 0;
  const rd_kafka_topic_t* topic = nullptr;  // librdkafka's handle, once a record showed it
};

struct KafkaScanState {
  const std::vector<ScanUnit>& units;
  const std::vector<UnitSink*>& sinks;
  std::vector<KafkaUnitState> states;
  size_t active = 0;

  void finish(size_t u, int32_t partition) {
    states[u].cursors[partition].active = false;
    states[u].active--;
    active--;
  }
  // The unit's topic wants no more (max_messages); the other units go on.
  void refuse(size_t u) {
    for (size_t p = 0; p < states[u].cursors.size(); ++p) {
      if (states[u].cursors[p].active) finish(u, static_cast<int32_t>(p));
    }
  }
  void report_positions() {
    for (size_t u = 0; u < units.size(); ++u) {
      for (size_t p = 0; p < states[u].cursors.size(); ++p) {
        if (states[u].cursors[p].active)
          sinks[u]->position(static_cast<int32_t>(p), states[u].cursors[p].next);
      }
    }
  }
  void fail_inactive(size_t u, int32_t partition, std::chrono::milliseconds inactivity) {
    const KafkaCursor& cursor = states[u].cursors[partition];
    sinks[u]->failed(partition,
                     str_cat("no record for ", inactivity.count(), " ms at offset ", cursor.next,
                             cursor.stop >= 0 ? str_cat(" of ", cursor.stop) : std::string(),
                             " (inactivity timeout)"));
    finish(u, partition);
  }
};

absl::Status KafkaSource::scan_together(const std::vector<ScanUnit>& units,
                                        const ScanLimits& limits,
                                        const std::vector<UnitSink*>& sinks, std::stop_token stop) {
  KafkaScanState scan{units, sinks, std::vector<KafkaUnitState>(units.size())};
  for (size_t u = 0; u < units.size(); ++u) {
    for (const auto& plan : units[u].partitions) {
      if (plan.stop >= 0 && plan.start >= plan.stop) {
        sinks[u]->reached_end(plan.partition, plan.stop);
        continue;
      }
      auto& cursors = scan.states[u].cursors;
      if (cursors.size() <= static_cast<size_t>(plan.partition)) cursors.resize(plan.partition + 1);
      cursors[plan.partition] = {plan.stop, plan.start, true, false};
      scan.states[u].active++;
      scan.active++;
    }
  }
  if (scan.active > 0 && can_scan_batches(limits)) scan_batches(scan, limits, stop);
  if (scan.active == 0 || stop.stop_requested()) return absl::OkStatus();

  // librdkafka's consumer: every partition still to read (all of them when
  // the batch scan could not run) assigned to one consumer, so a fetch
  // carries all those its broker leads; each stops at its own stop offset.
  PartitionList list(rd_kafka_topic_partition_list_new(1));
  for (size_t u = 0; u < units.size(); ++u) {
    for (size_t p = 0; p < scan.states[u].cursors.size(); ++p) {
      const KafkaCursor& cursor = scan.states[u].cursors[p];
      if (!cursor.active) continue;
      rd_kafka_topic_partition_list_add(list.get(), units[u].topic.c_str(), static_cast<int32_t>(p))
          ->offset = cursor.next >= 0 ? cursor.next : RD_KAFKA_OFFSET_BEGINNING;
    }
  }
  auto consumer = take_consumer();
  if (!consumer.ok()) return consumer.status();
  rd_kafka_t* rk = consumer->get();
  if (auto error = rd_kafka_assign(rk, list.get()); error != RD_KAFKA_RESP_ERR_NO_ERROR) {
    give_back(std::move(*consumer));
    std::string names;
    for (const auto& unit : units) names += (names.empty() ? "" : ", ") + unit.topic;
    return absl::UnavailableError(str_cat("assign ", names, ": ", rd_kafka_err2str(error)));
  }
  // The unit a record belongs to: by librdkafka's topic handle, learnt from
  // the name the first time (a reused consumer may still hold a record of its
  // previous assignment: no unit, or an offset before the cursor).
  auto unit_of = [&](const rd_kafka_message_t* message) -> int {
    if (message->rkt == nullptr) return -1;
    for (size_t u = 0; u < units.size(); ++u) {
      if (scan.states[u].topic == message->rkt) return static_cast<int>(u);
    }
    const char* name = rd_kafka_topic_name(message->rkt);
    for (size_t u = 0; u < units.size(); ++u) {
      if (scan.states[u].topic == nullptr && units[u].topic == name) {
        scan.states[u].topic = message->rkt;
        return static_cast<int>(u);
      }
    }
    return -1;
  };
  rd_kafka_queue_t* queue = rd_kafka_queue_get_consumer(rk);
  auto last_record = Clock::now();
  std::vector<rd_kafka_message_t*> batch(4096);
  RecordView record;
  while (scan.active > 0 && !stop.stop_requested()) {
    ssize_t count = rd_kafka_consume_batch_queue(queue, 100, batch.data(), batch.size());
    if (count <= 0) {
      if (Clock::now() - last_record >= limits.inactivity) {
        for (size_t u = 0; u < units.size(); ++u) {
          for (size_t p = 0; p < scan.states[u].cursors.size(); ++p) {
            if (scan.states[u].cursors[p].active)
              scan.fail_inactive(u, static_cast<int32_t>(p), limits.inactivity);
          }
        }
        break;
      }
      continue;
    }
    last_record = Clock::now();
    for (ssize_t i = 0; i < count; ++i) {
      Message message(batch[i]);
      int u = unit_of(message.get());
      if (u < 0) continue;
      auto& cursors = scan.states[u].cursors;
      if (message->partition < 0 || static_cast<size_t>(message->partition) >= cursors.size())
        continue;
      KafkaCursor& cursor = cursors[message->partition];
      if (!cursor.active) continue;
      UnitSink& sink = *sinks[u];
      if (message->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        // End of what this consumer may read: the high watermark, or the last
        // stable offset with read_committed.
        if (cursor.stop < 0 || message->offset >= cursor.stop || limits.read_committed) {
          sink.position(message->partition, message->offset);
          sink.reached_end(message->partition, message->offset);
          scan.finish(u, message->partition);
        }
        continue;
      }
      if (message->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        sink.failed(message->partition,
                    str_cat("read ", units[u].topic, "[", message->partition, "] at ", cursor.next,
                            ": ", rd_kafka_message_errstr(message.get())));
        scan.finish(u, message->partition);
        continue;
      }
      if (message->offset < cursor.next) continue;  // of a previous assignment
      record.topic = units[u].topic;
      record.partition = message->partition;
      record.offset = message->offset;
      rd_kafka_timestamp_type_t type;
      int64_t timestamp = rd_kafka_message_timestamp(message.get(), &type);
      record.timestamp_ms = timestamp > 0 ? timestamp : 0;
      record.key = {static_cast<const char*>(message->key), message->key_len};
      record.value = {static_cast<const char*>(message->payload), message->len};
      record.headers.clear();
      rd_kafka_headers_t* headers = nullptr;
      if (rd_kafka_message_headers(message.get(), &headers) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        const char* name;
        const void* value;
        size_t size;
        for (size_t h = 0; rd_kafka_header_get_all(headers, h, &name, &value, &size) ==
                           RD_KAFKA_RESP_ERR_NO_ERROR;
             ++h) {
          record.headers.emplace_back(name,
                                      std::string_view(static_cast<const char*>(value), size));
        }
      }
      cursor.next = message->offset + 1;
      if (!sink.record(record)) {
        scan.refuse(u);
        continue;
      }
      if (cursor.stop >= 0 && cursor.next >= cursor.stop && !limits.read_committed) {
        sink.reached_end(message->partition, cursor.stop);
        scan.finish(u, message->partition);
      }
    }
    scan.report_positions();
  }
  rd_kafka_queue_destroy(queue);
  give_back(std::move(*consumer));
  return absl::OkStatus();
}

void KafkaSource::scan_batches(KafkaScanState& scan, const ScanLimits& limits,
                               std::stop_token stop) {
  // One connection per leader broker of the group's partitions and one
  // fetch in flight per partition: a partition's next fetch leaves as soon
  // as its answer is read, whatever the other partitions and brokers are
  // doing (a broker answers the requests of a connection in order). A scan
  // is a chain of fetches per partition (the next offset is known only from
  // the answer), so what it waits for is round trips; none waits for another.
  struct Link {
    std::optional<BrokerConnection> connection;
    std::deque<std::pair<int32_t, std::pair<size_t, int32_t>>> in_flight;  // correlation, (u, p)
    std::vector<std::pair<size_t, int32_t>> partitions;                    // (unit, partition)
    Clock::time_point last_progress;
  };
  std::vector<Link> links;
  std::map<std::pair<std::string, int>, size_t> link_of;
  for (size_t u = 0; u < scan.units.size(); ++u) {
    for (size_t p = 0; p < scan.states[u].cursors.size(); ++p) {
      KafkaCursor& cursor = scan.states[u].cursors[p];
      if (!cursor.active) continue;
      auto leader = leader_of(scan.units[u].topic, static_cast<int32_t>(p));
      if (!leader || cursor.next < 0 || cursor.stop < 0) {
        cursor.handed_over = true;
        continue;
      }
      auto [it, added] = link_of.try_emplace({leader->host, leader->port}, links.size());
      if (added) links.emplace_back();
      links[it->second].partitions.push_back({u, static_cast<int32_t>(p)});
    }
  }
  auto hand_over = [&](Link& link) {
    for (auto [u, p] : link.partitions) scan.states[u].cursors[p].handed_over = true;
    link.partitions.clear();
    link.in_flight.clear();
    link.connection.reset();
  };
  FetchLimits fetch_limits{options_.fetch.fetch_wait_max_ms, options_.fetch.fetch_max_bytes,
                           options_.fetch.max_partition_fetch_bytes};
  int32_t correlation = 0;
  auto wanted = [&](size_t u, int32_t p) {
    const KafkaCursor& cursor = scan.states[u].cursors[p];
    return cursor.active && !cursor.handed_over;
  };
  auto send = [&](Link& link, size_t u, int32_t p) {
    int32_t id = ++correlation;
    std::vector<FetchTopic> topics = {{scan.units[u].topic, {{p, scan.states[u].cursors[p].next}}}};
    if (!link.connection->send(encode_fetch_request(id, topics, fetch_limits)).ok()) {
      hand_over(link);
      return;
    }
    link.in_flight.push_back({id, {u, p}});
  };
  for (auto& [address, index] : link_of) {
    Link& link = links[index];
    auto connection =
        BrokerConnection::open(address.first, address.second, options_.request_timeout);
    if (!connection.ok()) {
      hand_over(link);
      continue;
    }
    link.connection.emplace(std::move(*connection));
    link.last_progress = Clock::now();
    auto partitions = link.partitions;
    for (auto [u, p] : partitions) {
      if (link.connection) send(link, u, p);
    }
  }

  std::string response, scratch;
  RecordView view;
  uint64_t scanned = 0;
  struct Count {
    std::atomic<uint64_t>& total;
    uint64_t& scanned;
    ~Count() { total += scanned; }
  } count{batch_scanned_, scanned};
  // Reads one answer of `link` and goes on with its partition; true when the
  // partition moved (or its topic refused more).
  auto answer = [&](Link& link) -> bool {
    auto [id, unit_partition] = link.in_flight.front();
    link.in_flight.pop_front();
    auto [u, p] = unit_partition;
    auto fetched =
        link.connection->receive(response).ok()
            ? decode_fetch_response(response, id)
            : absl::StatusOr<std::vector<FetchedPartition>>(absl::UnavailableError("no answer"));
    if (!fetched.ok()) {
      hand_over(link);
      return false;
    }
    KafkaCursor& cursor = scan.states[u].cursors[p];
    if (!wanted(u, p)) return false;
    const FetchedPartition* entry = nullptr;
    for (const auto& candidate : *fetched) {
      if (candidate.partition == p && candidate.topic == scan.units[u].topic) entry = &candidate;
    }
    if (entry == nullptr || entry->error != 0) {
      // Not the leader any more, out of range, ...: librdkafka knows what to do.
      cursor.handed_over = true;
      return false;
    }
    UnitSink& sink = *scan.sinks[u];
    view.topic = scan.units[u].topic;
    view.partition = p;
    int64_t before = cursor.next;
    bool refused = false, beyond = false;
    auto walk =
        walk_batches(entry->records, cursor.next, scratch, view, [&](const RecordView& record) {
          if (record.offset >= cursor.stop) {
            beyond = true;  // every offset before stop is behind
            return false;
          }
          cursor.next = record.offset + 1;
          ++scanned;
          if (!sink.record(record)) {
            refused = true;
            return false;
          }
          return true;
        });
    if (refused) {
      scan.refuse(u);
      return true;
    }
    if (!walk.ok()) {  // a batch it cannot read: librdkafka goes on from there
      cursor.handed_over = true;
      return cursor.next > before;
    }
    cursor.next = beyond ? cursor.stop : std::max(cursor.next, walk->next);
    if (cursor.next >= cursor.stop) {
      cursor.next = cursor.stop;
      sink.position(p, cursor.stop);
      sink.reached_end(p, cursor.stop);
      scan.finish(u, p);
      return true;
    }
    send(link, u, p);
    return cursor.next > before;
  };

  auto last_report = Clock::now();
  std::vector<pollfd> fds;
  std::vector<size_t> fd_links;
  for (;;) {
    fds.clear();
    fd_links.clear();
    for (size_t i = 0; i < links.size(); ++i) {
      if (!links[i].connection || links[i].in_flight.empty()) continue;
      fds.push_back({links[i].connection->fd(), POLLIN, 0});
      fd_links.push_back(i);
    }
    if (fds.empty() || stop.stop_requested()) break;
    int ready = poll(fds.data(), fds.size(), 100);
    auto now = Clock::now();
    for (size_t f = 0; f < fds.size() && ready > 0; ++f) {
      if (fds[f].revents == 0) continue;
      Link& link = links[fd_links[f]];
      if (answer(link)) link.last_progress = now;
    }
    for (size_t f = 0; f < fds.size(); ++f) {
      Link& link = links[fd_links[f]];
      if (!link.connection || now - link.last_progress < limits.inactivity) continue;
      for (auto [u, p] : link.partitions) {
        if (wanted(u, p)) scan.fail_inactive(u, p, limits.inactivity);
      }
      link.in_flight.clear();
    }
    if (now - last_report >= std::chrono::milliseconds(50)) {
      scan.report_positions();
      last_report = now;
    }
  }
  scan.report_positions();
}

}  // namespace telekern::tracer
