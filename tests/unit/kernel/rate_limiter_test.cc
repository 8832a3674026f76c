// Token buckets of the HTTP gateway, on a clock the test moves.
#include "kernel/http/rate_limiter.h"

#include <gtest/gtest.h>

namespace telekern::kernel::http {
namespace {

TEST(RateLimiterTest, BurstThenRefillPerKey) {
  RateLimiter limiter({.per_second = 2, .burst = 3});
  auto now = RateLimiter::Clock::time_point{} + std::chrono::hours(1);
  for (int i = 0; i < 3; ++i) EXPECT_FALSE(limiter.acquire("a", now)) << i;
  auto wait = limiter.acquire("a", now);
  ASSERT_TRUE(wait);
  EXPECT_EQ(wait->count(), 500);  // one token at 2/s
  EXPECT_FALSE(limiter.acquire("b", now)) << "keys are independent";
  EXPECT_FALSE(limiter.acquire("a", now + std::chrono::milliseconds(500)));
  EXPECT_TRUE(limiter.acquire("a", now + std::chrono::milliseconds(500)));
  // Never more than the burst after a long idle time.
  auto later = now + std::chrono::hours(1);
  for (int i = 0; i < 3; ++i) EXPECT_FALSE(limiter.acquire("a", later)) << i;
  EXPECT_TRUE(limiter.acquire("a", later));
}

TEST(RateLimiterTest, UnlimitedWhenOffAndBoundedMemory) {
  RateLimiter off({});
  for (int i = 0; i < 1000; ++i) EXPECT_FALSE(off.acquire("a"));
  RateLimiter small({.per_second = 1, .burst = 1}, /*max_keys=*/4);
  auto now = RateLimiter::Clock::time_point{} + std::chrono::hours(1);
  for (int i = 0; i < 100; ++i) EXPECT_FALSE(small.acquire("key" + std::to_string(i), now)) << i;
}

}  // namespace
}  // namespace telekern::kernel::http
