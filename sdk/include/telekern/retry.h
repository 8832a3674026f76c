// Retries with exponential backoff and full jitter, and a circuit breaker:
// the shared mechanics every module uses to reach stores and brokers
// (at-least-once: retry until the write succeeds, but stop hammering a peer
// that is down).
#pragma once

#include <absl/status/status.h>

#include <chrono>
#include <functional>
#include <mutex>
#include <random>
#include <stop_token>
#include <string>

namespace telekern {

struct BackoffPolicy {
  std::chrono::milliseconds initial{100};
  std::chrono::milliseconds max{10'000};
  double multiplier = 2.0;
  int max_attempts = 0;  // 0 = unbounded (until the stop token fires)
};

// Delay before retry number `attempt` (1-based): uniform in
// [0, min(max, initial * multiplier^(attempt-1))] ("full jitter").
class Backoff {
 public:
  explicit Backoff(BackoffPolicy policy, uint64_t seed = std::random_device{}());
  std::chrono::milliseconds delay(int attempt);
  // The upper bound of delay(attempt), without jitter.
  std::chrono::milliseconds ceiling(int attempt) const;
  const BackoffPolicy& policy() const { return policy_; }

 private:
  BackoffPolicy policy_;
  std::mt19937_64 random_;
};

// Whether a failed attempt may be retried: UNAVAILABLE, DEADLINE_EXCEEDED,
// RESOURCE_EXHAUSTED, ABORTED and INTERNAL may; the rest are the caller's fault.
bool is_retryable(const absl::Status& status);

// Runs `attempt` until it succeeds, fails with a non-retryable status, runs
// out of attempts, or `stop` is requested; sleeps the backoff delay between
// attempts (waking early on stop). `on_retry` sees each failure before the wait.
absl::Status retry(const std::function<absl::Status()>& attempt, Backoff& backoff,
                   std::stop_token stop = {},
                   const std::function<void(int attempt, const absl::Status&)>& on_retry = nullptr);

// Closed: calls pass. After `failure_threshold` consecutive failures it opens:
// calls are refused for `open_for`, then one trial call is let through
// (half-open); its success closes the breaker, its failure opens it again.
class CircuitBreaker {
 public:
  enum class State { kClosed, kOpen, kHalfOpen };
  using Clock = std::chrono::steady_clock;

  CircuitBreaker(std::string name, int failure_threshold, std::chrono::milliseconds open_for,
                 std::function<Clock::time_point()> now = Clock::now);

  // OK when the call may proceed; UNAVAILABLE naming the breaker when open.
  absl::Status allow();
  void record_success();
  void record_failure();
  State state() const;

 private:
  std::string name_;
  int failure_threshold_;
  std::chrono::milliseconds open_for_;
  std::function<Clock::time_point()> now_;
  mutable std::mutex mutex_;
  State state_ = State::kClosed;
  int consecutive_failures_ = 0;
  Clock::time_point opened_at_{};
  bool trial_in_flight_ = false;
};

}  // namespace telekern
