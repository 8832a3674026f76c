// The one place every incoming network call passes before it reaches a
// service: it authenticates and enforces the method's min_role. Rejections are
// counted in the same RPC metrics as served calls.
#pragma once

#include <grpcpp/security/auth_metadata_processor.h>

#include <atomic>
#include <memory>
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

  // Applies new credentials settings (SIGHUP) to calls from now on.
  void set_authenticator(std::shared_ptr<const Authenticator> authenticator);

 private:
  RpcMetrics& metrics_;
  std::atomic<std::shared_ptr<const Authenticator>> authenticator_;
};

}  // namespace telekern::kernel::auth
