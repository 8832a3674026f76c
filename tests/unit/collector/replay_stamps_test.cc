// Replay timestamps: rows go out at "now", scrapes never share a millisecond,
// and an unpaced replay does not run ahead of the clock by a row per ms.
#include <gtest/gtest.h>

#include <set>

#include "ingest.h"

namespace telekern::collector {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

TimePoint at_ms(int64_t ms) { return TimePoint(milliseconds(ms)); }

TEST(ReplayStamps, StampsARowWithTheTimeItGoesOutInWholeMilliseconds) {
  ReplayStamps stamps;
  TimePoint now = at_ms(5'000) + std::chrono::microseconds(700);
  EXPECT_EQ(stamps.stamp(at_ms(1), now), at_ms(5'000));
  // Paced: a later scrape sent later keeps its own send time.
  EXPECT_EQ(stamps.stamp(at_ms(2), at_ms(6'000)), at_ms(6'000));
}

TEST(ReplayStamps, RowsOfOneScrapeShareAStampAndTheNextScrapeComesAfter) {
  ReplayStamps stamps;
  TimePoint now = at_ms(10'000);
  // Three scrapes of four series each, all sent within the same millisecond.
  std::set<std::pair<int, TimePoint>> seen;  // (series, stamp)
  std::vector<TimePoint> firsts;
  for (int scrape = 0; scrape < 3; ++scrape) {
    for (int series = 0; series < 4; ++series) {
      TimePoint stamp = stamps.stamp(at_ms(scrape * 10'000), now);
      if (series == 0) firsts.push_back(stamp);
      EXPECT_EQ(stamp, firsts.back()) << "scrape " << scrape << " series " << series;
      EXPECT_TRUE(seen.insert({series, stamp}).second) << "series " << series << " repeated";
    }
  }
  EXPECT_EQ(firsts, (std::vector<TimePoint>{at_ms(10'000), at_ms(10'001), at_ms(10'002)}));
}

TEST(ReplayStamps, AnUnpacedReplayRunsAheadByOneMillisecondPerScrapeNotPerRow) {
  ReplayStamps stamps;
  TimePoint now = at_ms(100'000);
  TimePoint latest{};
  // The sample's shape: 90 scrapes x 288 rows, all sent "at once".
  for (int scrape = 0; scrape < 90; ++scrape)
    for (int row = 0; row < 288; ++row) latest = stamps.stamp(at_ms(scrape * 10'000), now);
  EXPECT_EQ(latest - now, milliseconds(89));
}

TEST(ReplayStamps, ANewPassIsANewScrapeEvenAtTheSameOriginalTime) {
  ReplayStamps stamps;
  TimePoint now = at_ms(1'000);
  TimePoint first = stamps.stamp(at_ms(7), now);
  stamps.new_pass();
  TimePoint second = stamps.stamp(at_ms(7), now);
  EXPECT_EQ(second - first, milliseconds(1));
}

TEST(ReplayStamps, AClockThatStepsBackDoesNotReuseAStamp) {
  ReplayStamps stamps;
  TimePoint first = stamps.stamp(at_ms(1), at_ms(50'000));
  TimePoint second = stamps.stamp(at_ms(2), at_ms(50'000) - seconds(10));
  EXPECT_GT(second, first);
}

}  // namespace
}  // namespace telekern::collector
