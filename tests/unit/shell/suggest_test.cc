#include "shell/suggest.h"

#include <gtest/gtest.h>

namespace telekern::shell {
namespace {

TEST(SuggestTest, EditDistanceCountsASwapOnce) {
  EXPECT_EQ(edit_distance("broker", "broker"), 0u);
  EXPECT_EQ(edit_distance("brokr", "broker"), 1u);
  EXPECT_EQ(edit_distance("modulse", "modules"), 1u);
  EXPECT_EQ(edit_distance("", "abc"), 3u);
}

TEST(SuggestTest, NearestOnlyWhenCloseEnough) {
  std::vector<std::string> flags = {"--addr", "--api-key", "--keep-going", "--no-color"};
  EXPECT_EQ(nearest("--keepgoing", flags), "--keep-going");
  EXPECT_EQ(nearest("--adr", flags), "--addr");
  EXPECT_EQ(nearest("topik", {"topic", "group", "produce"}), "topic");
  EXPECT_EQ(nearest("zzzzzz", {"topic", "group"}), "");
  EXPECT_EQ(nearest("x", {"y"}), "") << "a one-letter word matches nothing by replacement";
}

}  // namespace
}  // namespace telekern::shell
