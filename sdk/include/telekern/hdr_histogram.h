// A high-dynamic-range histogram for benchmark latencies: values from 0 to
// 2^48 with relative error under 0.79% (8 significant bits), constant memory
// (about 43 KB), exact merge of several clients' histograms (bucket counts add,
// never averaged percentiles), and an export of its non-zero buckets so a
// report can carry the raw data and percentiles can be recomputed later.
// Not thread-safe: keep one per thread and merge.
#pragma once

#include <absl/status/statusor.h>

#include <algorithm>
#include <bit>
#include <cstdint>
#include <utility>
#include <vector>

namespace telekern {

class HdrHistogram {
 public:
  static constexpr int kSubBucketBits = 8;  // 256 exact values, then 128 per power of two
  static constexpr int kMaxMagnitude = 41;  // values up to 2^48
  // Worst-case relative error of a reported percentile (upper bucket edge).
  static constexpr double kRelativeError = 1.0 / 128;

  HdrHistogram();

  void record(uint64_t value) {
    ++buckets_[index_of(value)];
    ++count_;
    sum_ += value;
    min_ = std::min(min_, value);
    max_ = std::max(max_, value);
  }
  void merge(const HdrHistogram& other);
  void reset();

  uint64_t count() const { return count_; }
  uint64_t min() const { return count_ ? min_ : 0; }
  uint64_t max() const { return max_; }
  double mean() const {
    return count_ ? static_cast<double>(sum_) / static_cast<double>(count_) : 0.0;
  }
  // The value at quantile q in [0, 1]: the highest value equivalent to the
  // bucket holding rank ceil(q * count), capped at max(); within
  // kRelativeError above the exact sample at that rank.
  uint64_t percentile(double q) const;

  // Non-zero buckets as (bucket index, count), plus count/sum/min/max.
  struct Exported {
    std::vector<std::pair<uint32_t, uint64_t>> buckets;
    uint64_t count = 0;
    uint64_t sum = 0;
    uint64_t min = 0;
    uint64_t max = 0;
  };
  Exported export_buckets() const;
  // Rebuilds a histogram from export_buckets(); INVALID_ARGUMENT names a bad bucket.
  static absl::StatusOr<HdrHistogram> import_buckets(const Exported& exported);

  // Lowest and highest value that land in bucket `index`.
  static uint64_t lower_edge(size_t index);
  static uint64_t upper_edge(size_t index);
  static size_t bucket_count() {
    return (size_t{1} << kSubBucketBits) + kMaxMagnitude * (size_t{1} << (kSubBucketBits - 1));
  }

  // Branch-free but for the clamp: values below 256 keep magnitude 0 and land
  // in their own bucket; above, the top 8 bits select one of 128 sub-buckets
  // of the value's power of two, laid out right after the previous one.
  static size_t index_of(uint64_t value) {
    int magnitude = std::bit_width(value | 0xff) - kSubBucketBits;
    if (magnitude > kMaxMagnitude) [[unlikely]]
      return bucket_count() - 1;
    return (static_cast<size_t>(magnitude) << (kSubBucketBits - 1)) +
           static_cast<size_t>(value >> magnitude);
  }

 private:
  std::vector<uint64_t> buckets_;
  uint64_t count_ = 0;
  uint64_t sum_ = 0;
  uint64_t min_ = UINT64_MAX;
  uint64_t max_ = 0;
};

}  // namespace telekern
