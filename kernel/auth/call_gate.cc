#include "kernel/auth/call_gate.h"

#include "telekern/status.h"

namespace telekern::kernel::auth {

CallGate::CallGate(std::shared_ptr<const Authenticator> authenticator)
    : authenticator_(std::move(authenticator)) {}

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
    std::string_view api_key, authorization;
    for (const auto& [key, value] : call.client_metadata()) {
      std::string_view name(key.data(), key.size());
      if (name == "x-api-key") api_key = std::string_view(value.data(), value.size());
      if (name == "authorization") authorization = std::string_view(value.data(), value.size());
    }
    auto authenticated = authenticator->authenticate(api_key, authorization);
    if (!authenticated.ok()) return to_grpc(authenticated.status());
    identity = *authenticated;
  }
  return to_grpc(authenticator->authorize(identity, required, path));
}

}  // namespace telekern::kernel::auth
