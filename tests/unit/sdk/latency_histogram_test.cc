#include "telekern/latency_histogram.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>

namespace telekern {
namespace {

TEST(LatencyHistogramTest, ExactForSmallValues) {
  LatencyHistogram histogram;
  for (uint64_t v = 1; v <= 100; ++v) histogram.record(v);
  EXPECT_EQ(histogram.count(), 100u);
  EXPECT_EQ(histogram.min(), 1u);
  EXPECT_EQ(histogram.max(), 100u);
  EXPECT_EQ(histogram.percentile(0.5), 50u);
  EXPECT_EQ(histogram.percentile(0.99), 99u);
  EXPECT_EQ(histogram.percentile(1.0), 100u);
  EXPECT_DOUBLE_EQ(histogram.mean(), 50.5);
}

TEST(LatencyHistogramTest, RelativeErrorBelowOnePercentOverWideRange) {
  std::mt19937_64 random(7);
  std::lognormal_distribution<double> latency(8.0, 2.0);
  std::vector<uint64_t> values;
  LatencyHistogram histogram;
  for (int i = 0; i < 100000; ++i) {
    uint64_t v = static_cast<uint64_t>(latency(random)) + 1;
    values.push_back(v);
    histogram.record(v);
  }
  std::sort(values.begin(), values.end());
  for (double q : {0.5, 0.9, 0.99, 0.999}) {
    uint64_t exact = values[static_cast<size_t>(std::ceil(q * values.size())) - 1];
    uint64_t estimate = histogram.percentile(q);
    EXPECT_GE(estimate, exact) << q;
    EXPECT_LE(static_cast<double>(estimate - exact), 0.01 * static_cast<double>(exact) + 1) << q;
  }
}

TEST(LatencyHistogramTest, MergeEqualsRecordingEverything) {
  LatencyHistogram a, b, all;
  for (uint64_t v = 1; v < 5000; v += 3) {
    (v % 2 ? a : b).record(v * 17);
    all.record(v * 17);
  }
  a.merge(b);
  EXPECT_EQ(a.count(), all.count());
  EXPECT_EQ(a.percentile(0.99), all.percentile(0.99));
  EXPECT_EQ(a.max(), all.max());
  EXPECT_EQ(a.min(), all.min());
}

TEST(LatencyHistogramTest, EmptyIsZero) {
  LatencyHistogram histogram;
  EXPECT_EQ(histogram.percentile(0.99), 0u);
  EXPECT_EQ(histogram.min(), 0u);
}

}  // namespace
}  // namespace telekern
