// telekern::stream over Kafka with librdkafka: an idempotent producer and a
// consumer-group consumer that commits offsets only when told to.
#include <librdkafka/rdkafka.h>

#include <map>
#include <mutex>

#include "telekern/log.h"
#include "telekern/stream.h"
#include "telekern/strings.h"

namespace telekern::stream {
namespace {

struct KafkaDeleter {
  void operator()(rd_kafka_t* handle) const { rd_kafka_destroy(handle); }
  void operator()(rd_kafka_conf_t* conf) const { rd_kafka_conf_destroy(conf); }
  void operator()(rd_kafka_topic_partition_list_t* list) const {
    rd_kafka_topic_partition_list_destroy(list);
  }
  void operator()(rd_kafka_message_t* message) const { rd_kafka_message_destroy(message); }
};
using KafkaHandle = std::unique_ptr<rd_kafka_t, KafkaDeleter>;
using KafkaConf = std::unique_ptr<rd_kafka_conf_t, KafkaDeleter>;
using PartitionList = std::unique_ptr<rd_kafka_topic_partition_list_t, KafkaDeleter>;
using KafkaMessage = std::unique_ptr<rd_kafka_message_t, KafkaDeleter>;

absl::Status set(rd_kafka_conf_t* conf, const std::string& name, const std::string& value) {
  if (value.empty()) return absl::OkStatus();
  char error[512];
  if (rd_kafka_conf_set(conf, name.c_str(), value.c_str(), error, sizeof error) !=
      RD_KAFKA_CONF_OK) {
    return absl::InvalidArgumentError(str_cat("kafka setting ", name, "=", value, ": ", error));
  }
  return absl::OkStatus();
}

// librdkafka's log lines go through telekern logging (component "kafka").
void log_line(const rd_kafka_t*, int level, const char* facility, const char* message) {
  static const auto logger = make_logger("kafka");
  if (level <= 3) {
    logger->error("{}: {}", facility, message);
  } else if (level <= 5) {
    logger->warn("{}: {}", facility, message);
  } else {
    logger->debug("{}: {}", facility, message);
  }
}

// The settings producers and consumers share: brokers, identity, security, extras.
absl::StatusOr<KafkaConf> base_conf(const StreamConfig& config, const std::string& brokers) {
  KafkaConf conf(rd_kafka_conf_new());
  rd_kafka_conf_set_log_cb(conf.get(), &log_line);
  std::vector<std::pair<std::string, std::string>> settings = {
      {"bootstrap.servers", brokers},
      {"client.id", config.client_id},
      {"security.protocol", config.security_protocol},
      {"sasl.mechanisms", config.sasl_mechanism},
      {"sasl.username", config.sasl_username},
      {"sasl.password", config.sasl_password},
      {"ssl.ca.location", config.ssl_ca_location},
      {"ssl.certificate.location", config.ssl_certificate_location},
      {"ssl.key.location", config.ssl_key_location},
      {"ssl.key.password", config.ssl_key_password},
      {"ssl.endpoint.identification.algorithm", config.ssl_endpoint_identification_algorithm},
  };
  settings.insert(settings.end(), config.extra_properties.begin(), config.extra_properties.end());
  for (const auto& [name, value] : settings) {
    if (auto status = set(conf.get(), name, value); !status.ok()) return status;
  }
  return conf;
}

absl::Status kafka_error(rd_kafka_resp_err_t code, const std::string& context) {
  auto message = str_cat(context, ": ", rd_kafka_err2str(code));
  switch (code) {
    case RD_KAFKA_RESP_ERR__QUEUE_FULL:
      return absl::ResourceExhaustedError(message);
    case RD_KAFKA_RESP_ERR__TIMED_OUT:
    case RD_KAFKA_RESP_ERR__MSG_TIMED_OUT:
      return absl::DeadlineExceededError(message);
    case RD_KAFKA_RESP_ERR__TRANSPORT:
    case RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN:
    case RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION:
    case RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE:
      return absl::UnavailableError(message);
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
    case RD_KAFKA_RESP_ERR__INVALID_ARG:
      return absl::InvalidArgumentError(message);
    default:
      return absl::InternalError(message);
  }
}

class KafkaProducer final : public Producer {
 public:
  static absl::StatusOr<std::unique_ptr<Producer>> create(const StreamConfig& config,
                                                          const std::string& brokers) {
    auto conf = base_conf(config, brokers);
    if (!conf.ok()) return conf.status();
    for (const auto& [name, value] : std::vector<std::pair<std::string, std::string>>{
             {"enable.idempotence", "true"}, {"linger.ms", "5"}, {"message.timeout.ms", "30000"}}) {
      if (auto status = set(conf->get(), name, value); !status.ok()) return status;
    }
    auto producer = std::unique_ptr<KafkaProducer>(new KafkaProducer());
    rd_kafka_conf_set_opaque(conf->get(), producer.get());
    rd_kafka_conf_set_dr_msg_cb(conf->get(), &KafkaProducer::on_delivery);
    char error[512];
    producer->handle_.reset(rd_kafka_new(RD_KAFKA_PRODUCER, conf->get(), error, sizeof error));
    if (!producer->handle_) return absl::InvalidArgumentError(str_cat("kafka producer: ", error));
    conf->release();  // rd_kafka_new took ownership
    return std::unique_ptr<Producer>(std::move(producer));
  }

