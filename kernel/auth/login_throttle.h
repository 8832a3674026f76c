// Slows down password guessing: after a few failed logins for one user name,
// or from one client address, further attempts for it are turned away for a
// delay that doubles with each failure (capped) before any hash runs. A
// success clears the user's and the address's record. Unknown and known user
// names are treated alike, so the answers tell nothing about which exist.
#pragma once

#include <absl/status/status.h>

#include <chrono>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "telekern/metrics.h"

namespace telekern::kernel::auth {

struct LoginThrottlePolicy {
  int free_failures = 5;  // failures before the next attempt has to wait
  std::chrono::milliseconds base_delay{1000};
  std::chrono::milliseconds max_delay{60'000};
  std::chrono::milliseconds forget_after{15 * 60'000};  // a quiet record is dropped
  size_t max_records = 10'000;                          // per user names and per addresses
};

class LoginThrottle {
 public:
  using Clock = std::chrono::steady_clock;
  explicit LoginThrottle(MetricsRegistry& metrics, LoginThrottlePolicy policy = {});

  // OK, or RESOURCE_EXHAUSTED saying how long to wait when the user name or
  // the address is in its delay.
  absl::Status admit(std::string_view user, std::string_view address,
                     Clock::time_point now = Clock::now());
  void record(std::string_view user, std::string_view address, bool succeeded,
              Clock::time_point now = Clock::now());

 private:
  struct Record {
    int failures = 0;
    Clock::time_point last_failure;
    Clock::time_point blocked_until;
  };
  using Records = std::unordered_map<std::string, Record>;
  void fail(Records& records, std::string_view key, Clock::time_point now);
  void make_room(Records& records, Clock::time_point now);

  LoginThrottlePolicy policy_;
  Counter& failures_;
  CounterFamily& throttled_;
  std::mutex mutex_;
  Records users_;
  Records addresses_;
};

// "ipv4:10.0.0.1:5000" or "ipv6:[::1]:5000" (grpc peer()) -> "10.0.0.1" / "::1".
std::string peer_host(std::string_view peer);

}  // namespace telekern::kernel::auth
