// telesh as its users drive it: output formats on every command, usage errors
// (bad flag values, unknown flags, misspelt commands) with exit code 2 and a
// suggestion, and the README's telesh examples run as written.
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "tests/support/telekernd.h"
#include "tests/support/telesh.h"

namespace telekern::testing {
namespace {

YAML::Node parse_yaml(const std::string& text) {
  try {
    return YAML::Load(text);
  } catch (const YAML::Exception& error) {
    ADD_FAILURE() << "not YAML (" << error.what() << "):\n" << text;
    return YAML::Node();
  }
}

TEST(TeleshUsageTest, EveryCommandHonoursTheOutputFormat) {
  Telekernd daemon({.load = {"echo"}});
  ASSERT_TRUE(daemon.ready()) << daemon.log();

  auto services = run_telesh(daemon, "-o yaml services", {.redirect = "2>/dev/null"});
  ASSERT_EQ(services.exit_code, 0) << services.output;
  YAML::Node listed = parse_yaml(services.output);
  ASSERT_TRUE(listed.IsSequence()) << services.output;
  bool echo_seen = false;
  for (const auto& service : listed) {
    if (service["service"].as<std::string>() == "telekern.testing.v1.Echo") {
      echo_seen = true;
      EXPECT_EQ(service["methods"].as<int>(), 3);
      EXPECT_EQ(service["commands"].as<int>(), 3);
    }
  }
  EXPECT_TRUE(echo_seen) << services.output;

  auto health = run_telesh(daemon, "-o yaml health", {.redirect = "2>/dev/null"});
  ASSERT_EQ(health.exit_code, 0) << health.output;
  YAML::Node states = parse_yaml(health.output);
  ASSERT_TRUE(states.IsSequence()) << health.output;
  EXPECT_EQ(states[0]["status"].as<std::string>(), "SERVING");

  auto described = run_telesh(daemon, "-o json describe telekern.testing.v1.Echo/Say",
                              {.redirect = "2>/dev/null"});
  ASSERT_EQ(described.exit_code, 0) << described.output;
  auto json = nlohmann::json::parse(described.output, nullptr, false);
  ASSERT_FALSE(json.is_discarded()) << "not JSON:\n" << described.output;
  EXPECT_EQ(json["method"]["name"], "Say");
  EXPECT_EQ(json["command"], "echo say");
  EXPECT_EQ(json["input_type"]["name"], "SayRequest");

  auto service_yaml = run_telesh(daemon, "-o yaml describe Echo", {.redirect = "2>/dev/null"});
  ASSERT_EQ(service_yaml.exit_code, 0) << service_yaml.output;
  EXPECT_EQ(parse_yaml(service_yaml.output)["definition"]["name"].as<std::string>(), "Echo");
  auto connected = run_telesh(daemon, "-o json -c connect", {.redirect = "2>/dev/null"});
  auto connected_json = nlohmann::json::parse(connected.output, nullptr, false);
  ASSERT_FALSE(connected_json.is_discarded()) << connected.output;
  EXPECT_EQ(connected_json["connected"], daemon.grpc_address());
  auto message_json = run_telesh(daemon, "-o json describe telekern.testing.v1.SayRequest",
                                 {.redirect = "2>/dev/null"});
  EXPECT_FALSE(nlohmann::json::parse(message_json.output, nullptr, false).is_discarded())
      << message_json.output;
}

TEST(TeleshUsageTest, BadFlagValuesAndUnknownFlagsAreUsageErrorsNamingTheFix) {
  Telekernd daemon({.load = {"echo"}});
  ASSERT_TRUE(daemon.ready()) << daemon.log();

  auto xml = run_telesh(daemon, "-o xml -c info", {.redirect = "2>&1"});
  EXPECT_EQ(xml.exit_code, 2) << xml.output;
  EXPECT_NE(xml.output.find("xml"), std::string::npos) << xml.output;

  auto with_commands = run_telesh(daemon, "-c info --keepgoing", {.redirect = "2>&1"});
  EXPECT_EQ(with_commands.exit_code, 2) << with_commands.output;
  EXPECT_NE(with_commands.output.find("unknown flag '--keepgoing'; did you mean '--keep-going'?"),
            std::string::npos)
      << with_commands.output;
  EXPECT_EQ(with_commands.output.find("grpc_address"), std::string::npos)
      << "nothing runs after a usage error";

  auto misspelt = run_command("NO_COLOR=1 " + telesh_binary() + " --adr " + daemon.grpc_address() +
                              " info </dev/null 2>&1");
  EXPECT_EQ(misspelt.exit_code, 2) << misspelt.output;
  EXPECT_NE(misspelt.output.find("unknown flag '--adr'; did you mean '--addr'?"), std::string::npos)
      << misspelt.output;
}

TEST(TeleshUsageTest, MisspeltCommandsAndSubcommandsSuggestTheNearest) {
  Telekernd daemon(
      {.modules_dir = std::string(TELEKERN_BUILD_DIR) + "/modules", .load = {"broker"}});
  ASSERT_TRUE(daemon.ready()) << daemon.log();
  auto command = run_telesh(daemon, "brokr topic list", {.redirect = "2>&1"});
  EXPECT_EQ(command.exit_code, 2);
  EXPECT_NE(command.output.find("unknown command 'brokr'; did you mean 'broker'?"),
            std::string::npos)
      << command.output;
  auto subcommand = run_telesh(daemon, "broker topik list", {.redirect = "2>&1"});
  EXPECT_EQ(subcommand.exit_code, 2);
  EXPECT_NE(subcommand.output.find("unknown command 'broker topik'; did you mean 'broker topic'?"),
            std::string::npos)
      << subcommand.output;
  auto builtin = run_telesh(daemon, "-c servcies", {.redirect = "2>&1"});
  EXPECT_NE(builtin.output.find("did you mean 'services'?"), std::string::npos) << builtin.output;
}

// The ```sh block of the README's telesh section, one command per line.
std::vector<std::string> readme_telesh_examples() {
  std::ifstream in(std::string(TELEKERN_SOURCE_DIR) + "/README.md");
  std::stringstream text;
  text << in.rdbuf();
  std::string readme = text.str();
  size_t section = readme.find("\n## telesh");
  size_t block = readme.find("```sh\n", section);
  size_t end = readme.find("```", block + 6);
  std::vector<std::string> examples;
  if (section == std::string::npos || block == std::string::npos || end == std::string::npos) {
    return examples;
  }
  std::istringstream lines(readme.substr(block + 6, end - block - 6));
  for (std::string line; std::getline(lines, line);) {
    if (!line.empty() && line[0] != '#') examples.push_back(line);
  }
  return examples;
}

// `make run` serves every module of build/modules on 127.0.0.1:7070; the
// examples run from the repository root with telesh on PATH. Here the daemon
// listens on a free port (TELEKERN_ADDR) and `build` points at this build.
TEST(TeleshUsageTest, ReadmeExamplesWorkAsWritten) {
  auto examples = readme_telesh_examples();
  ASSERT_GE(examples.size(), 4u) << "README.md lost its telesh examples";
  Telekernd daemon({.modules_dir = std::string(TELEKERN_BUILD_DIR) + "/modules"});
  ASSERT_TRUE(daemon.ready()) << daemon.log();
  TempDir root;
  std::filesystem::create_directory_symlink(TELEKERN_BUILD_DIR, root.path() / "build");
  for (const auto& example : examples) {
    auto result = run_command("cd " + shell_quote(root.path().string()) +
                              " && PATH=" + shell_quote(std::string(TELEKERN_BUILD_DIR) + "/bin") +
                              ":\"$PATH\" NO_COLOR=1 TELEKERN_ADDR=" + daemon.grpc_address() +
                              " bash -o pipefail -c " + shell_quote(example) + " </dev/null 2>&1");
    EXPECT_EQ(result.exit_code, 0) << example << "\n" << result.output;
    EXPECT_FALSE(result.output.starts_with("error:") ||
                 result.output.find("\nerror:") != std::string::npos)
        << "telesh reported an error:\n"
        << example << "\n"
        << result.output;
  }
}

}  // namespace
}  // namespace telekern::testing
