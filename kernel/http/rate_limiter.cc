#include "kernel/http/rate_limiter.h"

#include <algorithm>
#include <cmath>

namespace telekern::kernel::http {

RateLimiter::RateLimiter(RateLimit limit, size_t max_keys) : limit_(limit), max_keys_(max_keys) {
  if (limit_.burst <= 0) limit_.burst = std::max(1.0, 2 * limit_.per_second);
}

void RateLimiter::refill(Bucket& bucket, Clock::time_point now) const {
  double elapsed = std::chrono::duration<double>(now - bucket.updated).count();
  if (elapsed > 0) {
    bucket.tokens = std::min(limit_.burst, bucket.tokens + elapsed * limit_.per_second);
    bucket.updated = now;
  }
}

std::optional<std::chrono::milliseconds> RateLimiter::acquire(std::string_view key,
                                                              Clock::time_point now) {
  if (!limit_.enabled()) return std::nullopt;
  std::lock_guard lock(mutex_);
  auto found = buckets_.find(std::string(key));
  if (found == buckets_.end()) {
    if (buckets_.size() >= max_keys_) {
      std::erase_if(buckets_, [&](const auto& entry) {
        Bucket bucket = entry.second;
        refill(bucket, now);
        return bucket.tokens >= limit_.burst;
      });
      if (buckets_.size() >= max_keys_) buckets_.clear();
    }
    found = buckets_.emplace(std::string(key), Bucket{limit_.burst, now}).first;
  }
  Bucket& bucket = found->second;
  refill(bucket, now);
  if (bucket.tokens >= 1) {
    bucket.tokens -= 1;
    return std::nullopt;
  }
  double wait = (1 - bucket.tokens) / limit_.per_second;
  return std::chrono::milliseconds(static_cast<int64_t>(std::ceil(wait * 1000)));
}

}  // namespace telekern::kernel::http
