// Token buckets keyed by a string (a credential, a client address): each key
// may make `per_second` requests a second on average and `burst` at once.
// Memory stays bounded: when the table is full, buckets that are full again
// (idle keys) are dropped.
#pragma once

#include <chrono>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace telekern::kernel::http {

struct RateLimit {
  double per_second = 0;  // 0: unlimited
  double burst = 0;       // 0: twice per_second
  bool enabled() const { return per_second > 0; }
};

class RateLimiter {
 public:
  using Clock = std::chrono::steady_clock;
  explicit RateLimiter(RateLimit limit, size_t max_keys = 100'000);

  // Takes a token for `key`; nullopt when allowed, else how long until one is there.
  std::optional<std::chrono::milliseconds> acquire(std::string_view key,
                                                   Clock::time_point now = Clock::now());
  const RateLimit& limit() const { return limit_; }

 private:
  struct Bucket {
    double tokens;
    Clock::time_point updated;
  };
  void refill(Bucket& bucket, Clock::time_point now) const;

  RateLimit limit_;
  size_t max_keys_;
  std::mutex mutex_;
  std::unordered_map<std::string, Bucket> buckets_;
};

}  // namespace telekern::kernel::http
