// Fields marked prompt_secret: which a request needs and lacks.
#include "shell/secret_fields.h"

#include <gtest/gtest.h>

#include "telekern/tracer/v1/tracer.pb.h"

namespace telekern::shell {
namespace {

namespace tv1 = telekern::tracer::v1;

tv1::TraceDeviceRequest ssh_request() {
  tv1::TraceDeviceRequest request;
  request.set_device_id("dev-1");
  request.set_source(tv1::SOURCE_SSH);
  request.mutable_ssh()->set_host("bastion");
  return request;
}

TEST(SecretFieldsTest, AnSshTraceWithoutPasswordNeedsOne) {
  auto request = ssh_request();
  auto missing = missing_secrets(request, {"dev-1", "--source", "ssh", "--ssh.host", "bastion"});
  ASSERT_EQ(missing.size(), 1u);
  EXPECT_EQ(missing[0].flag, "ssh.password");
  EXPECT_EQ(missing[0].prompt, "SSH password");
  EXPECT_EQ(missing[0].env, "TELESH_SSH_PASSWORD");
  EXPECT_EQ(missing[0].holder, request.mutable_ssh());
  std::string message = missing_secret_message(missing[0]);
  EXPECT_NE(message.find("--ssh.password"), std::string::npos) << message;
  EXPECT_NE(message.find("TELESH_SSH_PASSWORD"), std::string::npos) << message;
  EXPECT_NE(message.find("--ssh.password-env or --ssh.key-file"), std::string::npos) << message;
  missing[0].holder->GetReflection()->SetString(missing[0].holder, missing[0].field, "pw");
  EXPECT_EQ(request.ssh().password(), "pw");
}

TEST(SecretFieldsTest, OtherSourcesAlternativesAndExplicitFlagsNeedNone) {
  auto kafka = ssh_request();
  kafka.set_source(tv1::SOURCE_KAFKA);
  EXPECT_TRUE(missing_secrets(kafka, {}).empty());
  auto given = ssh_request();
  given.mutable_ssh()->set_password("pw");
  EXPECT_TRUE(missing_secrets(given, {}).empty());
  auto with_env = ssh_request();
  with_env.mutable_ssh()->set_password_env("PW");
  EXPECT_TRUE(missing_secrets(with_env, {}).empty());
  auto with_key = ssh_request();
  with_key.mutable_ssh()->set_key_file("/k");
  EXPECT_TRUE(missing_secrets(with_key, {}).empty());
  auto explicit_empty = ssh_request();
  EXPECT_TRUE(missing_secrets(explicit_empty, {"--ssh.password="}).empty());
  EXPECT_TRUE(missing_secrets(explicit_empty, {"--ssh.password", ""}).empty());
}

TEST(SecretFieldsTest, AKafkaUsernameWithoutPasswordNeedsOne) {
  tv1::TraceDeviceRequest request;
  request.set_device_id("dev-1");
  EXPECT_TRUE(missing_secrets(request, {}).empty());
  request.mutable_kafka_security()->set_protocol(tv1::KAFKA_SECURITY_PROTOCOL_SASL_SSL);
  EXPECT_TRUE(missing_secrets(request, {}).empty()) << "no username: the module's credentials";
  request.mutable_kafka_security()->set_username("tracer");
  auto missing = missing_secrets(request, {});
  ASSERT_EQ(missing.size(), 1u);
  EXPECT_EQ(missing[0].flag, "kafka-security.password");
  EXPECT_EQ(missing[0].env, "TELESH_KAFKA_PASSWORD");
}

}  // namespace
}  // namespace telekern::shell
