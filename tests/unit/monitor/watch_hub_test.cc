// A Watch subscriber that falls behind is cut off with a status naming the
// cause, after it has read what was queued; one that keeps up never is.
#include "watch_hub.h"

#include <gtest/gtest.h>

namespace telekern::monitor {
namespace {

using namespace std::chrono_literals;

TEST(WatchHubTest, LaggingWatcherReadsWhatWasQueuedThenGetsResourceExhausted) {
  WatchHub<int> hub;
  auto slow = hub.subscribe(3);
  auto fast = hub.subscribe(3);
  for (int i = 0; i < 5; ++i) {
    hub.publish(i);
    EXPECT_EQ(fast->next(0ms), i);
  }
  for (int i = 0; i < 3; ++i) {
    EXPECT_FALSE(slow->overflowed()) << "queued events come first";
    EXPECT_EQ(slow->next(0ms), i);
  }
  EXPECT_EQ(slow->next(10ms), std::nullopt);
  ASSERT_TRUE(slow->overflowed());
  auto status = slow->overflow_status("WatchMetrics", "samples");
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(status.message().find("WatchMetrics: this watcher fell 3 samples behind"),
            std::string::npos)
      << status.message();
  EXPECT_NE(status.message().find("reconnect"), std::string::npos);
  hub.publish(9);  // nothing more is queued for a cut-off watcher
  EXPECT_EQ(slow->next(0ms), std::nullopt);
  EXPECT_FALSE(fast->overflowed());
  EXPECT_EQ(fast->next(0ms), 9);
}

}  // namespace
}  // namespace telekern::monitor
