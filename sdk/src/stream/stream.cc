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
                "' must be telekern://host:port, telekerns://host:port or "
                "kafka://broker1:9092,broker2:9092"));
  }
  Transport parsed{transport.substr(0, separator), transport.substr(separator + 3)};
  if (parsed.scheme != "telekern" && parsed.scheme != "telekerns" && parsed.scheme != "kafka") {
    return absl::InvalidArgumentError(
        str_cat("transport scheme '", parsed.scheme,
                "' is unknown; use telekern:// (embedded broker), telekerns:// (TLS) or kafka://"));
  }
  return parsed;
}

}  // namespace

const ConfigMap<StreamConfig>& stream_config_map() {
  static const ConfigMap<StreamConfig> map = [] {
    using S = StreamConfig;
    auto transport = [](const std::string& text) { return parse_transport(text).status(); };
    auto security = [](const std::string& text) {
      std::string value = to_lower(text);
      if (value.empty() || value == "plaintext" || value == "ssl" || value == "sasl_plaintext" ||
          value == "sasl_ssl") {
        return absl::OkStatus();
      }
      return absl::InvalidArgumentError("must be plaintext, ssl, sasl_plaintext or sasl_ssl");
    };
    ConfigMap<S> keys;
    keys.key("transport", &S::transport, "telekern://127.0.0.1:7070",
             "telekern://host:port (embedded broker), telekerns://host:port (TLS) or "
             "kafka://b1:9092,b2:9092",
             FieldCheck<std::string>(transport))
        .key("client_id", &S::client_id, "telekern", "Client id reported to the broker")
        .secret("api_key", &S::api_key, "API key for a telekern transport with auth")
        .key("tls.ca_file", &S::tls_ca_file, "", "telekerns://: CA certificate path")
        .key("tls.cert_file", &S::tls_cert_file, "", "telekerns://: client certificate path")
        .key("tls.key_file", &S::tls_key_file, "", "telekerns://: client private key path")
        .key("kafka.security_protocol", &S::security_protocol, "",
             "plaintext, ssl, sasl_plaintext or sasl_ssl", FieldCheck<std::string>(security))
        .key("kafka.sasl_mechanism", &S::sasl_mechanism, "",
             "PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512")
        .key("kafka.sasl_username", &S::sasl_username, "", "SASL user")
        .secret("kafka.sasl_password", &S::sasl_password, "SASL password")
        .key("kafka.ssl_ca_location", &S::ssl_ca_location, "", "CA certificate path")
        .key("kafka.ssl_certificate_location", &S::ssl_certificate_location, "",
             "Client certificate path")
        .key("kafka.ssl_key_location", &S::ssl_key_location, "", "Client private key path")
        .secret("kafka.ssl_key_password", &S::ssl_key_password, "Client key password")
        .key("kafka.ssl_endpoint_identification_algorithm",
             &S::ssl_endpoint_identification_algorithm, "https",
             "https verifies the broker host name; none disables")
        .key("kafka.session_timeout_ms", &S::session_timeout_ms, "30000",
             "Consumer group session timeout", at_least(1))
        .key("kafka.heartbeat_interval_ms", &S::heartbeat_interval_ms, "10000",
             "Consumer group heartbeat interval", at_least(1))
        .key("kafka.max_poll_interval_ms", &S::max_poll_interval_ms, "300000",
             "Longest gap between polls before leaving the group", at_least(1))
        .key("kafka.fetch_min_bytes", &S::fetch_min_bytes, "1", "Minimum bytes per fetch",
             at_least(1))
        .key("kafka.fetch_max_bytes", &S::fetch_max_bytes, "52428800", "Maximum bytes per fetch",
             at_least(1))
        .key("kafka.properties", &S::extra_properties, "",
             "Map of further librdkafka properties, passed through");
    return keys;
  }();
  return map;
}

absl::StatusOr<std::unique_ptr<Producer>> make_producer(const StreamConfig& config) {
  auto transport = parse_transport(config.transport);
  if (!transport.ok()) return transport.status();
  if (transport->scheme == "kafka") return make_kafka_producer(config, transport->address);
  return make_broker_producer(config, transport->address, transport->scheme == "telekerns");
}

absl::StatusOr<std::unique_ptr<Consumer>> make_consumer(const StreamConfig& config,
                                                        const ConsumerOptions& options) {
  auto transport = parse_transport(config.transport);
  if (!transport.ok()) return transport.status();
  if (options.group.empty()) return absl::InvalidArgumentError("a consumer needs a group");
  if (options.topics.empty())
    return absl::InvalidArgumentError("a consumer needs at least one topic");
  if (transport->scheme == "kafka") return make_kafka_consumer(config, transport->address, options);
  return make_broker_consumer(config, transport->address, transport->scheme == "telekerns",
                              options);
}

}  // namespace telekern::stream
