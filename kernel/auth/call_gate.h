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
#include <memory>
#include <string>
#include <string_view>

#include "kernel/auth/authenticator.h"
#include "kernel/http/rate_limiter.h"

namespace telekern::kernel::auth {

class CallGate {
 public:
  // `calls_per_second` > 0 limits each credential (token bucket, burst twice
  // that; the kernel's own calls are exempt): past it RESOURCE_EXHAUSTED.
  explicit CallGate(std::shared_ptr<const Authenticator> authenticator,
                    double calls_per_second = 0);

  // OK, or UNAUTHENTICATED (no or bad credentials) / PERMISSION_DENIED (role
  // too low) with a message that says which, for a call to `path`
  // ("/pkg.Service/Method").
  grpc::Status check(const grpc::ServerContextBase& call, std::string_view path) const;
  // Applies new credentials settings (SIGHUP) to calls from now on.
  void set_authenticator(std::shared_ptr<const Authenticator> authenticator);

 private:
  std::atomic<std::shared_ptr<const Authenticator>> authenticator_;
  std::unique_ptr<http::RateLimiter> limiter_;  // null: unlimited
};

}  // namespace telekern::kernel::auth
