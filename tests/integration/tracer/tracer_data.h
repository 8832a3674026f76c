// Test data of the tracer tests: several topics of JSON and non-JSON
// records with timestamps spread over days, one device among thousands and
// decoy ids sharing its prefix; what was produced (with the offsets Kafka
// gave) is the independent truth the traces are checked against.
#pragma once

#include <librdkafka/rdkafka.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <random>
#include <set>
#include <string>
#include <tuple>
#include <vector>

namespace telekern::tracer::testing {

inline constexpr const char* kDevice = "dev-7f3a";
inline constexpr const char* kLongerDecoy = "dev-7f3a9";  // contains kDevice
inline constexpr const char* kShorterDecoy = "dev-7f3";   // a prefix of kDevice

struct ProducedRecord {
  std::string topic;
  int32_t partition = 0;
  int64_t offset = -1;
  int64_t timestamp_ms = 0;
  std::string key;
  std::string value;
  std::string header;  // value of header "device"
  std::string device;  // the id the record is about
};

struct TopicSpec {
  std::string name;
  int partitions;
  int records;
};

inline std::vector<TopicSpec> default_topics() {
  return {{"device-events", 4, 1500},
          {"audit-log", 4, 1200},
          {"provision", 3, 900},
          {"telemetry", 4, 1500},
          {"noise", 2, 600}};
}

// Makes the records of every topic, times spread over `span` ending now.
inline std::vector<ProducedRecord> make_records(const std::vector<TopicSpec>& topics,
                                                std::chrono::hours span, uint32_t seed = 7) {
  std::mt19937 random(seed);
  int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                    std::chrono::system_clock::now().time_since_epoch())
                    .count();
  int64_t span_ms = std::chrono::duration_cast<std::chrono::milliseconds>(span).count();
  std::vector<ProducedRecord> out;
  for (const auto& topic : topics) {
    for (int i = 0; i < topic.records; ++i) {
      ProducedRecord record;
      record.topic = topic.name;
      record.partition = static_cast<int32_t>(random() % static_cast<uint32_t>(topic.partitions));
      // Increasing in each topic: a partition's times never go back.
      record.timestamp_ms = now - span_ms + span_ms * i / topic.records + 1;
      uint32_t pick = random() % 100;
      std::string device = pick < 3   ? kDevice
                           : pick < 5 ? kLongerDecoy
                           : pick < 7 ? kShorterDecoy
                                      : "dev-" + std::to_string(100000 + random() % 900000);
      if (topic.name == "noise") device = "dev-" + std::to_string(100000 + random() % 900000);
      record.device = device;
      std::string type = i % 3 == 0 ? "boot" : i % 3 == 1 ? "heartbeat" : "config";
      if (topic.name == "device-events") {
        record.value = "{\"device\":{\"id\":\"" + device + "\"},\"type\":\"" + type +
                       "\",\"seq\":" + std::to_string(i) + "}";
      } else if (topic.name == "audit-log") {
        record.value = "{\"deviceId\":\"" + device + "\",\"event\":\"" + type + "\"}";
      } else if (topic.name == "provision") {
        record.value = "provisioned device=" + device + " step=" + std::to_string(i);
      } else if (topic.name == "telemetry") {
        record.key = device;
        record.value = "temp=" + std::to_string(random() % 90) + ",load=0.5";
      } else {
        record.value = "{\"noise\":" + std::to_string(i) + ",\"id\":\"" + device + "\"}";
      }
      if (topic.name == "telemetry" && i % 2 == 0) record.header = device;
      out.push_back(std::move(record));
    }
  }
  return out;
}

// Produces `records` to `brokers` (batches compressed with `compression`:
// none, gzip, snappy, lz4 or zstd), filling in their offsets; false on a failure.
inline bool produce(const std::string& brokers, std::vector<ProducedRecord>& records,
                    const char* compression = "none") {
  char error[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  rd_kafka_conf_set(conf, "bootstrap.servers", brokers.c_str(), error, sizeof error);
  rd_kafka_conf_set(conf, "compression.codec", compression, error, sizeof error);
  rd_kafka_conf_set(conf, "linger.ms", "5", error, sizeof error);
  rd_kafka_conf_set(conf, "log_level", "3", error, sizeof error);
  rd_kafka_conf_set_dr_msg_cb(conf, [](rd_kafka_t*, const rd_kafka_message_t* message, void*) {
    auto* record = static_cast<ProducedRecord*>(message->_private);
    if (message->err == RD_KAFKA_RESP_ERR_NO_ERROR) record->offset = message->offset;
  });
  rd_kafka_t* producer = rd_kafka_new(RD_KAFKA_PRODUCER, conf, error, sizeof error);
  if (producer == nullptr) return false;
  for (auto& record : records) {
    rd_kafka_headers_t* headers = rd_kafka_headers_new(1);
    if (!record.header.empty())
      rd_kafka_header_add(headers, "device", -1, record.header.data(),
                          static_cast<ssize_t>(record.header.size()));
    for (;;) {
      auto result = rd_kafka_producev(
          producer, RD_KAFKA_V_TOPIC(record.topic.c_str()), RD_KAFKA_V_PARTITION(record.partition),
          RD_KAFKA_V_VALUE(record.value.data(), record.value.size()),
          RD_KAFKA_V_KEY(record.key.empty() ? nullptr : record.key.data(), record.key.size()),
          RD_KAFKA_V_TIMESTAMP(record.timestamp_ms), RD_KAFKA_V_HEADERS(headers),
          RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_OPAQUE(&record), RD_KAFKA_V_END);
      if (result == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
        rd_kafka_poll(producer, 100);
        continue;
      }
      if (result != RD_KAFKA_RESP_ERR_NO_ERROR) {
        rd_kafka_headers_destroy(headers);
        rd_kafka_destroy(producer);
        return false;
      }
      break;
    }
  }
  rd_kafka_flush(producer, 30000);
  rd_kafka_destroy(producer);
  for (const auto& record : records) {
    if (record.offset < 0) return false;
  }
  return true;
}

using EventKey = std::tuple<std::string, int32_t, int64_t>;  // topic, partition, offset

// The records containing `needle` anywhere (key, value or header): the substring truth.
inline std::set<EventKey> containing(const std::vector<ProducedRecord>& records,
                                     const std::string& needle, int64_t since_ms = 0) {
  std::set<EventKey> out;
  for (const auto& r : records) {
    if (r.timestamp_ms < since_ms) continue;
    if (r.key.find(needle) != std::string::npos || r.value.find(needle) != std::string::npos ||
        r.header.find(needle) != std::string::npos)
      out.insert({r.topic, r.partition, r.offset});
  }
  return out;
}

}  // namespace telekern::tracer::testing
