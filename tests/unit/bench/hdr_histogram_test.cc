// The benchmark histogram against exact sorted samples, its merge and export.
#include "telekern/hdr_histogram.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>

namespace telekern {
namespace {

uint64_t exact_percentile(const std::vector<uint64_t>& sorted, double q) {
  uint64_t rank = std::max<uint64_t>(1, uint64_t(std::ceil(q * double(sorted.size()))));
  return sorted[rank - 1];
}

TEST(HdrHistogram, PercentilesWithinOnePercentOfExactSortedSamples) {
  std::mt19937_64 random(7);
  std::lognormal_distribution<double> latency(7.0, 1.5);  // microseconds, long tail
  HdrHistogram histogram;
  std::vector<uint64_t> samples;
  for (int i = 0; i < 200000; ++i) {
    auto value = static_cast<uint64_t>(latency(random));
    samples.push_back(value);
    histogram.record(value);
  }
  std::sort(samples.begin(), samples.end());
  for (double q : {0.0, 0.01, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999, 0.9999, 1.0}) {
    uint64_t exact = exact_percentile(samples, q);
    uint64_t reported = histogram.percentile(q);
    EXPECT_GE(reported, exact) << "q=" << q;
    EXPECT_LE(double(reported), double(exact) * (1.0 + HdrHistogram::kRelativeError) + 1.0)
        << "q=" << q << " exact=" << exact;
  }
  EXPECT_EQ(histogram.count(), samples.size());
  EXPECT_EQ(histogram.min(), samples.front());
  EXPECT_EQ(histogram.max(), samples.back());
  EXPECT_LE(HdrHistogram::kRelativeError, 0.01);
}

TEST(HdrHistogram, MergeIsExactNotAveraged) {
  // Two clients with very different latencies: the merged p50 is the p50 of
  // all samples, which averaging the clients' percentiles would not give.
  HdrHistogram fast, slow, all;
  for (uint64_t v = 1; v <= 1000; ++v) {
    fast.record(v);
    all.record(v);
  }
  for (uint64_t v = 100000; v < 100000 + 3000; ++v) {
    slow.record(v);
    all.record(v);
  }
  HdrHistogram merged = fast;
  merged.merge(slow);
  for (double q : {0.1, 0.25, 0.5, 0.9, 0.99}) EXPECT_EQ(merged.percentile(q), all.percentile(q));
  EXPECT_EQ(merged.count(), 4000u);
  EXPECT_GT(merged.percentile(0.5), 100000u);
}

TEST(HdrHistogram, ExportImportRoundTripsAndRejectsBadBuckets) {
  HdrHistogram histogram;
  for (uint64_t v : {3u, 250u, 5000u, 123456u, 99999999u}) histogram.record(v);
  auto exported = histogram.export_buckets();
  auto back = HdrHistogram::import_buckets(exported);
  ASSERT_TRUE(back.ok()) << back.status();
  for (double q : {0.2, 0.4, 0.6, 0.8, 1.0})
    EXPECT_EQ(back->percentile(q), histogram.percentile(q));
  exported.buckets.push_back({uint32_t(HdrHistogram::bucket_count()), 1});
  EXPECT_FALSE(HdrHistogram::import_buckets(exported).ok());
}

TEST(HdrHistogram, BucketEdgesCoverEveryValue) {
  for (uint64_t v :
       {0ull, 1ull, 255ull, 256ull, 257ull, 511ull, 512ull, 1000000ull, (1ull << 40) + 12345}) {
    size_t index = HdrHistogram::index_of(v);
    EXPECT_LE(HdrHistogram::lower_edge(index), v);
    EXPECT_GE(HdrHistogram::upper_edge(index), v);
  }
}

}  // namespace
}  // namespace telekern
