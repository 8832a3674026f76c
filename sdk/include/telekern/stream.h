// telekern::stream: one producer/consumer interface over the embedded broker
// (`telekern://host:port`, `telekerns://` with TLS, or a module's in-process
// channel) or Kafka (`kafka://b1:9092,b2:9092`), so a module
// moves from one machine to a Kafka cluster by changing its transport setting.
// Delivery is at-least-once: a consumer commits only records it has processed.
#pragma once

#include <absl/status/status.h>
#include <absl/status/statusor.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "telekern/config_map.h"

namespace grpc {
class Channel;
}

namespace telekern::stream {

struct Record {
  std::string topic;
  int32_t partition = -1;  // on send: -1 = by key hash, round-robin without key
  int64_t offset = -1;     // set on records a consumer returns
  std::string key;
  std::string value;
  std::vector<std::pair<std::string, std::string>> headers;
  std::chrono::system_clock::time_point timestamp{};  // epoch = now, on send
};

// Settings shared by producers and consumers; declared once in
// stream_config_map() so every module embedding them (ConfigMap::nest under
// "stream.") documents the same keys.
struct StreamConfig {
  std::string transport = "telekern://127.0.0.1:7070";
  std::string client_id = "telekern";
  std::string api_key;  // telekern transport credentials
  // telekerns:// (TLS): CA that signs the daemon's certificate (system roots
  // when empty), and a client certificate and key for daemons that ask.
  std::string tls_ca_file;
  std::string tls_cert_file;
  std::string tls_key_file;
  // Kafka security and tuning (names follow librdkafka; empty = library default).
  std::string security_protocol;  // plaintext | ssl | sasl_plaintext | sasl_ssl
  std::string sasl_mechanism;     // PLAIN | SCRAM-SHA-256 | SCRAM-SHA-512
  std::string sasl_username;
  std::string sasl_password;
  std::string ssl_ca_location;
  std::string ssl_certificate_location;
  std::string ssl_key_location;
  std::string ssl_key_password;
  std::string ssl_endpoint_identification_algorithm = "https";
  int session_timeout_ms = 30000;
  int heartbeat_interval_ms = 10000;
  int max_poll_interval_ms = 300000;
  int fetch_min_bytes = 1;
  int fetch_max_bytes = 52428800;
  std::vector<std::pair<std::string, std::string>> extra_properties;  // raw librdkafka settings
  // A module co-located with the broker: set this to ModuleContext::channel(
  // "telekern.broker.v1.Broker") and telekern:// calls go through it (in
  // process, with the kernel's identity) instead of a TCP connection.
  std::shared_ptr<grpc::Channel> channel;
};

// The keys of StreamConfig with their defaults and checks.
const ConfigMap<StreamConfig>& stream_config_map();

enum class StartFrom { kEarliest, kLatest };

struct ConsumerOptions {
  std::string group;
  std::vector<std::string> topics;
  StartFrom start = StartFrom::kLatest;  // where a group without committed offsets begins
};

class Producer {
 public:
  virtual ~Producer() = default;
  // Queues a record for delivery; RESOURCE_EXHAUSTED when the local queue is full.
  virtual absl::Status send(Record record) = 0;
  // Waits until every queued record is acknowledged; returns the first delivery
  // error since the previous flush (naming topic and cause) or DEADLINE_EXCEEDED.
  virtual absl::Status flush(std::chrono::milliseconds timeout) = 0;
};

// Where a consumer group stands on one partition: the basis of consumer-lag
// metrics (any module consuming through telekern::stream).
struct PartitionLag {
  std::string topic;
  int32_t partition = 0;
  int64_t committed = -1;      // next offset the group reads; -1: nothing committed yet
  int64_t log_start = 0;       // first offset still stored
  int64_t high_watermark = 0;  // offset the next appended record gets
  // Records appended and not yet committed by the group (from the log start
  // when nothing is committed).
  int64_t lag() const {
    int64_t from = committed >= 0 ? committed : log_start;
    return high_watermark > from ? high_watermark - from : 0;
  }
};

class Consumer {
 public:
  virtual ~Consumer() = default;
  // Up to `max_records` records, waiting at most `timeout` for the first one.
  virtual absl::StatusOr<std::vector<Record>> poll(size_t max_records,
                                                   std::chrono::milliseconds timeout) = 0;
  // Makes the group's position durable just past each record's offset; call
  // it only after the records were processed (written, acknowledged).
  virtual absl::Status commit(const std::vector<Record>& processed) = 0;
  // The group's position on every partition of the consumer's topics (all
  // of them, not only those assigned to this member), asked of the broker or
  // the Kafka cluster now: committed offset and high watermark, by topic and
  // partition. Safe to call from another thread than poll().
  virtual absl::StatusOr<std::vector<PartitionLag>> lag(std::chrono::milliseconds timeout) = 0;
};

// Creates a producer or consumer for config.transport; INVALID_ARGUMENT names
// a malformed transport and says which forms are accepted.
absl::StatusOr<std::unique_ptr<Producer>> make_producer(const StreamConfig& config);
absl::StatusOr<std::unique_ptr<Consumer>> make_consumer(const StreamConfig& config,
                                                        const ConsumerOptions& options);

// Implementations, selected by make_producer/make_consumer.
absl::StatusOr<std::unique_ptr<Producer>> make_kafka_producer(const StreamConfig& config,
                                                              const std::string& brokers);
absl::StatusOr<std::unique_ptr<Consumer>> make_kafka_consumer(const StreamConfig& config,
                                                              const std::string& brokers,
                                                              const ConsumerOptions& options);
absl::StatusOr<std::unique_ptr<Producer>> make_broker_producer(const StreamConfig& config,
                                                               const std::string& address,
                                                               bool tls);
absl::StatusOr<std::unique_ptr<Consumer>> make_broker_consumer(const StreamConfig& config,
                                                               const std::string& address, bool tls,
                                                               const ConsumerOptions& options);

}  // namespace telekern::stream
