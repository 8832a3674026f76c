// Kafka authentication and encryption as typed settings (security protocol,
// SASL mechanism and credentials, CA, client certificate and key), checked
// and mapped onto librdkafka properties, so modules that talk to Kafka
// directly declare the same keys and give the same errors.
//
//   KafkaSecurity security{.protocol = "sasl_ssl", .sasl_mechanism = "SCRAM-SHA-512",
//                          .username = "tracer", .password = secret, .ca_file = "/etc/ca.pem"};
//   auto properties = kafka_security_properties(security);  // {"security.protocol", "sasl_ssl"},
//   ...
#pragma once

#include <absl/status/statusor.h>

#include <string>
#include <utility>
#include <vector>

namespace telekern {

struct KafkaSecurity {
  std::string protocol;        // plaintext | ssl | sasl_plaintext | sasl_ssl; "" = library default
  std::string sasl_mechanism;  // PLAIN | SCRAM-SHA-256 | SCRAM-SHA-512 | OAUTHBEARER | GSSAPI
  std::string username;
  std::string password;
  std::string ca_file;       // PEM CA bundle verifying the brokers
  std::string cert_file;     // PEM client certificate (mutual TLS)
  std::string key_file;      // PEM client private key
  std::string key_password;  // of key_file, when encrypted

  // `override` field by field: its non-empty fields replace these.
  KafkaSecurity merged_with(const KafkaSecurity& override) const;
};

// The librdkafka properties for the settings given (empty ones left out), or
// an error naming the setting and the fix: an unknown protocol or mechanism,
// SASL credentials without a sasl_* protocol, TLS files without an ssl
// protocol, a file that cannot be read or holds no PEM block of its kind.
absl::StatusOr<std::vector<std::pair<std::string, std::string>>> kafka_security_properties(
    const KafkaSecurity& security);

}  // namespace telekern
