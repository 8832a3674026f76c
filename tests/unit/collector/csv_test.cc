// telekern::csv: splitting lines with quotes and writing them back.
#include "telekern/csv.h"

#include <gtest/gtest.h>

namespace telekern::csv {
namespace {

TEST(Csv, SplitsPlainAndQuotedFields) {
  auto fields = split_line(R"(a,"b,c","say ""hi""",,e)");
  ASSERT_TRUE(fields.ok()) << fields.status();
  EXPECT_EQ(*fields, (std::vector<std::string>{"a", "b,c", "say \"hi\"", "", "e"}));
  auto trailing = split_line("a,b,\r");
  ASSERT_TRUE(trailing.ok());
  EXPECT_EQ(*trailing, (std::vector<std::string>{"a", "b", ""}));
}

TEST(Csv, NamesTheColumnOfABrokenQuote) {
  auto open = split_line(R"(a,"never closed)");
  EXPECT_EQ(open.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(open.status().message().find("column 3"), std::string::npos) << open.status();
  auto after = split_line(R"("a"b,c)");
  EXPECT_NE(after.status().message().find("after a closing quote"), std::string::npos);
}

TEST(Csv, JoinRoundTrips) {
  std::vector<std::string> fields{"plain", "with,comma", "with \"quote\"", "line\nbreak", ""};
  auto back = split_line(join_line({fields[0], fields[1], fields[2], fields[4]}));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, (std::vector<std::string>{fields[0], fields[1], fields[2], fields[4]}));
  EXPECT_EQ(quote("line\nbreak"), "\"line\nbreak\"");
}

}  // namespace
}  // namespace telekern::csv
