#include "shell/display_width.h"

#include <gtest/gtest.h>

#include <sstream>

#include "shell/output.h"

namespace telekern::shell {
namespace {

TEST(DisplayWidthTest, CountsColumnsNotBytes) {
  EXPECT_EQ(display_width("abc"), 3u);
  EXPECT_EQ(display_width("Zürich"), 6u);            // 7 bytes
  EXPECT_EQ(display_width("東京"), 4u);              // 6 bytes, two wide characters
  EXPECT_EQ(display_width("e\u0301"), 1u);           // e + combining acute
  EXPECT_EQ(display_width("\xF0\x9F\x9A\x80"), 2u);  // rocket emoji
  EXPECT_EQ(display_width("\xFF"), 1u) << "a malformed byte shows as one replacement";
  EXPECT_EQ(pad_to_width("東京", 6), "東京  ");
  EXPECT_EQ(prefix_of_width("東京都", 5), "東京") << "never half a character";
}

// Column start of the last cell in each line, in display columns.
std::vector<size_t> last_column_starts(const std::string& table) {
  std::vector<size_t> starts;
  std::istringstream lines(table);
  for (std::string line; std::getline(lines, line);) {
    starts.push_back(display_width(line.substr(0, line.rfind("  ") + 2)));
  }
  return starts;
}

TEST(DisplayWidthTest, TablesWithNonAsciiCellsLineUp) {
  std::string table = render_table(
      {"city", "id"}, {{"Zürich", "1"}, {"東京", "2"}, {"Paris", "3"}, {"é", "4"}}, Style{});
  auto starts = last_column_starts(table);
  ASSERT_EQ(starts.size(), 5u) << table;
  for (size_t start : starts) EXPECT_EQ(start, starts.front()) << table;
}

}  // namespace
}  // namespace telekern::shell
