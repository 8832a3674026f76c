#include "kernel/kernel_service.h"

#include <google/protobuf/util/time_util.h>

#include "telekern/proto_time.h"
#include "telekern/status.h"

namespace telekern::kernel {
namespace {

using google::protobuf::util::TimeUtil;

v1::ModuleState to_proto(ModuleState state) {
  switch (state) {
    case ModuleState::kLoading:
      return v1::MODULE_STATE_LOADING;
    case ModuleState::kRunning:
      return v1::MODULE_STATE_RUNNING;
    case ModuleState::kStopping:
      return v1::MODULE_STATE_STOPPING;
    case ModuleState::kFailed:
      return v1::MODULE_STATE_FAILED;
    case ModuleState::kUnloaded:
      return v1::MODULE_STATE_UNLOADED;
  }
  return v1::MODULE_STATE_UNSPECIFIED;
}

common::v1::HealthState to_proto(HealthState state) {
  switch (state) {
    case HealthState::kServing:
      return common::v1::HEALTH_STATE_SERVING;
    case HealthState::kDegraded:
      return common::v1::HEALTH_STATE_DEGRADED;
    case HealthState::kNotServing:
      return common::v1::HEALTH_STATE_NOT_SERVING;
  }
  return common::v1::HEALTH_STATE_UNSPECIFIED;
}

// Finishes `reactor` with the operation's outcome, filling `result` on success.
OperationCallback finish_with(grpc::ServerUnaryReactor* reactor,
                              v1::ModuleOperationResult* result) {
  return [reactor, result](absl::StatusOr<OperationResult> outcome) {
    if (!outcome.ok()) {
      reactor->Finish(to_grpc(outcome.status()));
      return;
    }
    to_proto(outcome->module, result->mutable_module());
    result->set_generation(outcome->generation);
    reactor->Finish(grpc::Status::OK);
  };
}

grpc::ServerUnaryReactor* finish_now(grpc::CallbackServerContext* context, grpc::Status status) {
  auto* reactor = context->DefaultReactor();
  reactor->Finish(status);
  return reactor;
}

}  // namespace

void to_proto(const ModuleStatus& status, v1::Module* out) {
  out->set_name(status.name);
  out->set_version(status.version);
  out->set_description(status.description);
  out->set_file(status.file);
  out->set_state(to_proto(status.state));
  for (const auto& service : status.services) out->add_services(service);
  out->mutable_health()->set_state(to_proto(status.health.state));
  out->mutable_health()->set_detail(status.health.detail);
  *out->mutable_load_time() = to_timestamp(status.load_time);
  out->set_error(status.error);
  out->set_generation(status.generation);
}

KernelService::KernelService(ModuleManager& manager, AuthenticatorSource authenticator,
                             DaemonInfo info, auth::LoginThrottle* login_throttle)
    : manager_(manager),
      authenticator_(std::move(authenticator)),
      info_(std::move(info)),
      login_throttle_(login_throttle) {}

grpc::ServerUnaryReactor* KernelService::ListModules(grpc::CallbackServerContext* context,
                                                     const v1::ListModulesRequest*,
                                                     v1::ListModulesResponse* response) {
  for (const auto& module : manager_.list()) to_proto(module, response->add_modules());
  response->set_generation(manager_.generation());
  if (size_t mapped = manager_.retired_copies_mapped(); mapped > 0) {
    auto* copies = response->mutable_retired_copies();
    copies->set_mapped(static_cast<uint32_t>(mapped));
    for (const auto& code : manager_.retained_code()) {
      auto* out = copies->add_retained();
      out->set_module(code.module);
      out->set_file(code.copy.string());
      *out->mutable_since() = to_timestamp(code.since);
      out->set_reason(code.reason);
    }
  }
  return finish_now(context, grpc::Status::OK);
}

grpc::ServerUnaryReactor* KernelService::LoadModule(grpc::CallbackServerContext* context,
                                                    const v1::LoadModuleRequest* request,
                                                    v1::LoadModuleResponse* response) {
  if (request->name().empty()) {
    return finish_now(context, grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                            "name is required: a module name or a .so path"));
  }
  auto* reactor = context->DefaultReactor();
  manager_.load(request->name(), finish_with(reactor, response->mutable_result()));
  return reactor;
}

