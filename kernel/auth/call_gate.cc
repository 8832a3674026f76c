#include "kernel/auth/call_gate.h"

#include <algorithm>

#include "kernel/auth/caller_identity.h"
#include "telekern/status.h"
#include "telekern/strings.h"

namespace telekern::kernel::auth {

CallGate::CallGate(std::shared_ptr<const Authenticator> authenticator, double calls_per_second)
    : authenticator_(std::move(authenticator)) {
  if (calls_per_second > 0) {
    limiter_ = std::make_unique<http::RateLimiter>(http::RateLimit{calls_per_second, 0});
  }
}

void CallGate::set_authenticator(std::shared_ptr<const Authenticator> authenticator) {
  authenticator_.store(std::move(authenticator));
}

grpc::Status CallGate::check(const grpc::ServerContextBase& call, std::string_view path) const {
  Role required = method_min_role(path);
  if (required == options::v1::ROLE_PUBLIC) return grpc::Status::OK;
  std::shared_ptr<const Authenticator> authenticator = authenticator_.load();
  // Without configured credentials (loopback only) every caller is an anonymous admin.
  Identity identity{"anonymous", options::v1::ROLE_ADMIN};
  if (authenticator->enabled()) {
    auto metadata = CallerMetadata::of(call);
    auto authenticated = authenticator->authenticate(metadata.api_key, metadata.authorization);
    if (!authenticated.ok()) return to_grpc(authenticated.status());
    identity = *authenticated;
  }
  if (auto allowed = authenticator->authorize(identity, required, path); !allowed.ok()) {
    return to_grpc(allowed);
  }
  if (limiter_ && identity.subject != "kernel") {
    if (auto wait = limiter_->acquire(identity.subject)) {
      auto seconds = std::max<int64_t>(1, (wait->count() + 999) / 1000);
      return grpc::Status(
          grpc::StatusCode::RESOURCE_EXHAUSTED,
          str_cat("'", identity.subject, "' made more than ",
                  std::to_string(static_cast<int64_t>(limiter_->limit().per_second)),
                  " calls a second; retry in ", std::to_string(seconds),
                  " s (limit: grpc_rate_per_credential)"));
    }
  }
  return grpc::Status::OK;
}

}  // namespace telekern::kernel::auth
