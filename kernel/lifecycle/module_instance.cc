#include "kernel/lifecycle/module_instance.h"

#include <grpcpp/ext/health_check_service_server_builder_option.h>
#include <grpcpp/server_builder.h>

#include "telekern/strings.h"

namespace telekern::kernel {

const char* module_state_name(ModuleState state) {
  switch (state) {
    case ModuleState::kLoading:
      return "loading";
    case ModuleState::kRunning:
      return "running";
    case ModuleState::kStopping:
      return "stopping";
    case ModuleState::kFailed:
      return "failed";
    case ModuleState::kUnloaded:
      return "unloaded";
  }
  return "?";
}

absl::StatusOr<std::shared_ptr<ModuleInstance>> ModuleInstance::open(
    const std::filesystem::path& file, const std::filesystem::path& copy, CodeSink sink) {
  auto loaded = load_module(file, copy, std::move(sink));
  if (!loaded.ok()) {
    std::error_code ignored;
    std::filesystem::remove(copy, ignored);
    return loaded.status();
  }
  auto instance = std::make_shared<ModuleInstance>();
  instance->file = file;
  instance->private_copy = copy;
  instance->loaded = std::make_unique<LoadedModule>(std::move(*loaded));
  Module& module = instance->loaded->module();
  try {
    instance->info = module.info();
    instance->bindings = module.services();
  } catch (const std::exception& exception) {
    instance->release();
    return absl::InternalError(
        str_cat(file.string(), ": info() or services() threw: ", exception.what()));
  }
  // The record outlives the library when the module fails: keep no code
  // pointers from it (validators are std::functions defined in the module).
  for (auto& key : instance->info.config) key.validate = nullptr;
  instance->info.validate = nullptr;
  instance->name = instance->info.name;
  if (instance->name.empty()) {
    instance->release();
    return absl::FailedPreconditionError(str_cat(file.string(), ": module has no name"));
  }
  return instance;
}

std::shared_ptr<ModuleInstance> ModuleInstance::failed(const std::filesystem::path& file,
                                                       const std::string& name,
                                                       const absl::Status& status) {
  auto instance = std::make_shared<ModuleInstance>();
  instance->name = name;
  instance->file = file;
  instance->state = ModuleState::kFailed;
  instance->error = std::string(status.message());
  instance->load_time = std::chrono::system_clock::now();
  return instance;
}

absl::Status ModuleInstance::start() {
  Module& module = loaded->module();
  absl::Status started;
  try {
    started = module.start(*context);
  } catch (const std::exception& exception) {
    started = absl::InternalError(str_cat("start() threw: ", exception.what()));
  } catch (...) {
    started = absl::InternalError("start() threw a non-standard exception");
  }
  if (started.ok()) started = serve_in_process();
  if (started.ok()) return started;
  context->request_stop();
  try {
    module.stop();
  } catch (...) {
    context->logger()->error("stop() after a failed start threw");
  }
  server.reset();
  channel.reset();
  release();
  return absl::Status(started.code(),
                      str_cat("module '", name, "' failed to start: ", started.message()));
}

absl::Status ModuleInstance::serve_in_process() {
  if (bindings.empty()) return absl::OkStatus();
  // The public server already enforces deadlines and counts calls; the
  // module's own hop runs the minimal stack and no retries.
  grpc::ServerBuilder builder;
  builder.SetMaxReceiveMessageSize(-1);
  builder.AddChannelArgument(GRPC_ARG_MINIMAL_STACK, 1);
  // Health is served by the public server; the module's own hop needs none.
  builder.SetOption(std::make_unique<grpc::HealthCheckServiceServerBuilderOption>(nullptr));
  for (const auto& binding : bindings) builder.RegisterService(binding.service);
  server = builder.BuildAndStart();
  if (!server) return absl::InternalError("cannot start its in-process server");
  grpc::ChannelArguments arguments;
  arguments.SetMaxReceiveMessageSize(-1);
  arguments.SetInt(GRPC_ARG_MINIMAL_STACK, 1);
  arguments.SetInt(GRPC_ARG_ENABLE_RETRIES, 0);
  channel = server->InProcessChannel(arguments);
  return absl::OkStatus();
}

void ModuleInstance::release() {
  loaded.reset();  // module object first; its library goes to the sink
  context.reset();
}

std::vector<std::string> ModuleInstance::service_names() const {
  std::vector<std::string> names;
  for (const auto& binding : bindings) names.push_back(binding.name);
  return names;
}

ModuleStatus ModuleInstance::status() const {
  ModuleStatus status;
  status.name = name;
  status.version = info.version;
  status.description = info.description;
  status.file = file.string();
  status.state = state;
  for (const auto& binding : bindings) status.services.push_back(binding.name);
  status.health = health;
  if (state == ModuleState::kFailed) status.health = {HealthState::kNotServing, error};
  status.load_time = load_time;
  status.error = error;
  status.generation = generation;
  return status;
}

}  // namespace telekern::kernel
