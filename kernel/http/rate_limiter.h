// Token buckets keyed by a string (a credential, a client address): each key
// may make `per_second` requests a second on average and `burst` at once.
// Memory stays bounded: when the table is full, buckets that are full again
// (idle keys) are dropped.
#pragma once

#include <chrono>
#include <map>
#include <memory>
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

// The `rate_limits` rules: calls a second per caller for a route family
// (an HTTP path prefix such as "/api/v1/", HTTP only) or for a service or one
// method ("telekern.broker.v1.Broker", "telekern.broker.v1.Broker/Produce"),
// which the call gate applies to gRPC calls and gateway calls alike. The
// longest matching route prefix and the most specific service rule apply;
// each rule has its own buckets (burst twice the rate).
class RateRules {
 public:
  struct Refusal {
    std::string scope;  // the rule's key, e.g. "/api/v1/"
    double per_second = 0;
    std::chrono::milliseconds wait{0};
  };

  explicit RateRules(const std::map<std::string, double>& per_second = {});
  bool empty() const { return routes_.empty() && methods_.empty(); }

  // A token of the route-family rule for `http_path`, if any, for `caller`.
  std::optional<Refusal> acquire_route(std::string_view http_path, std::string_view caller);
  // A token of the service or method rule for `rpc_path` ("/pkg.Service/Method").
  std::optional<Refusal> acquire_method(std::string_view rpc_path, std::string_view caller);

  // Whether `scope` names a route family ("/...") or a service or method
  // ("pkg.Service" or "pkg.Service/Method"); else why not.
  static std::optional<std::string> invalid_scope(std::string_view scope);

 private:
  using Rules = std::map<std::string, std::unique_ptr<RateLimiter>, std::less<>>;
  static std::optional<Refusal> take(Rules::iterator rule, std::string_view caller);

  Rules routes_;   // "/prefix" -> buckets
  Rules methods_;  // "pkg.Service" or "pkg.Service/Method" -> buckets
};

}  // namespace telekern::kernel::http
