#include "kernel/auth/call_gate.h"

#include "kernel/auth/caller_identity.h"
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
    auto metadata = CallerMetadata::of(call);
    auto authenticated = authenticator->authenticate(metadata.api_key, metadata.authorization);
    if (!authenticated.ok()) return to_grpc(authenticated.status());
    identity = *authenticated;
  }
  return to_grpc(authenticator->authorize(identity, required, path));
}

}  // namespace telekern::kernel::auth
