// Command-line values: durations, timestamps, enums, line splitting.
#include "shell/values.h"

#include <gtest/gtest.h>

#include "shell/shell.h"
#include "telekern/kernel/v1/kernel.pb.h"

namespace telekern::shell {
namespace {

using std::chrono::nanoseconds;

TEST(ValuesTest, ParsesDurations) {
  EXPECT_EQ(*parse_duration("30s"), std::chrono::seconds(30));
  EXPECT_EQ(*parse_duration("1h30m"), std::chrono::minutes(90));
  EXPECT_EQ(*parse_duration("250ms"), std::chrono::milliseconds(250));
  EXPECT_EQ(*parse_duration("1.5s"), std::chrono::milliseconds(1500));
  EXPECT_EQ(*parse_duration("2d"), std::chrono::hours(48));
  EXPECT_EQ(*parse_duration("-5m"), -std::chrono::minutes(5));
  EXPECT_EQ(*parse_duration("45"), std::chrono::seconds(45));
  EXPECT_FALSE(parse_duration("5 parsecs").ok());
  EXPECT_FALSE(parse_duration("").ok());
  EXPECT_FALSE(parse_duration("1h30").ok());
}

TEST(ValuesTest, ParsesAbsoluteAndRelativeTimestamps) {
  auto now = std::chrono::system_clock::time_point(std::chrono::seconds(1'700'000'000));
  EXPECT_EQ(*parse_timestamp("2024-05-01T12:00:00Z", now), 1714564800LL * 1'000'000'000);
  EXPECT_EQ(*parse_timestamp("2024-05-01", now), 1714521600LL * 1'000'000'000);
  EXPECT_EQ(*parse_timestamp("now", now), 1'700'000'000LL * 1'000'000'000);
  EXPECT_EQ(*parse_timestamp("-24h", now), (1'700'000'000LL - 86400) * 1'000'000'000);
  EXPECT_EQ(*parse_timestamp("+30m", now), (1'700'000'000LL + 1800) * 1'000'000'000);
  EXPECT_FALSE(parse_timestamp("yesterday-ish", now).ok());
}

TEST(ValuesTest, FormatsDurationsAndTimestamps) {
  EXPECT_EQ(format_duration(0, 250'000'000), "250ms");
  EXPECT_EQ(format_duration(3, 500'000'000), "3.5s");
  EXPECT_EQ(format_duration(3725, 0), "1h2m5s");
  EXPECT_EQ(format_timestamp(1714564800, 0), "2024-05-01T12:00:00Z");
  EXPECT_EQ(format_timestamp(0, 0), "");
}

TEST(ValuesTest, FindsEnumValuesByShortNameCaseAndNumber) {
  const auto* type = telekern::kernel::v1::ModuleState_descriptor();
  EXPECT_EQ(find_enum_value(type, "MODULE_STATE_RUNNING")->number(), 2);
  EXPECT_EQ(find_enum_value(type, "running")->number(), 2);
  EXPECT_EQ(find_enum_value(type, "4")->name(), "MODULE_STATE_FAILED");
  EXPECT_EQ(find_enum_value(type, "sleeping"), nullptr);
  EXPECT_EQ(short_enum_name(type->FindValueByNumber(2)), "RUNNING");
}

TEST(ParseLineTest, SplitsCommandsWordsQuotesAndComments) {
  auto parsed =
      parse_line(R"(echo say 'hello world'; call Echo/Say '{"message": "x"}' # trailing comment)");
  ASSERT_TRUE(parsed.error.empty());
  ASSERT_EQ(parsed.commands.size(), 2u);
  EXPECT_EQ(parsed.commands[0], (std::vector<std::string>{"echo", "say", "hello world"}));
  EXPECT_EQ(parsed.commands[1],
            (std::vector<std::string>{"call", "Echo/Say", R"({"message": "x"})"}));
  EXPECT_TRUE(parse_line("# only a comment").commands.empty());
  EXPECT_EQ(parse_line(R"(say "a \"b\"" c\ d)").commands[0],
            (std::vector<std::string>{"say", "a \"b\"", "c d"}));
  EXPECT_EQ(parse_line("say a#b").commands[0], (std::vector<std::string>{"say", "a#b"}));
  EXPECT_FALSE(parse_line("say 'open").error.empty());
}

}  // namespace
}  // namespace telekern::shell
