#include "telekern/retry.h"

#include <gtest/gtest.h>

#include <atomic>
#include <set>
#include <thread>

namespace telekern {
namespace {

using namespace std::chrono_literals;

TEST(BackoffTest, CeilingGrowsAndCaps) {
  Backoff backoff({100ms, 1000ms, 2.0, 0}, 1);
  EXPECT_EQ(backoff.ceiling(1), 100ms);
  EXPECT_EQ(backoff.ceiling(2), 200ms);
  EXPECT_EQ(backoff.ceiling(4), 800ms);
  EXPECT_EQ(backoff.ceiling(5), 1000ms);
  EXPECT_EQ(backoff.ceiling(30), 1000ms);
}

TEST(BackoffTest, JitterStaysWithinCeilingAndVaries) {
  Backoff backoff({100ms, 1000ms, 2.0, 0}, 42);
  std::set<int64_t> seen;
  for (int i = 0; i < 200; ++i) {
    auto delay = backoff.delay(3);
    EXPECT_GE(delay, 0ms);
    EXPECT_LE(delay, 400ms);
    seen.insert(delay.count());
  }
  EXPECT_GT(seen.size(), 50u) << "full jitter spreads retries";
}

TEST(RetryTest, RetriesRetryableUntilSuccess) {
  Backoff backoff({1ms, 2ms, 2.0, 10}, 1);
  int calls = 0;
  std::vector<int> retried;
  auto status =
      retry([&] { return ++calls < 3 ? absl::UnavailableError("down") : absl::OkStatus(); },
            backoff, {}, [&](int attempt, const absl::Status&) { retried.push_back(attempt); });
  EXPECT_TRUE(status.ok());
  EXPECT_EQ(calls, 3);
  EXPECT_EQ(retried, (std::vector<int>{1, 2}));
}

TEST(RetryTest, DoesNotRetryCallerErrors) {
  Backoff backoff({1ms, 2ms, 2.0, 10}, 1);
  int calls = 0;
  auto status = retry(
      [&] {
        ++calls;
        return absl::InvalidArgumentError("bad");
      },
      backoff);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(calls, 1);
}

TEST(RetryTest, GivesUpAfterMaxAttemptsNamingCount) {
  Backoff backoff({1ms, 2ms, 2.0, 4}, 1);
  int calls = 0;
  auto status = retry(
      [&] {
        ++calls;
        return absl::UnavailableError("down");
      },
      backoff);
  EXPECT_EQ(calls, 4);
  EXPECT_NE(status.message().find("gave up after 4 attempts"), std::string::npos) << status;
}

TEST(RetryTest, StopTokenEndsTheWait) {
  // Waits of 10 minutes: only the stop request can end this test in time.
  Backoff backoff({600'000ms, 600'000ms, 2.0, 0}, 3);
  std::stop_source stop;
  std::atomic<int> calls{0};
  std::thread stopper([&] {
    // Stop once the first attempt failed and retry() is waiting for the second.
    while (calls.load() == 0) std::this_thread::yield();
    stop.request_stop();
  });
  auto status = retry(
      [&] {
        ++calls;
        return absl::UnavailableError("down");
      },
      backoff, stop.get_token());
  stopper.join();
  EXPECT_EQ(calls.load(), 1) << "no attempt after the stop";
  EXPECT_NE(status.message().find("stopped while retrying: down"), std::string::npos) << status;
}

TEST(CircuitBreakerTest, OpensHalfOpensAndCloses) {
  auto now = std::chrono::steady_clock::time_point{};
  CircuitBreaker breaker("clickhouse", 3, 1000ms, [&] { return now; });
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(breaker.allow().ok());
    breaker.record_failure();
  }
  EXPECT_EQ(breaker.state(), CircuitBreaker::State::kOpen);
  auto refused = breaker.allow();
  EXPECT_EQ(refused.code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(refused.message().find("circuit 'clickhouse' is open"), std::string::npos);
  now += 1001ms;
  EXPECT_TRUE(breaker.allow().ok()) << "one trial after the open period";
  EXPECT_FALSE(breaker.allow().ok()) << "only one trial at a time";
  breaker.record_failure();
  EXPECT_EQ(breaker.state(), CircuitBreaker::State::kOpen);
  now += 1001ms;
  EXPECT_TRUE(breaker.allow().ok());
  breaker.record_success();
  EXPECT_EQ(breaker.state(), CircuitBreaker::State::kClosed);
  EXPECT_TRUE(breaker.allow().ok());
}

}  // namespace
}  // namespace telekern
