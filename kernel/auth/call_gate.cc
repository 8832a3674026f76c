#include "kernel/auth/call_gate.h"

#include "telekern/status.h"
#include "telekern/strings.h"

namespace telekern::kernel::auth {
namespace {
std::string_view find(const grpc::AuthMetadataProcessor::InputMetadata& metadata,
                      std::string_view key) {
  auto it = metadata.find(grpc::string_ref(key.data(), key.size()));
  if (it == metadata.end()) return {};
  return std::string_view(it->second.data(), it->second.size());
}
}  // namespace

CallGate::CallGate(std::shared_ptr<const Authenticator> authenticator, RpcMetrics& metrics)
    : metrics_(metrics), authenticator_(std::move(authenticator)) {}

void CallGate::set_authenticator(std::shared_ptr<const Authenticator> authenticator) {
  authenticator_.store(std::move(authenticator));
}

grpc::Status CallGate::Process(const InputMetadata& metadata, grpc::AuthContext* context,
                               OutputMetadata* consumed, OutputMetadata* response) {
  // x-telekern-* carries identities the kernel vouches for (module router to
  // module); a network caller must not set it. Consumed metadata is dropped.
  for (const auto& [key, value] : metadata) {
    std::string_view name(key.data(), key.size());
    if (name.starts_with("x-telekern-")) {
      consumed->emplace(std::string(name), std::string(value.data(), value.size()));
    }
  }
  std::string_view path = find(metadata, ":path");
  auto reject = [&](grpc::Status status) {
    metrics_.record_rejected(path, status.error_code());
    return status;
  };
  std::shared_ptr<const Authenticator> authenticator = authenticator_.load();
  Role required = method_min_role(path);
  if (required == options::v1::ROLE_PUBLIC) return grpc::Status::OK;
  std::string_view api_key = find(metadata, "x-api-key");
  std::string_view authorization = find(metadata, "authorization");
  // Without configured credentials (loopback only) every caller is an anonymous admin.
  Identity identity{"anonymous", options::v1::ROLE_ADMIN};
  if (authenticator->enabled()) {
    auto authenticated = authenticator->authenticate(api_key, authorization);
    if (!authenticated.ok()) return reject(to_grpc(authenticated.status()));
    identity = *authenticated;
  }
  if (auto status = authenticator->authorize(identity, required, path); !status.ok()) {
    return reject(to_grpc(status));
  }
  // The auth context is shared by every call on a connection, so the caller's
  // identity is not stored there; the module router resolves it per call.
  return grpc::Status::OK;
}

}  // namespace telekern::kernel::auth
