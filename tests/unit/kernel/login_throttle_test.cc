#include "kernel/auth/login_throttle.h"

#include <gtest/gtest.h>

namespace telekern::kernel::auth {
namespace {

using namespace std::chrono_literals;
using Clock = LoginThrottle::Clock;

LoginThrottlePolicy policy() {
  return {.free_failures = 3,
          .base_delay = 1000ms,
          .max_delay = 8000ms,
          .forget_after = 60'000ms,
          .max_records = 4};
}

TEST(LoginThrottleTest, RepeatedFailuresForOneUserAreDelayedAndTheDelayDoubles) {
  MetricsRegistry metrics;
  LoginThrottle throttle(metrics, policy());
  auto now = Clock::now();
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(throttle.admit("alice", "10.0.0." + std::to_string(i), now).ok()) << i;
    throttle.record("alice", "10.0.0." + std::to_string(i), false, now);
  }
  // Three failures are free; the next attempt waits 1 s.
  auto refused = throttle.admit("alice", "10.0.0.3", now + 500ms);
  ASSERT_EQ(refused.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(refused.message().find("retry in 1 s"), std::string::npos) << refused.message();
  EXPECT_TRUE(throttle.admit("alice", "10.0.0.3", now + 1001ms).ok());
  throttle.record("alice", "10.0.0.3", false, now + 1001ms);  // fourth: 2 s
  EXPECT_FALSE(throttle.admit("alice", "10.0.0.4", now + 2500ms).ok());
  EXPECT_TRUE(throttle.admit("alice", "10.0.0.4", now + 3002ms).ok());
  EXPECT_TRUE(throttle.admit("bob", "10.0.0.9", now + 1500ms).ok()) << "other users unaffected";
  std::string exposed = metrics.expose();
  EXPECT_NE(exposed.find("telekern_login_failures_total 4\n"), std::string::npos) << exposed;
  EXPECT_NE(exposed.find("telekern_login_throttled_total{scope=\"user\"} 2\n"), std::string::npos)
      << exposed;
}

TEST(LoginThrottleTest, OneAddressTryingManyUserNamesIsDelayed) {
  MetricsRegistry metrics;
  LoginThrottle throttle(metrics, policy());
  auto now = Clock::now();
  for (int i = 0; i < 3; ++i) throttle.record("user" + std::to_string(i), "10.0.0.1", false, now);
  auto refused = throttle.admit("someone-else", "10.0.0.1", now);
  EXPECT_EQ(refused.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(throttle.admit("someone-else", "10.0.0.2", now).ok());
  EXPECT_NE(metrics.expose().find("telekern_login_throttled_total{scope=\"address\"} 1\n"),
            std::string::npos);
}

TEST(LoginThrottleTest, DelayIsCappedAndSuccessClearsTheRecord) {
  MetricsRegistry metrics;
  LoginThrottle throttle(metrics, policy());
  auto now = Clock::now();
  for (int i = 0; i < 30; ++i) throttle.record("alice", "10.0.0.1", false, now);
  EXPECT_FALSE(throttle.admit("alice", "10.0.0.2", now + 7900ms).ok());
  EXPECT_TRUE(throttle.admit("alice", "10.0.0.2", now + 8001ms).ok()) << "capped at max_delay";
  throttle.record("alice", "10.0.0.1", true, now + 8001ms);
  throttle.record("alice", "10.0.0.1", false, now + 8002ms);
  EXPECT_TRUE(throttle.admit("alice", "10.0.0.1", now + 8002ms).ok()) << "success starts afresh";
}

TEST(LoginThrottleTest, RecordsStayBoundedUnderManyNames) {
  MetricsRegistry metrics;
  LoginThrottle throttle(metrics, policy());
  auto now = Clock::now();
  // Many names: records stay bounded (max_records = 4) and the busiest is kept.
  for (int i = 0; i < 10; ++i) throttle.record("alice", "10.0.0.1", false, now);
  for (int i = 0; i < 1000; ++i)
    throttle.record("junk" + std::to_string(i), "10.1." + std::to_string(i), false, now);
  EXPECT_FALSE(throttle.admit("alice", "10.9.9.9", now).ok());
}

TEST(LoginThrottleTest, PeerHostDropsSchemeAndPort) {
  EXPECT_EQ(peer_host("ipv4:10.0.0.1:5000"), "10.0.0.1");
  EXPECT_EQ(peer_host("ipv6:[::1]:5000"), "::1");
  EXPECT_EQ(peer_host("unix:/tmp/s"), "unix:/tmp/s");
}

}  // namespace
}  // namespace telekern::kernel::auth