  ~KafkaProducer() override {
    if (handle_) rd_kafka_flush(handle_.get(), 2000);  // last resort: callers flush() explicitly
  }

  absl::Status send(Record record) override {
    if (record.topic.empty()) return absl::InvalidArgumentError("record has no topic");
    rd_kafka_headers_t* headers = nullptr;
    if (!record.headers.empty()) {
      headers = rd_kafka_headers_new(record.headers.size());
      for (const auto& [name, value] : record.headers) {
        rd_kafka_header_add(headers, name.data(), static_cast<ssize_t>(name.size()), value.data(),
                            static_cast<ssize_t>(value.size()));
      }
    }
    int64_t timestamp_ms = record.timestamp.time_since_epoch().count() == 0
                               ? 0
                               : std::chrono::duration_cast<std::chrono::milliseconds>(
                                     record.timestamp.time_since_epoch())
                                     .count();
    rd_kafka_resp_err_t error = rd_kafka_producev(
        handle_.get(), RD_KAFKA_V_TOPIC(record.topic.c_str()),
        RD_KAFKA_V_PARTITION(record.partition < 0 ? RD_KAFKA_PARTITION_UA : record.partition),
        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_KEY(record.key.empty() ? nullptr : record.key.data(), record.key.size()),
        RD_KAFKA_V_VALUE(record.value.data(), record.value.size()),
        RD_KAFKA_V_TIMESTAMP(timestamp_ms), RD_KAFKA_V_HEADERS(headers), RD_KAFKA_V_END);
    if (error != RD_KAFKA_RESP_ERR_NO_ERROR) {
      if (headers) rd_kafka_headers_destroy(headers);  // not taken over on failure
      rd_kafka_poll(handle_.get(), 0);
      return kafka_error(error, str_cat("queueing to topic '", record.topic, "'"));
    }
    rd_kafka_poll(handle_.get(), 0);  // serve delivery reports
    return absl::OkStatus();
  }

  absl::Status flush(std::chrono::milliseconds timeout) override {
    rd_kafka_resp_err_t error = rd_kafka_flush(handle_.get(), static_cast<int>(timeout.count()));
    std::lock_guard lock(mutex_);
    absl::Status first = first_error_;
    first_error_ = absl::OkStatus();
    if (!first.ok()) return first;
    if (error != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return kafka_error(
          error, str_cat(rd_kafka_outq_len(handle_.get()), " records still unacknowledged"));
    }
    return absl::OkStatus();
  }

 private:
  KafkaProducer() = default;

  static void on_delivery(rd_kafka_t*, const rd_kafka_message_t* message, void* opaque) {
    if (message->err == RD_KAFKA_RESP_ERR_NO_ERROR) return;
    auto* self = static_cast<KafkaProducer*>(opaque);
    std::lock_guard lock(self->mutex_);
    if (self->first_error_.ok()) {
      self->first_error_ = kafka_error(
          message->err,
          str_cat("delivery to topic '", rd_kafka_topic_name(message->rkt), "' failed"));
    }
  }

