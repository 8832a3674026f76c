#include "telekern/kafka_security.h"

#include <absl/strings/ascii.h>
#include <absl/strings/str_cat.h>
#include <absl/strings/str_join.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace telekern {
namespace {

constexpr std::array<const char*, 4> kProtocols = {"plaintext", "ssl", "sasl_plaintext",
                                                   "sasl_ssl"};
constexpr std::array<const char*, 5> kMechanisms = {"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512",
                                                    "OAUTHBEARER", "GSSAPI"};

// The file's text, or why it cannot be used as `what`.
absl::StatusOr<std::string> read_pem(const std::string& setting, const std::string& path,
                                     const std::string& what, const std::string& marker) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::InvalidArgumentError(absl::StrCat("kafka ", setting, " '", path,
                                                   "' cannot be read: ", std::strerror(errno),
                                                   " (give a readable PEM ", what, " file)"));
  }
  std::ostringstream text;
  text << in.rdbuf();
  std::string content = text.str();
  if (content.find("-----BEGIN ") == std::string::npos ||
      content.find(marker) == std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("kafka ", setting, " '", path, "' holds no PEM ", what, " (no '", marker,
                     "' block): give the PEM file, not DER or a key"));
  }
  return content;
}

}  // namespace

KafkaSecurity KafkaSecurity::merged_with(const KafkaSecurity& override) const {
  KafkaSecurity out = *this;
  auto take = [](std::string& field, const std::string& value) {
    if (!value.empty()) field = value;
  };
  take(out.protocol, override.protocol);
  take(out.sasl_mechanism, override.sasl_mechanism);
  take(out.username, override.username);
  take(out.password, override.password);
  take(out.ca_file, override.ca_file);
  take(out.cert_file, override.cert_file);
  take(out.key_file, override.key_file);
  take(out.key_password, override.key_password);
  return out;
}

absl::StatusOr<std::vector<std::pair<std::string, std::string>>> kafka_security_properties(
    const KafkaSecurity& security) {
  std::vector<std::pair<std::string, std::string>> properties;
  std::string protocol = absl::AsciiStrToLower(security.protocol);
  if (!protocol.empty() &&
      std::find(kProtocols.begin(), kProtocols.end(), protocol) == kProtocols.end()) {
    return absl::InvalidArgumentError(absl::StrCat("kafka security protocol '", security.protocol,
                                                   "' is unknown: use ",
                                                   absl::StrJoin(kProtocols, ", ")));
  }
  bool sasl = protocol.rfind("sasl_", 0) == 0;
  bool ssl = protocol == "ssl" || protocol == "sasl_ssl";
  std::string mechanism = absl::AsciiStrToUpper(security.sasl_mechanism);
  std::replace(mechanism.begin(), mechanism.end(), '_', '-');
  if (!mechanism.empty() &&
      std::find(kMechanisms.begin(), kMechanisms.end(), mechanism) == kMechanisms.end()) {
    return absl::InvalidArgumentError(absl::StrCat("kafka SASL mechanism '",
                                                   security.sasl_mechanism, "' is unknown: use ",
                                                   absl::StrJoin(kMechanisms, ", ")));
  }
  if (!sasl && (!mechanism.empty() || !security.username.empty() || !security.password.empty())) {
    return absl::InvalidArgumentError(
        "kafka SASL settings (mechanism, username, password) need security protocol sasl_ssl or "
        "sasl_plaintext");
  }
  if (!ssl && (!security.ca_file.empty() || !security.cert_file.empty() ||
               !security.key_file.empty() || !security.key_password.empty())) {
    return absl::InvalidArgumentError(
        "kafka TLS files (CA, certificate, key) need security protocol ssl or sasl_ssl");
  }
  if (sasl && (mechanism.empty() || mechanism == "PLAIN" || mechanism.rfind("SCRAM", 0) == 0) &&
      (security.username.empty() || security.password.empty())) {
    return absl::InvalidArgumentError(
        absl::StrCat("kafka SASL ", mechanism.empty() ? "PLAIN" : mechanism,
                     " needs a username and a password (the password is a secret: config key, "
                     "environment or prompt)"));
  }
  if (!security.cert_file.empty() != !security.key_file.empty()) {
    return absl::InvalidArgumentError(
        "kafka client certificate and key go together: give both cert_file and key_file");
  }
  if (!security.ca_file.empty()) {
    auto ca = read_pem("CA file", security.ca_file, "CA certificate", "CERTIFICATE-----");
    if (!ca.ok()) return ca.status();
  }
  if (!security.cert_file.empty()) {
    auto cert = read_pem("certificate file", security.cert_file, "certificate", "CERTIFICATE-----");
    if (!cert.ok()) return cert.status();
    auto key = read_pem("key file", security.key_file, "private key", "PRIVATE KEY-----");
    if (!key.ok()) return key.status();
  }
  auto add = [&](const char* name, const std::string& value) {
    if (!value.empty()) properties.emplace_back(name, value);
  };
  add("security.protocol", protocol);
  add("sasl.mechanisms", mechanism);
  add("sasl.username", security.username);
  add("sasl.password", security.password);
  add("ssl.ca.location", security.ca_file);
  add("ssl.certificate.location", security.cert_file);
  add("ssl.key.location", security.key_file);
  add("ssl.key.password", security.key_password);
  return properties;
}

}  // namespace telekern
