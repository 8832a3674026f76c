#include "kernel/auth/call_gate.h"

#include <algorithm>

#include "kernel/auth/caller_identity.h"
#include "telekern/status.h"
#include "telekern/strings.h"

namespace telekern::kernel::auth {

CallGate::CallGate(std::shared_ptr<const Authenticator> authenticator, double calls_per_second,
                   const std::map<std::string, double>& rate_limits)
    : authenticator_(std::move(authenticator)), rules_(rate_limits) {
  if (calls_per_second > 0) {
    limiter_ = std::make_unique<http::RateLimiter>(http::RateLimit{calls_per_second, 0});
  }
}

void CallGate::set_authenticator(std::shared_ptr<const Authenticator> authenticator) {
  authenticator_.store(std::move(authenticator));
}

namespace {

// The caller of a call to a method that needs `required`, or why not.
absl::StatusOr<Identity> admitted_identity(const Authenticator& authenticator,
                                           std::string_view api_key, std::string_view authorization,
                                           Role required, std::string_view path) {
  // Without configured credentials (loopback only) every caller is an anonymous admin.
  Identity identity{"anonymous", options::v1::ROLE_ADMIN};
  if (authenticator.enabled()) {
    auto authenticated = authenticator.authenticate(api_key, authorization);
    if (!authenticated.ok()) return authenticated.status();
    identity = *authenticated;
  }
  if (auto allowed = authenticator.authorize(identity, required, path); !allowed.ok()) {
    return allowed;
  }
  return identity;
}

}  // namespace

absl::Status check_credentials(const Authenticator& authenticator, std::string_view api_key,
                               std::string_view authorization, std::string_view path) {
  Role required = method_min_role(path);
  if (required == options::v1::ROLE_PUBLIC) return absl::OkStatus();
  return admitted_identity(authenticator, api_key, authorization, required, path).status();
}

grpc::Status CallGate::check(const grpc::ServerContextBase& call, std::string_view path) const {
  return check(
      CallerMetadata::of(call), [&call] { return client_address(call); }, path);
}

grpc::Status CallGate::check(const CallerMetadata& metadata, std::string_view address,
                             std::string_view path) const {
  return check(
      metadata, [address] { return std::string(address); }, path);
}

grpc::Status CallGate::check(const CallerMetadata& metadata,
                             const std::function<std::string()>& client_address,
                             std::string_view path) const {
  Role required = method_min_role(path);
  if (required == options::v1::ROLE_PUBLIC) return grpc::Status::OK;
  std::shared_ptr<const Authenticator> authenticator = authenticator_.load();
  auto admitted =
      admitted_identity(*authenticator, metadata.api_key, metadata.authorization, required, path);
  if (!admitted.ok()) return to_grpc(admitted.status());
  const Identity& identity = *admitted;
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
  if (!rules_.empty() && identity.subject != "kernel") {
    // Per credential; without auth, per client address (the gateway's own
    // calls carry their client's, which only an in-process caller may claim).
    std::string caller = identity.subject;
    if (!authenticator->enabled()) {
      caller = client_address();
    }
    if (auto refused = rules_.acquire_method(path, caller)) {
      auto seconds = std::max<int64_t>(1, (refused->wait.count() + 999) / 1000);
      return grpc::Status(
          grpc::StatusCode::RESOURCE_EXHAUSTED,
          str_cat("more than ", std::to_string(static_cast<int64_t>(refused->per_second)),
                  " calls a second to ", refused->scope, "; retry in ", std::to_string(seconds),
                  " s (limit: rate_limits.", refused->scope, ")"));
    }
  }
  return grpc::Status::OK;
}

}  // namespace telekern::kernel::auth
