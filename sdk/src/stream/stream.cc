#include "telekern/stream.h"

#include "telekern/strings.h"

namespace telekern::stream {
namespace {

struct Transport {
  std::string scheme;
  std::string address;
};

absl::StatusOr<Transport> parse_transport(const std::string& transport) {
  auto separator = transport.find("://");
  if (separator == std::string::npos || separator + 3 >= transport.size()) {
    return absl::InvalidArgumentError(
        str_cat("transport '", transport,
                "' must be telekern://host:port or kafka://broker1:9092,broker2:9092"));
  }
  Transport parsed{transport.substr(0, separator), transport.substr(separator + 3)};
  if (parsed.scheme != "telekern" && parsed.scheme != "kafka") {
    return absl::InvalidArgumentError(
        str_cat("transport scheme '", parsed.scheme,
                "' is unknown; use telekern:// (embedded broker) or kafka://"));
  }
  return parsed;
}

}  // namespace

ConfigSchema stream_config_schema(const std::string& prefix) {
  auto key = [&](const char* name) { return prefix + name; };
  auto security = [](const YAML::Node& node) {
    std::string value = node.IsScalar() ? to_lower(node.Scalar()) : "";
    if (value.empty() || value == "plaintext" || value == "ssl" || value == "sasl_plaintext" ||
        value == "sasl_ssl") {
      return absl::OkStatus();
    }
    return absl::InvalidArgumentError("must be plaintext, ssl, sasl_plaintext or sasl_ssl");
  };
  return {
      {key("transport"), ConfigType::kString, "telekern://127.0.0.1:7070",
       "telekern://host:port (embedded broker) or kafka://b1:9092,b2:9092",
       [](const YAML::Node& node) {
         auto parsed = parse_transport(node.IsScalar() ? node.Scalar() : "");
         return parsed.ok() ? absl::OkStatus() : parsed.status();
       }},
      {key("client_id"), ConfigType::kString, "telekern", "Client id reported to the broker"},
      {key("api_key"), ConfigType::kSecret, "", "API key for a telekern transport with auth"},
      {key("kafka.security_protocol"), ConfigType::kString, "",
       "plaintext, ssl, sasl_plaintext or sasl_ssl", security},
      {key("kafka.sasl_mechanism"), ConfigType::kString, "",
       "PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512"},
      {key("kafka.sasl_username"), ConfigType::kString, "", "SASL user"},
      {key("kafka.sasl_password"), ConfigType::kSecret, "", "SASL password"},
      {key("kafka.ssl_ca_location"), ConfigType::kString, "", "CA certificate path"},
      {key("kafka.ssl_certificate_location"), ConfigType::kString, "", "Client certificate path"},
      {key("kafka.ssl_key_location"), ConfigType::kString, "", "Client private key path"},
      {key("kafka.ssl_key_password"), ConfigType::kSecret, "", "Client key password"},
      {key("kafka.ssl_endpoint_identification_algorithm"), ConfigType::kString, "https",
       "https verifies the broker host name; none disables"},
      {key("kafka.session_timeout_ms"), ConfigType::kInt, "30000",
       "Consumer group session timeout"},
      {key("kafka.heartbeat_interval_ms"), ConfigType::kInt, "10000",
       "Consumer group heartbeat interval"},
      {key("kafka.max_poll_interval_ms"), ConfigType::kInt, "300000",
       "Longest gap between polls before leaving the group"},
      {key("kafka.fetch_min_bytes"), ConfigType::kInt, "1", "Minimum bytes per fetch"},
      {key("kafka.fetch_max_bytes"), ConfigType::kInt, "52428800", "Maximum bytes per fetch"},
      {key("kafka.properties"), ConfigType::kNode, "",
       "Map of further librdkafka properties, passed through"},
  };
}

StreamConfig stream_config_from(const Config& config, const std::string& prefix) {
  auto get = [&](const char* name) { return config.get_string(prefix + name); };
  StreamConfig out;
  out.transport = get("transport");
  out.client_id = get("client_id");
  out.api_key = get("api_key");
  out.security_protocol = get("kafka.security_protocol");
  out.sasl_mechanism = get("kafka.sasl_mechanism");
  out.sasl_username = get("kafka.sasl_username");
  out.sasl_password = get("kafka.sasl_password");
  out.ssl_ca_location = get("kafka.ssl_ca_location");
  out.ssl_certificate_location = get("kafka.ssl_certificate_location");
  out.ssl_key_location = get("kafka.ssl_key_location");
  out.ssl_key_password = get("kafka.ssl_key_password");
  out.ssl_endpoint_identification_algorithm = get("kafka.ssl_endpoint_identification_algorithm");
  out.session_timeout_ms = static_cast<int>(config.get_int(prefix + "kafka.session_timeout_ms"));
  out.heartbeat_interval_ms =
      static_cast<int>(config.get_int(prefix + "kafka.heartbeat_interval_ms"));
  out.max_poll_interval_ms =
      static_cast<int>(config.get_int(prefix + "kafka.max_poll_interval_ms"));
  out.fetch_min_bytes = static_cast<int>(config.get_int(prefix + "kafka.fetch_min_bytes"));
  out.fetch_max_bytes = static_cast<int>(config.get_int(prefix + "kafka.fetch_max_bytes"));
  auto extra = config.get_node(prefix + "kafka.properties");
  if (extra.IsDefined() && extra.IsMap()) {
    for (const auto& entry : extra) {
      out.extra_properties.emplace_back(entry.first.as<std::string>(),
                                        entry.second.as<std::string>());
    }
  }
  return out;
}

absl::StatusOr<std::unique_ptr<Producer>> make_producer(const StreamConfig& config) {
  auto transport = parse_transport(config.transport);
  if (!transport.ok()) return transport.status();
  if (transport->scheme == "kafka") return make_kafka_producer(config, transport->address);
  return make_broker_producer(config, transport->address);
}

absl::StatusOr<std::unique_ptr<Consumer>> make_consumer(const StreamConfig& config,
                                                        const ConsumerOptions& options) {
  auto transport = parse_transport(config.transport);
  if (!transport.ok()) return transport.status();
  if (options.group.empty()) return absl::InvalidArgumentError("a consumer needs a group");
  if (options.topics.empty())
    return absl::InvalidArgumentError("a consumer needs at least one topic");
  if (transport->scheme == "kafka") return make_kafka_consumer(config, transport->address, options);
  return make_broker_consumer(config, transport->address, options);
}

}  // namespace telekern::stream
