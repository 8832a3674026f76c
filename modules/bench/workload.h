// An OpenMessaging Benchmark workload (the YAML files under OMB's workloads/
// load unchanged) and the driver a run uses, selected by an OMB-style driver
// YAML (name, driverClass and the driver's own keys) or a short form.
#pragma once

#include <absl/status/statusor.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace telekern::bench {

enum class KeyDistributor { kNoKey, kKeyRoundRobin, kRandomNano };

struct Workload {
  std::string name;
  uint32_t topics = 1;
  uint32_t partitions_per_topic = 1;
  uint32_t message_size = 1024;
  std::string payload_file;  // as written in the YAML; empty = generated payload
  bool use_randomized_payloads = false;
  double random_bytes_ratio = 0.0;
  uint32_t randomized_payload_pool_size = 0;
  uint32_t subscriptions_per_topic = 1;
  uint32_t consumer_per_subscription = 1;
  uint32_t producers_per_topic = 1;
  double producer_rate = 0;  // messages/s over all producers; 0 = as fast as possible
  double consumer_backlog_size_gb = 0;
  std::chrono::milliseconds test_duration{std::chrono::minutes(15)};
  std::chrono::milliseconds warmup_duration{std::chrono::minutes(1)};
  KeyDistributor key_distributor = KeyDistributor::kNoKey;
  std::string source;  // the YAML as given, kept with the run
};

// Parses a workload YAML. Durations: testDurationMinutes / warmupDurationMinutes
// take minutes (fractions allowed) as OMB does, or a duration string ("20s").
// Unknown keys are kept out with an error naming them; INVALID_ARGUMENT names
// the field and the accepted values.
absl::StatusOr<Workload> parse_workload(const std::string& yaml);
// Reads `path` and parses it; the error names the file.
absl::StatusOr<Workload> load_workload(const std::string& path);

std::string key_distributor_name(KeyDistributor distributor);

enum class DriverKind { kTelekern, kKafka, kRedis, kNats, kSink };

struct DriverSpec {
  std::string name;  // shown in results ("driver" field)
  DriverKind kind = DriverKind::kTelekern;
  std::string transport;  // telekern:// or kafka:// address (empty = in-process broker)
  std::string redis_host = "127.0.0.1";
  int redis_port = 6379;
  std::string nats_url = "nats://127.0.0.1:4222";
  bool nats_jetstream = true;  // publish with JetStream acks (file storage)
  // Kafka: librdkafka settings from commonConfig, producerConfig and consumerConfig.
  std::vector<std::pair<std::string, std::string>> kafka_properties;
  std::string source;
};

// A driver from OMB-style YAML (name, driverClass; Kafka's commonConfig
// bootstrap.servers; Redis redisHost/redisPort; NATS natsHostUrl) or a short
// form: "telekern", "sink", "telekern://h:p", "kafka://h:p", "redis://h:p",
// "nats://h:p".
absl::StatusOr<DriverSpec> parse_driver(const std::string& text);
std::string driver_kind_name(DriverKind kind);

}  // namespace telekern::bench
