// The one check every call to a kernel or module method passes before its
// handler runs: it authenticates the caller's metadata and enforces the
// method's min_role. Unary methods registered on the public server ask it in
// DirectRoutes, everything else in the module router; health and reflection
// are public. Rejected calls still end through the server, so the RPC metrics
// count them with their status code.
#pragma once

#include <grpcpp/server_context.h>
#include <grpcpp/support/status.h>

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "kernel/auth/authenticator.h"
#include "kernel/auth/caller_identity.h"
#include "kernel/http/rate_limiter.h"

namespace telekern::kernel::auth {

// The gate's checks on credentials alone: OK, UNAUTHENTICATED or
// PERMISSION_DENIED for a call to `path` ("/pkg.Service/Method") made with
// this API key and Authorization value. The HTTP gateway asks it before it
// parses a request body, so a caller without the right gets 401/403 rather
// than a 400 about a body it may not send at all.
absl::Status check_credentials(const Authenticator& authenticator, std::string_view api_key,
                               std::string_view authorization, std::string_view path);

class CallGate {
 public:
  // `calls_per_second` > 0 limits each credential (token bucket, burst twice
  // that; the kernel's own calls are exempt): past it RESOURCE_EXHAUSTED.
  // `rate_limits`: the config's service and method rules (http::RateRules),
  // per credential, or per client address when auth is off.
  explicit CallGate(std::shared_ptr<const Authenticator> authenticator, double calls_per_second = 0,
                    const std::map<std::string, double>& rate_limits = {});

  // OK, or UNAUTHENTICATED (no or bad credentials) / PERMISSION_DENIED (role
  // too low) with a message that says which, for a call to `path`
  // ("/pkg.Service/Method").
  grpc::Status check(const grpc::ServerContextBase& call, std::string_view path) const;
  // The same check for a call made without gRPC (the HTTP gateway's local
  // calls): `metadata` as the call would carry it, `client_address` ("1.2.3.4")
  // where it comes from.
  grpc::Status check(const CallerMetadata& metadata, std::string_view client_address,
                     std::string_view path) const;
  // Applies new credentials settings (SIGHUP) to calls from now on.
  void set_authenticator(std::shared_ptr<const Authenticator> authenticator);

 private:
  grpc::Status check(const CallerMetadata& metadata,
                     const std::function<std::string()>& client_address,
                     std::string_view path) const;

  std::atomic<std::shared_ptr<const Authenticator>> authenticator_;
  std::unique_ptr<http::RateLimiter> limiter_;  // null: unlimited
  mutable http::RateRules rules_;
};

}  // namespace telekern::kernel::auth
