// Kafka SASL/TLS settings (sdk/kafka_security.h): the librdkafka properties
// they map onto, librdkafka accepting them, and errors naming the cause.
#include "telekern/kafka_security.h"

#include <gtest/gtest.h>
#include <librdkafka/rdkafka.h>

#include <fstream>
#include <map>

#include "tests/support/process.h"

namespace telekern {
namespace {

using testing::run_command;
using testing::TempDir;

std::map<std::string, std::string> as_map(
    const std::vector<std::pair<std::string, std::string>>& properties) {
  return {properties.begin(), properties.end()};
}

TEST(KafkaSecurityTest, SaslSslSettingsMapOntoLibrdkafkaProperties) {
  TempDir dir("kafka-security");
  std::string ca = (dir.path() / "ca.pem").string();
  std::string key = (dir.path() / "client.key").string();
  std::string cert = (dir.path() / "client.pem").string();
  auto made = run_command(
      "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=test-ca "
      "-keyout " +
      key + " -out " + ca + " && cp " + ca + " " + cert);
  ASSERT_EQ(made.exit_code, 0) << made.output;
  KafkaSecurity security{.protocol = "SASL_SSL",
                         .sasl_mechanism = "scram_sha_512",
                         .username = "tracer",
                         .password = "s3cret",
                         .ca_file = ca,
                         .cert_file = cert,
                         .key_file = key};
  auto properties = kafka_security_properties(security);
  ASSERT_TRUE(properties.ok()) << properties.status();
  EXPECT_EQ(as_map(*properties),
            (std::map<std::string, std::string>{{"security.protocol", "sasl_ssl"},
                                                {"sasl.mechanisms", "SCRAM-SHA-512"},
                                                {"sasl.username", "tracer"},
                                                {"sasl.password", "s3cret"},
                                                {"ssl.ca.location", ca},
                                                {"ssl.certificate.location", cert},
                                                {"ssl.key.location", key}}));
  // librdkafka takes every property and builds a client with them (it loads
  // the CA, certificate and key at creation).
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  char error[512];
  for (const auto& [name, value] : *properties) {
    ASSERT_EQ(rd_kafka_conf_set(conf, name.c_str(), value.c_str(), error, sizeof error),
              RD_KAFKA_CONF_OK)
        << name << ": " << error;
  }
  rd_kafka_t* client = rd_kafka_new(RD_KAFKA_CONSUMER, conf, error, sizeof error);
  ASSERT_NE(client, nullptr) << error;
  rd_kafka_destroy(client);
}

TEST(KafkaSecurityTest, ModuleDefaultsYieldToTheRequestFieldByField) {
  KafkaSecurity module{.protocol = "sasl_plaintext", .username = "svc", .password = "pw"};
  auto merged = module.merged_with({.username = "alice", .password = "apw"});
  EXPECT_EQ(merged.protocol, "sasl_plaintext");
  EXPECT_EQ(merged.username, "alice");
  EXPECT_EQ(merged.password, "apw");
  auto none = kafka_security_properties({});
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty()) << "nothing set: librdkafka's defaults";
}

TEST(KafkaSecurityTest, BadSettingsAndFilesGiveErrorsNamingTheCause) {
  TempDir dir("kafka-security-bad");
  auto message = [](const KafkaSecurity& security) {
    auto properties = kafka_security_properties(security);
    EXPECT_FALSE(properties.ok());
    return std::string(properties.status().message());
  };
  EXPECT_NE(message({.protocol = "tls"}).find("'tls' is unknown: use plaintext, ssl"),
            std::string::npos);
  EXPECT_NE(
      message({.protocol = "sasl_ssl", .sasl_mechanism = "MD5", .username = "u", .password = "p"})
          .find("mechanism 'MD5' is unknown"),
      std::string::npos);
  EXPECT_NE(message({.protocol = "ssl", .username = "u"}).find("need security protocol sasl_"),
            std::string::npos);
  EXPECT_NE(message({.ca_file = "/etc/hosts"}).find("need security protocol ssl"),
            std::string::npos);
  EXPECT_NE(
      message({.protocol = "sasl_ssl", .username = "u"}).find("needs a username and a password"),
      std::string::npos);
  std::string missing = (dir.path() / "missing-ca.pem").string();
  std::string text = message({.protocol = "ssl", .ca_file = missing});
  EXPECT_NE(text.find("CA file '" + missing + "' cannot be read: No such file or directory"),
            std::string::npos)
      << text;
  std::string garbage = (dir.path() / "garbage.pem").string();
  std::ofstream(garbage) << "not a certificate\n";
  text = message({.protocol = "ssl", .ca_file = garbage});
  EXPECT_NE(text.find("CA file '" + garbage + "' holds no PEM CA certificate"), std::string::npos)
      << text;
  EXPECT_NE(message({.protocol = "ssl", .cert_file = garbage}).find("go together"),
            std::string::npos);
}

}  // namespace
}  // namespace telekern
