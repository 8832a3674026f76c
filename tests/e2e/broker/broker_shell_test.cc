// The broker from telesh, through the commands generated from its proto's cli
// options: topic create/list/describe, produce, consume with a group.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <sstream>

#include "tests/support/telekernd.h"
#include "tests/support/telesh.h"

namespace telekern::testing {
namespace {

TEST(BrokerShellTest, TopicsProduceAndConsumeFromTelesh) {
  Telekernd daemon(
      {.modules_dir = std::string(TELEKERN_BUILD_DIR) + "/modules", .load = {"broker"}});
  ASSERT_TRUE(daemon.ready()) << daemon.log();

  auto created =
      telesh_commands(daemon, "broker topic create orders --partitions 3; broker topic list");
  ASSERT_EQ(created.exit_code, 0) << created.output;
  EXPECT_NE(created.output.find("orders"), std::string::npos) << created.output;

  auto produced =
      telesh_commands(daemon,
                      "broker produce orders first --key a; broker produce orders second --key a; "
                      "broker produce orders third --key b");
  ASSERT_EQ(produced.exit_code, 0) << produced.output;

  auto described = telesh_commands(daemon, "broker topic describe orders -o json");
  ASSERT_EQ(described.exit_code, 0) << described.output;
  auto description = nlohmann::json::parse(described.output, nullptr, false);
  ASSERT_FALSE(description.is_discarded()) << described.output;
  ASSERT_EQ(description["partitions"].size(), 3u) << described.output;
  uint64_t stored = 0;
  for (const auto& partition : description["partitions"]) {
    stored += std::stoull(partition.value("end_offset", std::string("0")));
  }
  EXPECT_EQ(stored, 3u) << described.output;

  auto consumed = telesh_commands(
      daemon, "broker consume orders --group g --max 3 --start START_POSITION_EARLIEST -o json");
  ASSERT_EQ(consumed.exit_code, 0) << consumed.output;
  std::istringstream lines(consumed.output);
  std::vector<std::string> values;
  for (std::string line; std::getline(lines, line);) {
    if (line.empty()) continue;
    auto message = nlohmann::json::parse(line, nullptr, false);
    ASSERT_FALSE(message.is_discarded()) << line;
    for (const auto& record : message.value("records", nlohmann::json::array())) {
      values.push_back(record.value("value", ""));
    }
  }
  ASSERT_EQ(values.size(), 3u) << consumed.output;
  // Values are bytes: JSON carries them base64-encoded ("first" = "Zmlyc3Q=").
  EXPECT_NE(std::find(values.begin(), values.end(), "Zmlyc3Q="), values.end()) << consumed.output;

  auto missing = telesh_commands(daemon, "broker topic describe nosuchtopic");
  EXPECT_NE(missing.exit_code, 0);
  EXPECT_NE(missing.output.find("nosuchtopic"), std::string::npos) << missing.output;
}

}  // namespace
}  // namespace telekern::testing
