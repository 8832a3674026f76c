#include "kernel/auth/login_throttle.h"

#include <algorithm>

#include "telekern/strings.h"

namespace telekern::kernel::auth {

LoginThrottle::LoginThrottle(MetricsRegistry& metrics, LoginThrottlePolicy policy)
    : policy_(policy),
      failures_(metrics
                    .counter("telekern_login_failures_total",
                             "Login attempts with an unknown user or a wrong password")
                    .with()),
      throttled_(metrics.counter("telekern_login_throttled_total",
                                 "Login attempts turned away after repeated failures, by whether "
                                 "the user name or the client address was in its delay",
                                 {"scope"})) {
  throttled_.with({"user"});
  throttled_.with({"address"});
}

absl::Status LoginThrottle::admit(std::string_view user, std::string_view address,
                                  Clock::time_point now) {
  std::lock_guard lock(mutex_);
  auto blocked = [&](const Records& records, std::string_view key) -> Clock::duration {
    auto it = records.find(std::string(key));
    if (it == records.end() || it->second.blocked_until <= now) return Clock::duration::zero();
    return it->second.blocked_until - now;
  };
  Clock::duration wait = blocked(users_, user);
  const char* scope = "user";
  if (auto by_address = blocked(addresses_, address); by_address > wait) {
    wait = by_address;
    scope = "address";
  }
  if (wait == Clock::duration::zero()) return absl::OkStatus();
  throttled_.with({scope}).inc();
  auto seconds = std::chrono::duration_cast<std::chrono::seconds>(wait).count() + 1;
  return absl::ResourceExhaustedError(str_cat(
      "too many failed logins for this user or from this address; retry in ", seconds, " s"));
}

void LoginThrottle::record(std::string_view user, std::string_view address, bool succeeded,
                           Clock::time_point now) {
  std::lock_guard lock(mutex_);
  if (succeeded) {
    users_.erase(std::string(user));
    addresses_.erase(std::string(address));
    return;
  }
  failures_.inc();
  fail(users_, user, now);
  fail(addresses_, address, now);
}

void LoginThrottle::fail(Records& records, std::string_view key, Clock::time_point now) {
  auto it = records.find(std::string(key));
  if (it == records.end()) {
    make_room(records, now);
    it = records.emplace(std::string(key), Record{}).first;
  }
  Record& record = it->second;
  if (now - record.last_failure > policy_.forget_after) record.failures = 0;
  ++record.failures;
  record.last_failure = now;
  // After free_failures failures the next attempt waits base_delay, after
  // each further one twice as long.
  int over = record.failures - policy_.free_failures;
  if (over < 0) return;
  auto delay = policy_.base_delay * (int64_t{1} << std::min(over, 20));
  record.blocked_until = now + std::min<Clock::duration>(delay, policy_.max_delay);
}

void LoginThrottle::make_room(Records& records, Clock::time_point now) {
  if (records.size() < policy_.max_records) return;
  std::erase_if(records, [&](const auto& entry) {
    return now - entry.second.last_failure > policy_.forget_after;
  });
  if (records.size() < policy_.max_records) return;
  // Still full: drop the record with the fewest failures (the least suspicious).
  auto least = std::min_element(records.begin(), records.end(), [](const auto& a, const auto& b) {
    return a.second.failures < b.second.failures;
  });
  records.erase(least);
}

std::string peer_host(std::string_view peer) {
  auto colon = peer.find(':');
  if (colon != std::string_view::npos &&
      (peer.substr(0, colon) == "ipv4" || peer.substr(0, colon) == "ipv6")) {
    peer.remove_prefix(colon + 1);
  } else {
    return std::string(peer);  // unix:..., in-process: the whole name is the address
  }
  if (auto port = peer.rfind(':'); port != std::string_view::npos) peer = peer.substr(0, port);
  if (peer.size() >= 2 && peer.front() == '[' && peer.back() == ']') {
    peer = peer.substr(1, peer.size() - 2);
  }
  return std::string(peer);
}

}  // namespace telekern::kernel::auth