  KafkaHandle handle_;
  std::mutex mutex_;
  absl::Status first_error_;
};

class KafkaConsumer final : public Consumer {
 public:
  static absl::StatusOr<std::unique_ptr<Consumer>> create(const StreamConfig& config,
                                                          const std::string& brokers,
                                                          const ConsumerOptions& options) {
    auto conf = base_conf(config, brokers);
    if (!conf.ok()) return conf.status();
    std::vector<std::pair<std::string, std::string>> settings = {
        {"group.id", options.group},
        {"enable.auto.commit", "false"},
        {"enable.auto.offset.store", "false"},
        {"auto.offset.reset", options.start == StartFrom::kEarliest ? "earliest" : "latest"},
        {"session.timeout.ms", std::to_string(config.session_timeout_ms)},
        {"heartbeat.interval.ms", std::to_string(config.heartbeat_interval_ms)},
        {"max.poll.interval.ms", std::to_string(config.max_poll_interval_ms)},
        {"fetch.min.bytes", std::to_string(config.fetch_min_bytes)},
        {"fetch.max.bytes", std::to_string(config.fetch_max_bytes)},
    };
    for (const auto& [name, value] : settings) {
      if (auto status = set(conf->get(), name, value); !status.ok()) return status;
    }
    auto consumer = std::unique_ptr<KafkaConsumer>(new KafkaConsumer());
    char error[512];
    consumer->handle_.reset(rd_kafka_new(RD_KAFKA_CONSUMER, conf->get(), error, sizeof error));
    if (!consumer->handle_) return absl::InvalidArgumentError(str_cat("kafka consumer: ", error));
    conf->release();
    rd_kafka_poll_set_consumer(consumer->handle_.get());
    PartitionList topics(
        rd_kafka_topic_partition_list_new(static_cast<int>(options.topics.size())));
    for (const auto& topic : options.topics) {
      rd_kafka_topic_partition_list_add(topics.get(), topic.c_str(), RD_KAFKA_PARTITION_UA);
    }
    if (auto code = rd_kafka_subscribe(consumer->handle_.get(), topics.get());
        code != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return kafka_error(code, "subscribing");
    }
    consumer->topics_ = options.topics;
    return std::unique_ptr<Consumer>(std::move(consumer));
  }

  ~KafkaConsumer() override {
    if (handle_) rd_kafka_consumer_close(handle_.get());
  }

  absl::StatusOr<std::vector<Record>> poll(size_t max_records,
                                           std::chrono::milliseconds timeout) override {
    std::vector<Record> records;
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (records.size() < max_records) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      // Once something arrived, only drain what is already there.
      int wait = records.empty() ? static_cast<int>(std::max<int64_t>(0, left.count())) : 0;
      KafkaMessage message(rd_kafka_consumer_poll(handle_.get(), wait));
      if (!message) {
        if (!records.empty() || left.count() <= 0) break;
        continue;
      }
      if (message->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) continue;
      if (message->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        if (!records.empty()) break;
        return kafka_error(message->err,
                           str_cat("consuming: ", rd_kafka_message_errstr(message.get())));
      }
      records.push_back(to_record(*message));
    }
    return records;
  }

  absl::Status commit(const std::vector<Record>& processed) override {
    if (processed.empty()) return absl::OkStatus();
    std::map<std::pair<std::string, int32_t>, int64_t> next;
    for (const auto& record : processed) {
      auto& offset = next[{record.topic, record.partition}];
      offset = std::max(offset, record.offset + 1);
    }
    PartitionList list(rd_kafka_topic_partition_list_new(static_cast<int>(next.size())));
    for (const auto& [where, offset] : next) {
      rd_kafka_topic_partition_list_add(list.get(), where.first.c_str(), where.second)->offset =
          offset;
    }
    if (auto code = rd_kafka_commit(handle_.get(), list.get(), 0);
        code != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return kafka_error(code, "committing offsets");
    }
    return absl::OkStatus();
  }

