#include "kafka_source.h"

#include <librdkafka/rdkafka.h>

#include <algorithm>
#include <chrono>
#include <map>

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

absl::StatusOr<KafkaSource::Handle> KafkaSource::make_consumer() {
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  std::vector<std::pair<std::string, std::string>> settings = {
      {"bootstrap.servers", options_.brokers},
      {"group.id", "telekern-tracer"},
      {"enable.auto.commit", "false"},
      {"enable.auto.offset.store", "false"},
      {"enable.partition.eof", "true"},
      {"isolation.level", options_.read_committed ? "read_committed" : "read_uncommitted"},
      {"fetch.wait.max.ms", "10"},
      {"queued.min.messages", "100000"},
      {"socket.timeout.ms", std::to_string(options_.request_timeout.count())},
      {"log_level", "3"},
  };
  settings.insert(settings.end(), options_.properties.begin(), options_.properties.end());
  for (const auto& [name, value] : settings) {
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
  int timeout = static_cast<int>(options_.request_timeout.count());
  // Metadata of every topic: asking for one by name would create it on a
  // cluster with auto.create.topics.enable.
  const rd_kafka_metadata_t* raw = nullptr;
  auto error = rd_kafka_metadata(admin_.get(), 1, nullptr, &raw, timeout);
  if (error != RD_KAFKA_RESP_ERR_NO_ERROR)
    return absl::UnavailableError(
        str_cat("metadata of topic '", topic, "': ", rd_kafka_err2str(error)));
  std::unique_ptr<const rd_kafka_metadata_t, MetadataDeleter> metadata(raw);
  const rd_kafka_metadata_topic_t* found = nullptr;
  for (int i = 0; i < metadata->topic_cnt; ++i) {
    if (topic == metadata->topics[i].topic) found = &metadata->topics[i];
  }
  if (found == nullptr) return absl::NotFoundError(str_cat("topic '", topic, "' does not exist"));
  if (found->err != RD_KAFKA_RESP_ERR_NO_ERROR)
    return absl::UnavailableError(str_cat("topic '", topic, "': ", rd_kafka_err2str(found->err)));
  ScanUnit unit{topic, {}};
  for (int i = 0; i < found->partition_cnt; ++i) {
    PartitionPlan plan;
    plan.partition = found->partitions[i].id;
    if (!limits.skip_offsets) {
      int64_t low = 0, high = 0;
      auto watermark_error = rd_kafka_query_watermark_offsets(admin_.get(), topic.c_str(),
                                                              plan.partition, &low, &high, timeout);
      if (watermark_error != RD_KAFKA_RESP_ERR_NO_ERROR)
        return absl::UnavailableError(str_cat("watermarks of ", topic, "[", plan.partition,
                                              "]: ", rd_kafka_err2str(watermark_error)));
      plan.low = low;
      plan.stop = high;
      plan.start = low;
    }
    unit.partitions.push_back(plan);
  }
  std::sort(unit.partitions.begin(), unit.partitions.end(),
            [](const auto& a, const auto& b) { return a.partition < b.partition; });
  if (limits.since_ms > 0 && !unit.partitions.empty()) {
    // One offsetsForTimes request for the whole topic: the first offset at or after since.
    PartitionList list(rd_kafka_topic_partition_list_new(static_cast<int>(unit.partitions.size())));
    for (const auto& plan : unit.partitions)
      rd_kafka_topic_partition_list_add(list.get(), topic.c_str(), plan.partition)->offset =
          limits.since_ms;
    auto times_error = rd_kafka_offsets_for_times(admin_.get(), list.get(), timeout);
    if (times_error != RD_KAFKA_RESP_ERR_NO_ERROR)
      return absl::UnavailableError(
          str_cat("offsets by time of topic '", topic, "': ", rd_kafka_err2str(times_error)));
    for (int i = 0; i < list->cnt; ++i) {
      auto& entry = list->elems[i];
      auto it = std::find_if(unit.partitions.begin(), unit.partitions.end(),
                             [&](const auto& plan) { return plan.partition == entry.partition; });
      if (it == unit.partitions.end()) continue;
      if (entry.err != RD_KAFKA_RESP_ERR_NO_ERROR)
        return absl::UnavailableError(str_cat("offset by time of ", topic, "[", entry.partition,
                                              "]: ", rd_kafka_err2str(entry.err)));
      if (entry.offset >= 0) {
        it->start = entry.offset;
      } else if (it->stop > it->low && it->low >= 0) {
        // -1 means "no record at or after since" from a broker that keeps
        // timestamp indexes; a broker without them (some proxies, the mock
        // cluster) answers the same: check by a binary search over offsets.
        auto start = search_by_time(topic, it->partition, it->low, it->stop, limits.since_ms);
        if (!start.ok()) return start.status();
        it->start = *start;
      } else {
        it->start = it->stop;
      }
    }
  }
  return unit;
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
  // Every partition of the unit is assigned to one consumer, so a fetch
  // carries them all; each stops at its own stop offset.
  struct Cursor {
    int64_t stop;
    int64_t next;
  };
  std::map<int32_t, Cursor> remaining;
  auto consumer = take_consumer();
  if (!consumer.ok()) return consumer.status();
  rd_kafka_t* rk = consumer->get();
  PartitionList list(rd_kafka_topic_partition_list_new(static_cast<int>(unit.partitions.size())));
  for (const auto& plan : unit.partitions) {
    if (plan.stop >= 0 && plan.start >= plan.stop) {
      sink.reached_end(plan.partition, plan.stop);
      continue;
    }
    remaining[plan.partition] = {plan.stop, plan.start};
    rd_kafka_topic_partition_list_add(list.get(), unit.topic.c_str(), plan.partition)->offset =
        plan.start >= 0 ? plan.start : RD_KAFKA_OFFSET_BEGINNING;
  }
  if (remaining.empty()) {
    give_back(std::move(*consumer));
    return absl::OkStatus();
  }
  if (auto error = rd_kafka_assign(rk, list.get()); error != RD_KAFKA_RESP_ERR_NO_ERROR) {
    give_back(std::move(*consumer));
    return absl::UnavailableError(str_cat("assign ", unit.topic, ": ", rd_kafka_err2str(error)));
  }
  rd_kafka_queue_t* queue = rd_kafka_queue_get_consumer(rk);
  auto last_record = Clock::now();
  std::vector<rd_kafka_message_t*> batch(1000);
  bool refused = false;
  while (!remaining.empty() && !refused && !stop.stop_requested()) {
    ssize_t count = rd_kafka_consume_batch_queue(queue, 100, batch.data(), batch.size());
    if (count <= 0) {
      if (Clock::now() - last_record >= limits.inactivity) {
        for (const auto& [partition, cursor] : remaining) {
          sink.failed(
              partition,
              str_cat("no record for ", limits.inactivity.count(), " ms at offset ", cursor.next,
                      cursor.stop >= 0 ? str_cat(" of ", cursor.stop) : std::string(),
                      " (inactivity timeout)"));
        }
        break;
      }
      continue;
    }
    last_record = Clock::now();
    for (ssize_t i = 0; i < count; ++i) {
      Message message(batch[i]);
      if (refused) continue;  // destroy the rest of the batch
      // A reused consumer may still hold a record of its previous assignment.
      if (message->rkt == nullptr || unit.topic != rd_kafka_topic_name(message->rkt)) continue;
      auto it = remaining.find(message->partition);
      if (it == remaining.end()) continue;
      Cursor& cursor = it->second;
      if (message->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        // End of what this consumer may read: the high watermark, or the last
        // stable offset with read_committed.
        if (cursor.stop < 0 || message->offset >= cursor.stop || limits.read_committed) {
          sink.position(it->first, message->offset);
          sink.reached_end(it->first, message->offset);
          remaining.erase(it);
        }
        continue;
      }
      if (message->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        sink.failed(it->first, str_cat("read ", unit.topic, "[", it->first, "] at ", cursor.next,
                                       ": ", rd_kafka_message_errstr(message.get())));
        remaining.erase(it);
        continue;
      }
      RecordView record;
      record.topic = unit.topic;
      record.partition = message->partition;
      record.offset = message->offset;
      rd_kafka_timestamp_type_t type;
      int64_t timestamp = rd_kafka_message_timestamp(message.get(), &type);
      record.timestamp_ms = timestamp > 0 ? timestamp : 0;
      record.key = {static_cast<const char*>(message->key), message->key_len};
      record.value = {static_cast<const char*>(message->payload), message->len};
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
        refused = true;
        continue;
      }
      if (cursor.stop >= 0 && cursor.next >= cursor.stop && !limits.read_committed) {
        sink.reached_end(it->first, cursor.stop);
        remaining.erase(it);
      }
    }
    for (const auto& [partition, cursor] : remaining) sink.position(partition, cursor.next);
  }
  rd_kafka_queue_destroy(queue);
  give_back(std::move(*consumer));
  return absl::OkStatus();
}

}  // namespace telekern::tracer
