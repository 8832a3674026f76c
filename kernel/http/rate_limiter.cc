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

RateRules::RateRules(const std::map<std::string, double>& per_second) {
  for (const auto& [scope, rate] : per_second) {
    auto limiter = std::make_unique<RateLimiter>(RateLimit{rate, 0});
    (scope.starts_with("/") ? routes_ : methods_).emplace(scope, std::move(limiter));
  }
}

std::optional<RateRules::Refusal> RateRules::take(Rules::iterator rule, std::string_view caller) {
  auto wait = rule->second->acquire(caller);
  if (!wait) return std::nullopt;
  return Refusal{rule->first, rule->second->limit().per_second, *wait};
}

std::optional<RateRules::Refusal> RateRules::acquire_route(std::string_view http_path,
                                                           std::string_view caller) {
  // The longest prefix: the rules are few, a linear pass is enough.
  auto best = routes_.end();
  for (auto it = routes_.begin(); it != routes_.end(); ++it) {
    if (http_path.starts_with(it->first) &&
        (best == routes_.end() || it->first.size() > best->first.size()))
      best = it;
  }
  if (best == routes_.end()) return std::nullopt;
  return take(best, caller);
}

std::optional<RateRules::Refusal> RateRules::acquire_method(std::string_view rpc_path,
                                                            std::string_view caller) {
  if (methods_.empty()) return std::nullopt;
  std::string_view method = rpc_path.starts_with("/") ? rpc_path.substr(1) : rpc_path;
  auto rule = methods_.find(method);
  if (rule == methods_.end()) rule = methods_.find(method.substr(0, method.find('/')));
  if (rule == methods_.end()) return std::nullopt;
  return take(rule, caller);
}

std::optional<std::string> RateRules::invalid_scope(std::string_view scope) {
  if (scope.starts_with("/")) return std::nullopt;
  std::string_view service = scope.substr(0, scope.find('/'));
  bool qualified = service.find('.') != std::string_view::npos && !service.ends_with(".") &&
                   !service.starts_with(".");
  bool one_method = scope.find('/') == std::string_view::npos ||
                    (scope.find('/') + 1 < scope.size() &&
                     scope.find('/', scope.find('/') + 1) == std::string_view::npos);
  if (qualified && one_method) return std::nullopt;
  return "must be an HTTP path prefix (/api/v1/), a service (telekern.broker.v1.Broker) or a "
         "method (telekern.broker.v1.Broker/Produce)";
}

}  // namespace telekern::kernel::http
