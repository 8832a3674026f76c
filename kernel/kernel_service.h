// gRPC adapter for telekern.kernel.v1.Kernel: translates requests, calls the
// module manager and authenticator, translates back.
#pragma once

#include <chrono>
#include <memory>

#include "kernel/auth/authenticator.h"
#include "kernel/auth/login_throttle.h"
#include "kernel/lifecycle/module_manager.h"
#include "telekern/kernel/v1/kernel.grpc.pb.h"
#include "telekern/work_queue.h"

namespace telekern::kernel {

struct DaemonInfo {
  std::string version;
  std::string git_revision;
  std::string http_address;
  std::chrono::system_clock::time_point start_time;
};

class KernelService final : public telekern::kernel::v1::Kernel::CallbackService {
 public:
  using AuthenticatorSource = std::function<std::shared_ptr<const auth::Authenticator>()>;
  // `login_throttle` (optional) slows down repeated failed logins.
  KernelService(ModuleManager& manager, AuthenticatorSource authenticator, DaemonInfo info,
                auth::LoginThrottle* login_throttle = nullptr);

  grpc::ServerUnaryReactor* ListModules(grpc::CallbackServerContext* context,
                                        const v1::ListModulesRequest* request,
                                        v1::ListModulesResponse* response) override;
  grpc::ServerUnaryReactor* LoadModule(grpc::CallbackServerContext* context,
                                       const v1::LoadModuleRequest* request,
                                       v1::LoadModuleResponse* response) override;
  grpc::ServerUnaryReactor* UnloadModule(grpc::CallbackServerContext* context,
                                         const v1::UnloadModuleRequest* request,
                                         v1::UnloadModuleResponse* response) override;
  grpc::ServerUnaryReactor* ReloadModule(grpc::CallbackServerContext* context,
                                         const v1::ReloadModuleRequest* request,
                                         v1::ReloadModuleResponse* response) override;
  grpc::ServerUnaryReactor* GetInfo(grpc::CallbackServerContext* context,
                                    const v1::GetInfoRequest* request,
                                    v1::GetInfoResponse* response) override;
  grpc::ServerUnaryReactor* GetConfig(grpc::CallbackServerContext* context,
                                      const v1::GetConfigRequest* request,
                                      v1::GetConfigResponse* response) override;
  grpc::ServerUnaryReactor* Login(grpc::CallbackServerContext* context,
                                  const v1::LoginRequest* request,
                                  v1::LoginResponse* response) override;

 private:
  ModuleManager& manager_;
  AuthenticatorSource authenticator_;
  DaemonInfo info_;
  auth::LoginThrottle* login_throttle_;
  // Password hashing (PBKDF2, ~0.1 s) runs here, not on gRPC's threads; a
  // full queue turns logins away, which also slows down password guessing.
  WorkQueue logins_{2, 32};
};

void to_proto(const ModuleStatus& status, v1::Module* out);

}  // namespace telekern::kernel
