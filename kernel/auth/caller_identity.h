// Who is calling: the one reader of a call's identifying metadata (API key,
// bearer token, and the identity the router forwards to modules), used by
// the call gate, the router and ModuleContext::caller().
#pragma once

#include <grpcpp/server_context.h>

#include <atomic>
#include <memory>
#include <string>
#include <string_view>

#include "kernel/auth/authenticator.h"
#include "telekern/module.h"

namespace telekern::kernel::auth {

// Metadata the router sets on a forwarded call: the caller's identity, and
// the kernel's internal key as proof that the kernel (not a client) wrote it.
inline constexpr std::string_view kSubjectHeader = "x-telekern-subject";
inline constexpr std::string_view kRoleHeader = "x-telekern-role";
inline constexpr std::string_view kProofHeader = "x-telekern-kernel";

// The identifying metadata of one call, read in one pass (views into the call).
struct CallerMetadata {
  std::string_view api_key;        // x-api-key
  std::string_view authorization;  // authorization: Bearer <jwt>
  std::string_view forwarded_subject;
  std::string_view forwarded_role;
  std::string_view forwarded_proof;

  static CallerMetadata of(const grpc::ServerContextBase& call);
};

// The context of a call the kernel runs without gRPC (the HTTP gateway's
// local calls): it carries no metadata, so it holds what the call came with.
struct LocalCallContext final : grpc::CallbackServerContext {
  std::string api_key;
  std::string authorization;
  std::string client_address;  // "127.0.0.1"
};

// The client address the HTTP gateway passes on for its caller.
inline constexpr std::string_view kClientAddressHeader = "x-telekern-client-address";

// Where a call comes from ("127.0.0.1", no port): the peer's address, or for a
// call on the in-process channel (the gateway) the address it passed on.
std::string client_address(const grpc::ServerContextBase& call);

// Metadata a forwarded call must not pass on: credentials, x-telekern-*,
// and what gRPC sets itself.
bool is_private_metadata(std::string_view name);

class CallerIdentity {
 public:
  CallerIdentity(std::shared_ptr<const Authenticator> authenticator, std::string proof);

  // {subject, role name} from credentials: {"anonymous", "admin"} without
  // configured credentials, {"unknown", "viewer"} for bad ones (which never
  // pass the call gate anyway).
  Caller identify(std::string_view api_key, std::string_view authorization) const;
  // The caller of a call a module serves: the router's forwarded identity
  // when the kernel's proof vouches for it, else from the call's credentials.
  Caller caller_of(const grpc::ServerContextBase& call) const;
  const std::string& proof() const { return proof_; }
  // New credentials settings (SIGHUP) for calls from now on.
  void set_authenticator(std::shared_ptr<const Authenticator> authenticator);

 private:
  std::atomic<std::shared_ptr<const Authenticator>> authenticator_;
  std::string proof_;
};

}  // namespace telekern::kernel::auth
