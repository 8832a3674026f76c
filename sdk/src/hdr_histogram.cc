#include "telekern/hdr_histogram.h"

#include <algorithm>
#include <cmath>
#include <string>

namespace telekern {

HdrHistogram::HdrHistogram() : buckets_(bucket_count(), 0) {}

uint64_t HdrHistogram::lower_edge(size_t index) {
  constexpr uint64_t kExact = uint64_t{1} << kSubBucketBits;
  constexpr uint64_t kHalf = kExact >> 1;
  if (index < kExact) return index;
  uint64_t magnitude = (index - kExact) / kHalf + 1;
  uint64_t sub = (index - kExact) % kHalf + kHalf;
  return sub << magnitude;
}

uint64_t HdrHistogram::upper_edge(size_t index) {
  constexpr uint64_t kExact = uint64_t{1} << kSubBucketBits;
  constexpr uint64_t kHalf = kExact >> 1;
  if (index < kExact) return index;
  uint64_t magnitude = (index - kExact) / kHalf + 1;
  uint64_t sub = (index - kExact) % kHalf + kHalf;
  return ((sub + 1) << magnitude) - 1;
}

void HdrHistogram::merge(const HdrHistogram& other) {
  for (size_t i = 0; i < buckets_.size(); ++i) buckets_[i] += other.buckets_[i];
  count_ += other.count_;
  sum_ += other.sum_;
  min_ = std::min(min_, other.min_);
  max_ = std::max(max_, other.max_);
}

void HdrHistogram::reset() {
  std::fill(buckets_.begin(), buckets_.end(), 0);
  count_ = 0;
  sum_ = 0;
  min_ = UINT64_MAX;
  max_ = 0;
}

uint64_t HdrHistogram::percentile(double q) const {
  if (count_ == 0) return 0;
  q = std::clamp(q, 0.0, 1.0);
  uint64_t rank =
      std::max<uint64_t>(1, static_cast<uint64_t>(std::ceil(q * static_cast<double>(count_))));
  uint64_t seen = 0;
  for (size_t i = 0; i < buckets_.size(); ++i) {
    seen += buckets_[i];
    if (seen >= rank) return std::max(std::min(upper_edge(i), max_), min());
  }
  return max_;
}

HdrHistogram::Exported HdrHistogram::export_buckets() const {
  Exported out;
  for (size_t i = 0; i < buckets_.size(); ++i) {
    if (buckets_[i]) out.buckets.emplace_back(static_cast<uint32_t>(i), buckets_[i]);
  }
  out.count = count_;
  out.sum = sum_;
  out.min = min();
  out.max = max_;
  return out;
}

absl::StatusOr<HdrHistogram> HdrHistogram::import_buckets(const Exported& exported) {
  HdrHistogram histogram;
  uint64_t total = 0;
  for (const auto& [index, count] : exported.buckets) {
    if (index >= histogram.buckets_.size())
      return absl::InvalidArgumentError("histogram bucket " + std::to_string(index) +
                                        " is out of range (at most " +
                                        std::to_string(histogram.buckets_.size() - 1) + ")");
    histogram.buckets_[index] += count;
    total += count;
  }
  if (total != exported.count)
    return absl::InvalidArgumentError("histogram buckets hold " + std::to_string(total) +
                                      " values but count says " + std::to_string(exported.count));
  histogram.count_ = exported.count;
  histogram.sum_ = exported.sum;
  histogram.min_ = exported.count ? exported.min : UINT64_MAX;
  histogram.max_ = exported.max;
  return histogram;
}

}  // namespace telekern
