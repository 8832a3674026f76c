// A log-linear latency histogram (HdrHistogram-style): constant relative
// error (under 1.6%) from 1 to 2^40 units, fixed memory, mergeable, exact count,
// min, max and mean. Not thread-safe: keep one per thread and merge.
// Benchmarks use it for p50/p99/p99.9; Prometheus histograms live in metrics.h.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace telekern {

class LatencyHistogram {
 public:
  LatencyHistogram();
  void record(uint64_t value);  // any unit (e.g. microseconds); 0 is counted as 0
  void merge(const LatencyHistogram& other);
  void reset();

  uint64_t count() const { return count_; }
  uint64_t min() const { return count_ ? min_ : 0; }
  uint64_t max() const { return max_; }
  double mean() const {
    return count_ ? static_cast<double>(sum_) / static_cast<double>(count_) : 0.0;
  }
  // The value at quantile q in [0, 1] (upper edge of its bucket, capped at max()).
  uint64_t percentile(double q) const;
  // "p50=… p99=… p99.9=… max=…" with `unit` appended to each figure.
  std::string summary(const std::string& unit) const;

 private:
  static constexpr int kSubBucketBits = 7;  // 128 sub-buckets per power of two
  static constexpr int kMagnitudes = 41;
  static size_t index_of(uint64_t value);
  static uint64_t upper_edge(size_t index);

  std::vector<uint64_t> buckets_;
  uint64_t count_ = 0;
  uint64_t sum_ = 0;
  uint64_t min_ = UINT64_MAX;
  uint64_t max_ = 0;
};

}  // namespace telekern
