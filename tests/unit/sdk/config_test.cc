#include "telekern/config.h"

#include <gtest/gtest.h>

namespace telekern {
namespace {

ConfigSchema schema() {
  return {
      {"listen", ConfigType::kString, "127.0.0.1:7070", "address"},
      {"retention.bytes", ConfigType::kInt, "1024", "bytes"},
      {"retention.time", ConfigType::kDuration, "7d", "age"},
      {"enabled", ConfigType::kBool, "true", "switch"},
      {"brokers", ConfigType::kStringList, "", "list"},
      {"password", ConfigType::kSecret, "", "secret"},
      {"partitions", ConfigType::kInt, "4", "count",
       [](const YAML::Node& node) {
         return node.as<int>() > 0 ? absl::OkStatus()
                                   : absl::InvalidArgumentError("must be positive");
       }},
  };
}

TEST(ConfigTest, DefaultsFillMissingKeys) {
  auto config = validate_config(schema(), YAML::Node(), {"", "", {}});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->get_string("listen"), "127.0.0.1:7070");
  EXPECT_EQ(config->get_int("retention.bytes"), 1024);
  EXPECT_EQ(config->get_duration("retention.time"), std::chrono::hours(24 * 7));
  EXPECT_TRUE(config->get_bool("enabled"));
  EXPECT_TRUE(config->get_string_list("brokers").empty());
}

TEST(ConfigTest, DefaultsFillAnAbsentSection) {
  auto config =
      validate_config(schema(), YAML::Node(YAML::NodeType::Undefined), {"", "modules.x", {}});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->get_int("partitions"), 4);
  EXPECT_EQ(config->get_string("listen"), "127.0.0.1:7070");
}

TEST(ConfigTest, FileValuesOverrideDefaults) {
  auto node = YAML::Load("retention:\n  bytes: 99\nbrokers: [a, b]\nenabled: false\n");
  auto config = validate_config(schema(), node, {"x.yaml", "", {}});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->get_int("retention.bytes"), 99);
  EXPECT_EQ(config->get_string_list("brokers"), (std::vector<std::string>{"a", "b"}));
  EXPECT_FALSE(config->get_bool("enabled"));
}

// A dotted key may be spelled flat: it is read, not accepted and ignored.
TEST(ConfigTest, FlatDottedKeysAreReadLikeNestedOnes) {
  auto node = YAML::Load("retention.bytes: 77\nretention:\n  time: 1h\n");
  auto config = validate_config(schema(), node, {"x.yaml", "", {}});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->get_int("retention.bytes"), 77);
  EXPECT_EQ(config->get_duration("retention.time"), std::chrono::hours(1));
}

TEST(ConfigTest, EnvironmentOverridesFile) {
  auto node = YAML::Load("retention:\n  bytes: 99\n");
  std::map<std::string, std::string> env = {
      {"TELEKERN_MODULES_BROKER_RETENTION_BYTES", "5"},
      {"TELEKERN_MODULES_BROKER_BROKERS", "k1:9092, k2:9092"},
  };
  auto config = validate_config(schema(), node, {"x.yaml", "modules.broker", env});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->get_int("retention.bytes"), 5);
  EXPECT_EQ(config->get_string_list("brokers"), (std::vector<std::string>{"k1:9092", "k2:9092"}));
}

TEST(ConfigTest, UnknownKeyNamesFileLineAndKey) {
  auto node = YAML::Load("listen: a:1\n\nretention:\n  byts: 3\n");
  auto config = validate_config(schema(), node, {"conf.yaml", "modules.broker", {}});
  ASSERT_FALSE(config.ok());
  std::string message(config.status().message());
  EXPECT_NE(message.find("conf.yaml:4"), std::string::npos) << message;
  EXPECT_NE(message.find("modules.broker.retention.byts"), std::string::npos) << message;
  EXPECT_NE(message.find("did you mean 'retention.bytes'"), std::string::npos) << message;
}

// Found by tests/fuzz/config_fuzz: a key that is a list threw out of validation.
TEST(ConfigTest, ListAsAKeyIsAnUnknownKeyNotAnException) {
  auto config = validate_config(schema(), YAML::Load("[1, 2]: x\n"), {"c.yaml", "", {}});
  ASSERT_FALSE(config.ok());
  EXPECT_NE(config.status().message().find("unknown key '[1, 2]'"), std::string::npos)
      << config.status();
}

TEST(ConfigTest, WrongTypeIsRejectedWithKey) {
  auto config = validate_config(schema(), YAML::Load("partitions: many\n"), {"c.yaml", "", {}});
  ASSERT_FALSE(config.ok());
  EXPECT_NE(config.status().message().find("c.yaml:1: key 'partitions'"), std::string::npos)
      << config.status();
}

TEST(ConfigTest, ValidatorRuns) {
  auto config = validate_config(schema(), YAML::Load("partitions: 0\n"), {"c.yaml", "", {}});
  ASSERT_FALSE(config.ok());
  EXPECT_NE(config.status().message().find("must be positive"), std::string::npos);
}

TEST(ConfigTest, BadEnvironmentValueNamesVariable) {
  auto config =
      validate_config(schema(), YAML::Node(), {"", "", {{"TELEKERN_ENABLED", "perhaps"}}});
  ASSERT_FALSE(config.ok());
  EXPECT_NE(config.status().message().find("TELEKERN_ENABLED"), std::string::npos);
}

TEST(ConfigTest, SecretsAreMasked) {
  auto config = validate_config(schema(), YAML::Load("password: hunter2\n"), {"", "", {}});
  ASSERT_TRUE(config.ok());
  EXPECT_EQ(config->to_yaml().find("hunter2"), std::string::npos);
  EXPECT_NE(config->to_yaml(false).find("hunter2"), std::string::npos);
}

TEST(ConfigTest, NestedSecretsAreMasked) {
  ConfigSchema nested = {{"auth.users", ConfigType::kNode, "", "users"}};
  auto config = validate_config(
      nested, YAML::Load("auth:\n  users:\n    - {name: alice, password_hash: 'pbkdf2$x'}\n"),
      {"", "", {}});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->to_yaml().find("pbkdf2"), std::string::npos) << config->to_yaml();
  EXPECT_NE(config->to_yaml().find("alice"), std::string::npos);
}

TEST(ConfigTest, DurationParsing) {
  EXPECT_EQ(*parse_duration("250ms"), std::chrono::milliseconds(250));
  EXPECT_EQ(*parse_duration("30s"), std::chrono::seconds(30));
  EXPECT_EQ(*parse_duration("5m"), std::chrono::minutes(5));
  EXPECT_EQ(*parse_duration("1.5h"), std::chrono::minutes(90));
  EXPECT_FALSE(parse_duration("soon").ok());
  EXPECT_FALSE(parse_duration("5 weeks").ok());
  // Found by tests/fuzz/config_fuzz: these threw or overflowed.
  EXPECT_FALSE(parse_duration(".").ok());
  EXPECT_FALSE(parse_duration(".x5m").ok());
  EXPECT_FALSE(parse_duration("1.2.3s").ok());
  EXPECT_FALSE(parse_duration("99999999999999999999d").ok());
}

TEST(ConfigTest, EnvironmentVariableNames) {
  EXPECT_EQ(environment_variable_for("modules.broker.max_partitions"),
            "TELEKERN_MODULES_BROKER_MAX_PARTITIONS");
  EXPECT_EQ(environment_variable_for("log.level"), "TELEKERN_LOG_LEVEL");
}

}  // namespace
}  // namespace telekern
