#include "telekern/config_map.h"

#include <gtest/gtest.h>

namespace telekern {
namespace {

enum class Mode { kFast, kSafe };

struct Nested {
  std::string address;
  int attempts = 0;
};

struct Options {
  uint32_t partitions = 0;
  uint32_t max_partitions = 0;
  bool enabled = false;
  double ratio = 0;
  std::chrono::milliseconds timeout{0};
  std::vector<std::string> brokers;
  std::vector<std::chrono::milliseconds> backoff;
  std::string password;
  Mode mode = Mode::kFast;
  Nested upstream;
};

ConfigMap<Nested> nested_map() {
  ConfigMap<Nested> map;
  map.key("address", &Nested::address, "127.0.0.1:1", "where")
      .key("attempts", &Nested::attempts, "3", "how often", at_least(1));
  return map;
}

ConfigMap<Options> options_map() {
  ConfigMap<Options> map;
  map.key("partitions", &Options::partitions, "4", "count", at_least<uint32_t>(1))
      .key("max_partitions", &Options::max_partitions, "64", "limit", at_least<uint32_t>(1))
      .key("enabled", &Options::enabled, "true", "switch")
      .key("ratio", &Options::ratio, "0.5", "share")
      .key("timeout", &Options::timeout, "30s", "wait", positive_duration())
      .key("brokers", &Options::brokers, "[a, b]", "list")
      .key("backoff", &Options::backoff, "[1s, 5s]", "steps")
      .secret("password", &Options::password, "secret")
      .choice("mode", &Options::mode, "safe", "fast or safe",
              {{"fast", Mode::kFast}, {"safe", Mode::kSafe}})
      .nest("upstream.", &Options::upstream, nested_map())
      .rule({"partitions", "max_partitions"}, [](const Options& options) {
        return options.partitions <= options.max_partitions
                   ? absl::OkStatus()
                   : absl::InvalidArgumentError("partitions exceeds max_partitions");
      });
  return map;
}

absl::StatusOr<Options> bind_yaml(const std::string& yaml,
                                  std::map<std::string, std::string> environment = {}) {
  auto map = options_map();
  auto config = validate_config(map.schema(), YAML::Load(yaml)["section"],
                                {"test.yaml", "modules.x", std::move(environment)});
  if (!config.ok()) return config.status();
  return map.bind(*config);
}

TEST(ConfigMapTest, DefaultsFillEveryMember) {
  auto options = bind_yaml("section: {}");
  ASSERT_TRUE(options.ok()) << options.status();
  EXPECT_EQ(options->partitions, 4u);
  EXPECT_EQ(options->max_partitions, 64u);
  EXPECT_TRUE(options->enabled);
  EXPECT_DOUBLE_EQ(options->ratio, 0.5);
  EXPECT_EQ(options->timeout, std::chrono::seconds(30));
  EXPECT_EQ(options->brokers, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(options->backoff, (std::vector<std::chrono::milliseconds>{std::chrono::seconds(1),
                                                                      std::chrono::seconds(5)}));
  EXPECT_EQ(options->mode, Mode::kSafe);
  EXPECT_EQ(options->upstream.address, "127.0.0.1:1");
  EXPECT_EQ(options->upstream.attempts, 3);
}

TEST(ConfigMapTest, ValuesFromFileAndEnvironment) {
  auto options = bind_yaml(
      "section:\n  partitions: 8\n  mode: fast\n  upstream:\n    address: h:9\n  backoff: "
      "[250ms]\n",
      {{"TELEKERN_MODULES_X_UPSTREAM_ATTEMPTS", "7"}});
  ASSERT_TRUE(options.ok()) << options.status();
  EXPECT_EQ(options->partitions, 8u);
  EXPECT_EQ(options->mode, Mode::kFast);
  EXPECT_EQ(options->upstream.address, "h:9");
  EXPECT_EQ(options->upstream.attempts, 7);
  EXPECT_EQ(options->backoff,
            (std::vector<std::chrono::milliseconds>{std::chrono::milliseconds(250)}));
}

TEST(ConfigMapTest, SchemaDeclaresTypesOnce) {
  auto map = options_map();
  std::map<std::string, ConfigType> types;
  for (const auto& key : map.schema()) types[key.name] = key.type;
  EXPECT_EQ(types["partitions"], ConfigType::kInt);
  EXPECT_EQ(types["enabled"], ConfigType::kBool);
  EXPECT_EQ(types["ratio"], ConfigType::kDouble);
  EXPECT_EQ(types["timeout"], ConfigType::kDuration);
  EXPECT_EQ(types["brokers"], ConfigType::kStringList);
  EXPECT_EQ(types["password"], ConfigType::kSecret);
  EXPECT_EQ(types["mode"], ConfigType::kString);
  EXPECT_EQ(types["upstream.attempts"], ConfigType::kInt);
  EXPECT_EQ(map.schema().size(), 11u);
}

TEST(ConfigMapTest, PerKeyChecksNameFileLineAndKey) {
  struct Case {
    std::string yaml;
    std::string expected;
  } cases[] = {
      {"section:\n  partitions: 0\n",
       "test.yaml:2: key 'modules.x.partitions': must be at least 1"},
      {"section:\n  partitions: -3\n", "test.yaml:2: key 'modules.x.partitions'"},
      {"section:\n  partitions: 5000000000\n", "larger than"},
      {"section:\n  mode: slow\n",
       "test.yaml:2: key 'modules.x.mode': 'slow' is not one of: fast, safe"},
      {"section:\n  timeout: 0s\n", "key 'modules.x.timeout': must be longer than 0"},
      {"section:\n  backoff: [1s, later]\n", "key 'modules.x.backoff'"},
      {"section:\n  upstream:\n    attempts: 0\n",
       "test.yaml:3: key 'modules.x.upstream.attempts'"},
  };
  for (const auto& test : cases) {
    auto options = bind_yaml(test.yaml);
    ASSERT_FALSE(options.ok()) << test.yaml;
    EXPECT_NE(std::string(options.status().message()).find(test.expected), std::string::npos)
        << options.status().message();
  }
}

TEST(ConfigMapTest, RulesAcrossKeysReportTheKeyTheFileSet) {
  auto raised = bind_yaml("section:\n  enabled: true\n  partitions: 100\n");
  ASSERT_FALSE(raised.ok());
  EXPECT_EQ(raised.status().message(),
            "test.yaml:3: key 'modules.x.partitions': partitions exceeds max_partitions");
  auto lowered = bind_yaml("section:\n  max_partitions: 2\n");
  ASSERT_FALSE(lowered.ok());
  EXPECT_EQ(lowered.status().message(),
            "test.yaml:2: key 'modules.x.max_partitions': partitions exceeds max_partitions");
}

TEST(ConfigMapTest, SectionCheckRunsTheRules) {
  auto map = options_map();
  auto check = map.section_check();
  auto good = validate_config(map.schema(), YAML::Load("{partitions: 2}"), {"f.yaml", "m", {}});
  ASSERT_TRUE(good.ok());
  EXPECT_TRUE(check(*good).ok());
  auto bad = validate_config(map.schema(), YAML::Load("{partitions: 65}"), {"f.yaml", "m", {}});
  ASSERT_TRUE(bad.ok()) << "each key alone is valid";
  EXPECT_FALSE(check(*bad).ok());
}

TEST(ConfigMapTest, SecretsAreMaskedWhenShown) {
  auto map = options_map();
  auto config =
      validate_config(map.schema(), YAML::Load("{password: hunter2}"), {"f.yaml", "m", {}});
  ASSERT_TRUE(config.ok());
  EXPECT_EQ(config->to_yaml().find("hunter2"), std::string::npos);
  EXPECT_EQ(map.bind(*config)->password, "hunter2");
}

}  // namespace
}  // namespace telekern