grpc::ServerUnaryReactor* KernelService::UnloadModule(grpc::CallbackServerContext* context,
                                                      const v1::UnloadModuleRequest* request,
                                                      v1::UnloadModuleResponse* response) {
  auto* reactor = context->DefaultReactor();
  manager_.unload(request->name(), finish_with(reactor, response->mutable_result()));
  return reactor;
}

grpc::ServerUnaryReactor* KernelService::ReloadModule(grpc::CallbackServerContext* context,
                                                      const v1::ReloadModuleRequest* request,
                                                      v1::ReloadModuleResponse* response) {
  auto* reactor = context->DefaultReactor();
  manager_.reload(request->name(), finish_with(reactor, response->mutable_result()));
  return reactor;
}

grpc::ServerUnaryReactor* KernelService::GetInfo(grpc::CallbackServerContext* context,
                                                 const v1::GetInfoRequest*,
                                                 v1::GetInfoResponse* response) {
  auto now = std::chrono::system_clock::now();
  response->set_version(info_.version);
  response->set_git_revision(info_.git_revision);
  *response->mutable_uptime() = TimeUtil::MillisecondsToDuration(
      std::chrono::duration_cast<std::chrono::milliseconds>(now - info_.start_time).count());
  const auto& config = manager_.config();
  std::string host = config.listen.substr(0, config.listen.rfind(':'));
  response->set_grpc_address(host + ":" + std::to_string(manager_.port()));
  response->set_http_address(info_.http_address);
  response->set_generation(manager_.generation());
  response->set_auth_enabled(authenticator_()->enabled());
  response->set_tls_enabled(config.tls.enabled());
  *response->mutable_start_time() = to_timestamp(info_.start_time);
  return finish_now(context, grpc::Status::OK);
}

grpc::ServerUnaryReactor* KernelService::GetConfig(grpc::CallbackServerContext* context,
                                                   const v1::GetConfigRequest* request,
                                                   v1::GetConfigResponse* response) {
  if (request->module().empty()) {
    response->set_yaml(manager_.config().validated.to_yaml());
    return finish_now(context, grpc::Status::OK);
  }
  auto yaml = manager_.module_config(request->module());
  if (!yaml.ok()) return finish_now(context, to_grpc(yaml.status()));
  response->set_yaml(*yaml);
  return finish_now(context, grpc::Status::OK);
}

grpc::ServerUnaryReactor* KernelService::Login(grpc::CallbackServerContext* context,
                                               const v1::LoginRequest* request,
                                               v1::LoginResponse* response) {
  auto* reactor = context->DefaultReactor();
  std::string address = auth::peer_host(context->peer());
  if (login_throttle_ != nullptr) {
    if (auto admitted = login_throttle_->admit(request->user(), address); !admitted.ok()) {
      reactor->Finish(to_grpc(admitted));
      return reactor;
    }
  }
  bool queued = logins_.try_submit([authenticator = authenticator_(), throttle = login_throttle_,
                                    address, request, response, reactor] {
    auto result = authenticator->login(request->user(), request->password());
    if (throttle != nullptr) throttle->record(request->user(), address, result.ok());
    if (!result.ok()) return reactor->Finish(to_grpc(result.status()));
    response->set_token(result->token);
    *response->mutable_expires_at() = to_timestamp(result->expires_at);
    response->set_role(result->role);
    reactor->Finish(grpc::Status::OK);
  });
  if (!queued) {
    reactor->Finish(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                                 "too many logins in progress; retry in a moment"));
  }
  return reactor;
}

}  // namespace telekern::kernel