  absl::StatusOr<std::vector<PartitionLag>> lag(std::chrono::milliseconds timeout) override {
    int timeout_ms = static_cast<int>(timeout.count());
    PartitionList list(rd_kafka_topic_partition_list_new(0));
    for (const auto& topic : topics_) {
      std::unique_ptr<rd_kafka_topic_t, decltype(&rd_kafka_topic_destroy)> handle(
          rd_kafka_topic_new(handle_.get(), topic.c_str(), nullptr), &rd_kafka_topic_destroy);
      if (!handle) return absl::InternalError(str_cat("kafka: no handle for topic '", topic, "'"));
      const rd_kafka_metadata_t* metadata = nullptr;
      if (auto code = rd_kafka_metadata(handle_.get(), 0, handle.get(), &metadata, timeout_ms);
          code != RD_KAFKA_RESP_ERR_NO_ERROR) {
        return kafka_error(code, str_cat("reading the partitions of topic '", topic, "'"));
      }
      std::unique_ptr<const rd_kafka_metadata_t, decltype(&rd_kafka_metadata_destroy)> owned(
          metadata, &rd_kafka_metadata_destroy);
      for (int t = 0; t < metadata->topic_cnt; ++t) {
        const auto& described = metadata->topics[t];
        if (described.err != RD_KAFKA_RESP_ERR_NO_ERROR)
          return kafka_error(described.err, str_cat("describing topic '", topic, "'"));
        for (int p = 0; p < described.partition_cnt; ++p)
          rd_kafka_topic_partition_list_add(list.get(), described.topic,
                                            described.partitions[p].id);
      }
    }
    if (auto code = rd_kafka_committed(handle_.get(), list.get(), timeout_ms);
        code != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return kafka_error(code, "reading the group's committed offsets");
    }
    std::vector<PartitionLag> out;
    for (int i = 0; i < list->cnt; ++i) {
      const auto& partition = list->elems[i];
      PartitionLag item;
      item.topic = partition.topic;
      item.partition = partition.partition;
      item.committed = partition.offset >= 0 ? partition.offset : -1;
      int64_t low = 0;
      int64_t high = 0;
      if (auto code = rd_kafka_query_watermark_offsets(
              handle_.get(), partition.topic, partition.partition, &low, &high, timeout_ms);
          code != RD_KAFKA_RESP_ERR_NO_ERROR) {
        return kafka_error(
            code, str_cat("reading the watermarks of ", partition.topic, "/", partition.partition));
      }
      item.log_start = low;
      item.high_watermark = high;
      out.push_back(std::move(item));
    }
    return out;
  }

 private:
  KafkaConsumer() = default;

  static Record to_record(const rd_kafka_message_t& message) {
    Record record;
    record.topic = rd_kafka_topic_name(message.rkt);
    record.partition = message.partition;
    record.offset = message.offset;
    if (message.key) record.key.assign(static_cast<const char*>(message.key), message.key_len);
    if (message.payload)
      record.value.assign(static_cast<const char*>(message.payload), message.len);
    rd_kafka_timestamp_type_t type;
    int64_t timestamp = rd_kafka_message_timestamp(&message, &type);
    if (timestamp >= 0)
      record.timestamp =
          std::chrono::system_clock::time_point(std::chrono::milliseconds(timestamp));
    rd_kafka_headers_t* headers = nullptr;
    if (rd_kafka_message_headers(&message, &headers) == RD_KAFKA_RESP_ERR_NO_ERROR && headers) {
      const char* name;
      const void* value;
      size_t size;
      for (size_t i = 0;
           rd_kafka_header_get_all(headers, i, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR;
           ++i) {
        record.headers.emplace_back(
            name, value ? std::string(static_cast<const char*>(value), size) : "");
      }
    }
    return record;
  }

  KafkaHandle handle_;
  std::vector<std::string> topics_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Producer>> make_kafka_producer(const StreamConfig& config,
                                                              const std::string& brokers) {
  return KafkaProducer::create(config, brokers);
}

absl::StatusOr<std::unique_ptr<Consumer>> make_kafka_consumer(const StreamConfig& config,
                                                              const std::string& brokers,
                                                              const ConsumerOptions& options) {
  return KafkaConsumer::create(config, brokers, options);
}

}  // namespace telekern::stream
