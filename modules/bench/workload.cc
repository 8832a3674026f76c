#include "workload.h"

#include <yaml-cpp/yaml.h>

#include <fstream>
#include <set>
#include <sstream>

#include "telekern/config.h"
#include "telekern/strings.h"

namespace telekern::bench {
namespace {

const std::set<std::string>& workload_keys() {
  static const std::set<std::string> keys = {
      "name", "topics", "partitionsPerTopic", "messageSize", "payloadFile", "useRandomizedPayloads",
      "randomBytesRatio", "randomizedPayloadPoolSize", "subscriptionsPerTopic",
      "consumerPerSubscription", "producersPerTopic", "producerRate", "consumerBacklogSizeGB",
      "testDurationMinutes", "warmupDurationMinutes", "keyDistributor",
      // Accepted by OMB and ignored here (no effect on these drivers).
      "producerRateRampUp", "consumerBacklogDrainRate"};
  return keys;
}

// Minutes as a number (OMB), or a duration string ("30s", "2m").
absl::StatusOr<std::chrono::milliseconds> read_minutes(const YAML::Node& node,
                                                       const std::string& field) {
  std::string text = node.as<std::string>();
  try {
    double minutes = node.as<double>();
    if (minutes < 0) return absl::InvalidArgumentError(field + " must not be negative");
    return std::chrono::milliseconds(static_cast<int64_t>(minutes * 60'000.0));
  } catch (const YAML::Exception&) {
  }
  auto duration = parse_duration(text);
  if (!duration.ok())
    return absl::InvalidArgumentError(str_cat(field, ": '", text,
                                              "' is neither minutes (e.g. 15) nor a duration "
                                              "(e.g. 20s)"));
  return *duration;
}

template <typename T>
absl::Status read(const YAML::Node& root, const char* field, T& out) {
  const auto& node = root[field];
  if (!node) return absl::OkStatus();
  try {
    out = node.as<T>();
    return absl::OkStatus();
  } catch (const YAML::Exception&) {
    return absl::InvalidArgumentError(
        str_cat("workload field ", field, ": '", node.as<std::string>(""), "' has the wrong type"));
  }
}

std::string read_file(const std::string& path, absl::Status& status) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    status = absl::NotFoundError(str_cat("cannot read '", path, "'"));
    return {};
  }
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

}  // namespace

std::string key_distributor_name(KeyDistributor distributor) {
  switch (distributor) {
    case KeyDistributor::kNoKey:
      return "NO_KEY";
    case KeyDistributor::kKeyRoundRobin:
      return "KEY_ROUND_ROBIN";
    case KeyDistributor::kRandomNano:
      return "RANDOM_NANO";
  }
  return "NO_KEY";
}

absl::StatusOr<Workload> parse_workload(const std::string& yaml) {
  YAML::Node root;
  try {
    root = YAML::Load(yaml);
  } catch (const YAML::Exception& error) {
    return absl::InvalidArgumentError(str_cat("workload is not YAML: ", error.what()));
  }
  if (!root.IsMap()) return absl::InvalidArgumentError("workload must be a YAML mapping");
  for (const auto& entry : root) {
    auto key = entry.first.as<std::string>();
    if (!workload_keys().count(key))
      return absl::InvalidArgumentError(
          str_cat("unknown workload field '", key,
                  "'; OMB fields are name, topics, "
                  "partitionsPerTopic, messageSize, payloadFile, ..., testDurationMinutes"));
  }
  Workload w;
  w.source = yaml;
  absl::Status status;
  auto check = [&status](absl::Status s) {
    if (status.ok()) status = s;
  };
  check(read(root, "name", w.name));
  check(read(root, "topics", w.topics));
  check(read(root, "partitionsPerTopic", w.partitions_per_topic));
  check(read(root, "messageSize", w.message_size));
  check(read(root, "payloadFile", w.payload_file));
  check(read(root, "useRandomizedPayloads", w.use_randomized_payloads));
  check(read(root, "randomBytesRatio", w.random_bytes_ratio));
  check(read(root, "randomizedPayloadPoolSize", w.randomized_payload_pool_size));
  check(read(root, "subscriptionsPerTopic", w.subscriptions_per_topic));
  check(read(root, "consumerPerSubscription", w.consumer_per_subscription));
  check(read(root, "producersPerTopic", w.producers_per_topic));
  check(read(root, "producerRate", w.producer_rate));
  check(read(root, "consumerBacklogSizeGB", w.consumer_backlog_size_gb));
  if (!status.ok()) return status;
  if (root["testDurationMinutes"]) {
    auto d = read_minutes(root["testDurationMinutes"], "testDurationMinutes");
    if (!d.ok()) return d.status();
    w.test_duration = *d;
  }
  if (root["warmupDurationMinutes"]) {
    auto d = read_minutes(root["warmupDurationMinutes"], "warmupDurationMinutes");
    if (!d.ok()) return d.status();
    w.warmup_duration = *d;
  }
  if (root["keyDistributor"]) {
    auto name = root["keyDistributor"].as<std::string>();
    if (name == "NO_KEY") {
      w.key_distributor = KeyDistributor::kNoKey;
    } else if (name == "KEY_ROUND_ROBIN") {
      w.key_distributor = KeyDistributor::kKeyRoundRobin;
    } else if (name == "RANDOM_NANO") {
      w.key_distributor = KeyDistributor::kRandomNano;
    } else {
      return absl::InvalidArgumentError(str_cat(
          "keyDistributor '", name, "' is not one of NO_KEY, KEY_ROUND_ROBIN, RANDOM_NANO"));
    }
  }
  if (w.name.empty()) return absl::InvalidArgumentError("workload needs a name");
  if (w.topics == 0 || w.partitions_per_topic == 0)
    return absl::InvalidArgumentError("topics and partitionsPerTopic must be at least 1");
  if (w.message_size < 8)
    return absl::InvalidArgumentError(str_cat(
        "messageSize ", w.message_size, " is below 8 bytes (each message carries its send time)"));
  if (w.producers_per_topic == 0)
    return absl::InvalidArgumentError("producersPerTopic must be at least 1");
  if (w.producer_rate < 0) return absl::InvalidArgumentError("producerRate must not be negative");
  if (w.test_duration.count() <= 0)
    return absl::InvalidArgumentError("testDurationMinutes must be more than 0");
  if (w.random_bytes_ratio < 0 || w.random_bytes_ratio > 1)
    return absl::InvalidArgumentError("randomBytesRatio must be 0..1");
  return w;
}

absl::StatusOr<Workload> load_workload(const std::string& path) {
  absl::Status status;
  std::string text = read_file(path, status);
  if (!status.ok()) return status;
  auto workload = parse_workload(text);
  if (!workload.ok())
    return absl::Status(workload.status().code(), str_cat(path, ": ", workload.status().message()));
  return workload;
}

std::string driver_kind_name(DriverKind kind) {
  switch (kind) {
    case DriverKind::kTelekern:
      return "telekern";
    case DriverKind::kKafka:
      return "kafka";
    case DriverKind::kRedis:
      return "redis";
    case DriverKind::kNats:
      return "nats";
    case DriverKind::kSink:
      return "sink";
  }
  return "telekern";
}

namespace {

// host:port after a scheme, e.g. "redis://h:6379" -> ("h", 6379).
absl::Status host_port(std::string_view rest, std::string& host, int& port) {
  auto colon = rest.rfind(':');
  if (colon == std::string_view::npos) {
    if (!rest.empty()) host = std::string(rest);
    return absl::OkStatus();
  }
  host = std::string(rest.substr(0, colon));
  auto parsed = parse_int(rest.substr(colon + 1));
  if (!parsed || *parsed <= 0 || *parsed > 65535)
    return absl::InvalidArgumentError(str_cat("'", rest, "' has no valid port"));
  port = static_cast<int>(*parsed);
  return absl::OkStatus();
}

absl::StatusOr<DriverSpec> short_driver(const std::string& text) {
  DriverSpec spec;
  spec.source = text;
  std::string lower = to_lower(text);
  if (lower == "telekern" || lower == "broker" || lower == "proxy") {
    spec.kind = DriverKind::kTelekern;
    spec.name = "telekern";
  } else if (lower == "sink") {
    spec.kind = DriverKind::kSink;
    spec.name = "sink";
  } else if (lower.starts_with("telekern://") || lower.starts_with("telekerns://")) {
    spec.kind = DriverKind::kTelekern;
    spec.name = "telekern";
    spec.transport = text;
  } else if (lower.starts_with("kafka://")) {
    spec.kind = DriverKind::kKafka;
    spec.name = "kafka";
    spec.transport = text;
  } else if (lower.starts_with("redis://")) {
    spec.kind = DriverKind::kRedis;
    spec.name = "redis";
    if (auto s = host_port(std::string_view(text).substr(8), spec.redis_host, spec.redis_port);
        !s.ok())
      return s;
  } else if (lower.starts_with("nats://")) {
    spec.kind = DriverKind::kNats;
    spec.name = "nats";
    spec.nats_url = text;
  } else {
    return absl::InvalidArgumentError(
        str_cat("driver '", text,
                "' is not a driver YAML file or one of telekern, sink, telekern://HOST:PORT, "
                "kafka://HOST:PORT, redis://HOST:PORT, nats://HOST:PORT"));
  }
  return spec;
}

}  // namespace

absl::StatusOr<DriverSpec> parse_driver(const std::string& text) {
  std::string trimmed(trim(text));
  if (trimmed.find('\n') == std::string::npos && trimmed.find(": ") == std::string::npos)
    return short_driver(trimmed);
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& error) {
    return absl::InvalidArgumentError(str_cat("driver is not YAML: ", error.what()));
  }
  if (!root.IsMap()) return absl::InvalidArgumentError("driver YAML must be a mapping");
  DriverSpec spec;
  spec.source = text;
  spec.name = root["name"].as<std::string>("");
  std::string driver_class = to_lower(root["driverClass"].as<std::string>(""));
  if (driver_class.find("kafka") != std::string::npos) {
    spec.kind = DriverKind::kKafka;
  } else if (driver_class.find("redis") != std::string::npos) {
    spec.kind = DriverKind::kRedis;
  } else if (driver_class.find("nats") != std::string::npos) {
    spec.kind = DriverKind::kNats;
  } else if (driver_class.find("sink") != std::string::npos) {
    spec.kind = DriverKind::kSink;
  } else if (driver_class.find("telekern") != std::string::npos || driver_class.empty()) {
    spec.kind = DriverKind::kTelekern;
  } else {
    return absl::InvalidArgumentError(
        str_cat("driverClass '", driver_class, "' is not telekern, kafka, redis, nats or sink"));
  }
  if (spec.name.empty()) spec.name = driver_kind_name(spec.kind);
  spec.transport = root["transport"].as<std::string>("");
  if (spec.kind == DriverKind::kKafka && spec.transport.empty()) {
    // OMB's Kafka driver: commonConfig is a properties block with bootstrap.servers.
    for (const char* block : {"commonConfig", "producerConfig", "consumerConfig"}) {
      for (const auto& line : split(root[block].as<std::string>(""), '\n')) {
        auto t = trim(line);
        auto equals = t.find('=');
        if (t.empty() || t[0] == '#' || equals == std::string_view::npos) continue;
        std::string name(trim(t.substr(0, equals)));
        std::string value(trim(t.substr(equals + 1)));
        if (name == "bootstrap.servers") {
          spec.transport = str_cat("kafka://", value);
        } else {
          spec.kafka_properties.emplace_back(name, value);
        }
      }
    }
    if (spec.transport.empty())
      return absl::InvalidArgumentError(
          "Kafka driver needs commonConfig with bootstrap.servers=HOST:PORT or transport");
  }
  spec.redis_host = root["redisHost"].as<std::string>(spec.redis_host);
  spec.redis_port = root["redisPort"].as<int>(spec.redis_port);
  spec.nats_url = root["natsHostUrl"].as<std::string>(spec.nats_url);
  spec.nats_jetstream = root["jetStream"].as<bool>(spec.nats_jetstream);
  return spec;
}

}  // namespace telekern::bench
