#include "telekern/latency_histogram.h"

#include <algorithm>
#include <bit>
#include <cmath>

#include "telekern/strings.h"

namespace telekern {

LatencyHistogram::LatencyHistogram() : buckets_((kMagnitudes + 1) << kSubBucketBits, 0) {}

size_t LatencyHistogram::index_of(uint64_t value) {
  constexpr uint64_t kSubBuckets = uint64_t{1} << kSubBucketBits;
  if (value < kSubBuckets) return static_cast<size_t>(value);         // exact below 128
  int magnitude = 63 - std::countl_zero(value) - kSubBucketBits + 1;  // >= 1
  magnitude = std::min(magnitude, kMagnitudes);
  uint64_t sub = (value >> magnitude) & (kSubBuckets - 1);
  // Values in [2^(m+6), 2^(m+7)) keep their top 7 bits; sub >= 64 here.
  return (static_cast<size_t>(magnitude) << kSubBucketBits) + static_cast<size_t>(sub);
}

uint64_t LatencyHistogram::upper_edge(size_t index) {
  constexpr uint64_t kSubBuckets = uint64_t{1} << kSubBucketBits;
  uint64_t magnitude = index >> kSubBucketBits;
  uint64_t sub = index & (kSubBuckets - 1);
  if (magnitude == 0) return sub;
  return ((sub + 1) << magnitude) - 1;
}

void LatencyHistogram::record(uint64_t value) {
  ++buckets_[index_of(value)];
  ++count_;
  sum_ += value;
  min_ = std::min(min_, value);
  max_ = std::max(max_, value);
}

void LatencyHistogram::merge(const LatencyHistogram& other) {
  for (size_t i = 0; i < buckets_.size(); ++i) buckets_[i] += other.buckets_[i];
  count_ += other.count_;
  sum_ += other.sum_;
  min_ = std::min(min_, other.min_);
  max_ = std::max(max_, other.max_);
}

void LatencyHistogram::reset() { *this = LatencyHistogram(); }

uint64_t LatencyHistogram::percentile(double q) const {
  if (count_ == 0) return 0;
  q = std::clamp(q, 0.0, 1.0);
  uint64_t rank =
      std::max<uint64_t>(1, static_cast<uint64_t>(std::ceil(q * static_cast<double>(count_))));
  uint64_t seen = 0;
  for (size_t i = 0; i < buckets_.size(); ++i) {
    seen += buckets_[i];
    if (seen >= rank) return std::min(upper_edge(i), max_);
  }
  return max_;
}

std::string LatencyHistogram::summary(const std::string& unit) const {
  return str_cat("p50=", percentile(0.5), unit, " p99=", percentile(0.99), unit,
                 " p99.9=", percentile(0.999), unit, " max=", max(), unit, " n=", count());
}

}  // namespace telekern
