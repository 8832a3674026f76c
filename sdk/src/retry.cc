#include "telekern/retry.h"

#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <thread>

#include "telekern/strings.h"

namespace telekern {

Backoff::Backoff(BackoffPolicy policy, uint64_t seed) : policy_(policy), random_(seed) {}

std::chrono::milliseconds Backoff::ceiling(int attempt) const {
  double factor = std::pow(policy_.multiplier, std::max(0, attempt - 1));
  double millis = std::min(static_cast<double>(policy_.max.count()),
                           static_cast<double>(policy_.initial.count()) * factor);
  return std::chrono::milliseconds(static_cast<int64_t>(millis));
}

std::chrono::milliseconds Backoff::delay(int attempt) {
  auto upper = ceiling(attempt).count();
  std::uniform_int_distribution<int64_t> pick(0, std::max<int64_t>(0, upper));
  return std::chrono::milliseconds(pick(random_));
}

bool is_retryable(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDeadlineExceeded:
    case absl::StatusCode::kResourceExhausted:
    case absl::StatusCode::kAborted:
    case absl::StatusCode::kInternal:
      return true;
    default:
      return false;
  }
}

absl::Status retry(const std::function<absl::Status()>& attempt, Backoff& backoff,
                   std::stop_token stop,
                   const std::function<void(int, const absl::Status&)>& on_retry) {
  for (int number = 1;; ++number) {
    absl::Status status = attempt();
    if (status.ok() || !is_retryable(status)) return status;
    int limit = backoff.policy().max_attempts;
    if (limit > 0 && number >= limit) {
      return absl::Status(status.code(),
                          str_cat("gave up after ", number, " attempts: ", status.message()));
    }
    if (on_retry) on_retry(number, status);
    std::mutex mutex;
    std::condition_variable_any wake;
    std::unique_lock lock(mutex);
    wake.wait_for(lock, stop, backoff.delay(number), [] { return false; });
    if (stop.stop_requested()) {
      return absl::Status(status.code(), str_cat("stopped while retrying: ", status.message()));
    }
  }
}

CircuitBreaker::CircuitBreaker(std::string name, int failure_threshold,
                               std::chrono::milliseconds open_for,
                               std::function<Clock::time_point()> now)
    : name_(std::move(name)),
      failure_threshold_(std::max(1, failure_threshold)),
      open_for_(open_for),
      now_(std::move(now)) {}

absl::Status CircuitBreaker::allow() {
  std::lock_guard lock(mutex_);
  if (state_ == State::kOpen) {
    auto waited = now_() - opened_at_;
    if (waited < open_for_) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(open_for_ - waited);
      return absl::UnavailableError(
          str_cat("circuit '", name_, "' is open after ", consecutive_failures_,
                  " consecutive failures; next trial in ", left.count(), " ms"));
    }
    state_ = State::kHalfOpen;
    trial_in_flight_ = false;
  }
  if (state_ == State::kHalfOpen) {
    if (trial_in_flight_) {
      return absl::UnavailableError(
          str_cat("circuit '", name_, "' is half-open; a trial call is in flight"));
    }
    trial_in_flight_ = true;
  }
  return absl::OkStatus();
}

void CircuitBreaker::record_success() {
  std::lock_guard lock(mutex_);
  state_ = State::kClosed;
  consecutive_failures_ = 0;
  trial_in_flight_ = false;
}

void CircuitBreaker::record_failure() {
  std::lock_guard lock(mutex_);
  ++consecutive_failures_;
  trial_in_flight_ = false;
  if (state_ == State::kHalfOpen || consecutive_failures_ >= failure_threshold_) {
    state_ = State::kOpen;
    opened_at_ = now_();
  }
}

CircuitBreaker::State CircuitBreaker::state() const {
  std::lock_guard lock(mutex_);
  return state_;
}

}  // namespace telekern
