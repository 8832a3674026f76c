// ChunkedLines: lines of a text that arrives in chunks cut anywhere.
#include <gtest/gtest.h>

#include <deque>

#include "ingest.h"

namespace telekern::collector {
namespace {

std::vector<std::string> lines_of(std::deque<std::string> chunks, size_t max_line = 1 << 20) {
  ChunkedLines lines(
      [&chunks](std::string& chunk) {
        if (chunks.empty()) return false;
        chunk = std::move(chunks.front());
        chunks.pop_front();
        return true;
      },
      max_line);
  std::vector<std::string> out;
  for (std::string line; lines.next(line);) out.push_back(line);
  return out;
}

TEST(ChunkedLinesTest, JoinsLinesCutAnywhere) {
  const std::string text = "header,a\nrow,1\nrow,22\n\nrow,333\nlast,no-newline";
  const std::vector<std::string> expected = {"header,a", "row,1",   "row,22",
                                             "",         "row,333", "last,no-newline"};
  // Every chunk size from 1 byte to the whole text gives the same lines.
  for (size_t size = 1; size <= text.size(); ++size) {
    std::deque<std::string> chunks;
    for (size_t at = 0; at < text.size(); at += size) chunks.push_back(text.substr(at, size));
    EXPECT_EQ(lines_of(chunks), expected) << "chunks of " << size << " bytes";
  }
}

TEST(ChunkedLinesTest, EmptyChunksAndATrailingNewlineAddNoLine) {
  EXPECT_EQ(lines_of({"", "a\n", "", "b\n", ""}), (std::vector<std::string>{"a", "b"}));
  EXPECT_TRUE(lines_of({}).empty());
}

TEST(ChunkedLinesTest, AnOverlongLineIsCutAndTheRestOfItDropped) {
  std::string huge(100, 'x');
  auto lines = lines_of({"ok\n", huge.substr(0, 40), huge.substr(40) + "\nnext\n"}, 16);
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0], "ok");
  EXPECT_EQ(lines[1], std::string(16, 'x'));  // rejected later as malformed
  EXPECT_EQ(lines[2], "next");
}

}  // namespace
}  // namespace telekern::collector
