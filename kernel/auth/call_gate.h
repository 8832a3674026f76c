// The one place every incoming call passes before it reaches a service: it
// authenticates, enforces the method's min_role, and turns calls to a module
// that is being reloaded away with UNAVAILABLE so clients retry. Rejections are
// counted in the same RPC metrics as served calls.
#pragma once

#include <grpcpp/security/auth_metadata_processor.h>

#include <memory>
#include <mutex>
#include <set>
#include <string>

#include "kernel/auth/authenticator.h"
#include "kernel/rpc_metrics.h"

namespace telekern::kernel::auth {

class CallGate final : public grpc::AuthMetadataProcessor {
 public:
  CallGate(std::shared_ptr<const Authenticator> authenticator, RpcMetrics& metrics);

  bool IsBlocking() const override { return false; }
  grpc::Status Process(const InputMetadata& metadata, grpc::AuthContext* context,
                       OutputMetadata* consumed, OutputMetadata* response) override;

  // Calls to these services get UNAVAILABLE with `reason` until unblocked.
  void block_service(const std::string& service, const std::string& reason);
  void unblock_service(const std::string& service);
  // Applies new credentials settings (SIGHUP) to calls from now on.
  void set_authenticator(std::shared_ptr<const Authenticator> authenticator);

 private:
  RpcMetrics& metrics_;
  std::mutex mutex_;  // guards authenticator_ and blocked_
  std::shared_ptr<const Authenticator> authenticator_;
  std::map<std::string, std::string> blocked_;
};

}  // namespace telekern::kernel::auth
