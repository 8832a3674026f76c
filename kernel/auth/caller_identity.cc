#include "kernel/auth/caller_identity.h"

#include "kernel/auth/crypto.h"

namespace telekern::kernel::auth {

CallerMetadata CallerMetadata::of(const grpc::ServerContextBase& call) {
  CallerMetadata out;
  for (const auto& [key, value] : call.client_metadata()) {
    std::string_view name(key.data(), key.size());
    std::string_view text(value.data(), value.size());
    if (name == "x-api-key") {
      out.api_key = text;
    } else if (name == "authorization") {
      out.authorization = text;
    } else if (name == kSubjectHeader) {
      out.forwarded_subject = text;
    } else if (name == kRoleHeader) {
      out.forwarded_role = text;
    } else if (name == kProofHeader) {
      out.forwarded_proof = text;
    }
  }
  return out;
}

std::string client_address(const grpc::ServerContextBase& call) {
  if (const auto* local = dynamic_cast<const LocalCallContext*>(&call)) {
    return local->client_address;
  }
  std::string peer = call.peer();  // "ipv4:127.0.0.1:5000", "ipv6:[::1]:5000", "inproc"...
  if (peer.starts_with("ipv4:")) return peer.substr(5, peer.rfind(':') - 5);
  if (peer.starts_with("ipv6:[")) return peer.substr(6, peer.find(']') - 6);
  if (peer.starts_with("unix:")) return peer;
  const auto& metadata = call.client_metadata();
  auto forwarded =
      metadata.find(grpc::string_ref(kClientAddressHeader.data(), kClientAddressHeader.size()));
  if (forwarded != metadata.end()) {
    return std::string(forwarded->second.data(), forwarded->second.size());
  }
  return peer;
}

bool is_private_metadata(std::string_view name) {
  return name.empty() || name[0] == ':' || name.starts_with("grpc-") || name == "x-api-key" ||
         name == "authorization" || name == "user-agent" || name.starts_with("x-telekern-");
}

CallerIdentity::CallerIdentity(std::shared_ptr<const Authenticator> authenticator,
                               std::string proof)
    : authenticator_(std::move(authenticator)), proof_(std::move(proof)) {}

void CallerIdentity::set_authenticator(std::shared_ptr<const Authenticator> authenticator) {
  authenticator_.store(std::move(authenticator));
}

Caller CallerIdentity::identify(std::string_view api_key, std::string_view authorization) const {
  std::shared_ptr<const Authenticator> authenticator = authenticator_.load();
  if (!authenticator->enabled()) return {"anonymous", "admin"};
  auto identity = authenticator->authenticate(api_key, authorization);
  if (!identity.ok()) return {"unknown", "viewer"};
  return {identity->subject, role_name(identity->role)};
}

Caller CallerIdentity::caller_of(const grpc::ServerContextBase& call) const {
  if (const auto* local = dynamic_cast<const LocalCallContext*>(&call)) {
    return identify(local->api_key, local->authorization);
  }
  auto metadata = CallerMetadata::of(call);
  if (!metadata.forwarded_subject.empty() && !metadata.forwarded_proof.empty() &&
      constant_time_equal(metadata.forwarded_proof, proof_)) {
    return {std::string(metadata.forwarded_subject), std::string(metadata.forwarded_role)};
  }
  return identify(metadata.api_key, metadata.authorization);
}

}  // namespace telekern::kernel::auth
