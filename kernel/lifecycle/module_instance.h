// One instance of a loaded module: its private library copy, the module
// object, its context and in-process server, and the state the kernel
// reports. The manager decides when instances open, start and go; this file
// knows how.
#pragma once

#include <absl/status/statusor.h>
#include <grpcpp/server.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "kernel/lifecycle/module_context.h"
#include "kernel/lifecycle/module_loader.h"
#include "kernel/routing/direct_routes.h"

namespace telekern::kernel {

enum class ModuleState { kLoading, kRunning, kStopping, kFailed, kUnloaded };
const char* module_state_name(ModuleState state);

struct ModuleStatus {
  std::string name;
  std::string version;
  std::string description;
  std::string file;
  ModuleState state = ModuleState::kLoading;
  std::vector<std::string> services;
  ModuleHealth health;
  std::chrono::system_clock::time_point load_time;
  std::string error;
  uint64_t generation = 0;
};

struct ModuleInstance {
  // Loads `file` through the private copy `copy` (removed again on error),
  // creates the module and reads its info and services. Not started. When
  // the module object goes, `sink` takes its code (the copy) to unmap it.
  static absl::StatusOr<std::shared_ptr<ModuleInstance>> open(const std::filesystem::path& file,
                                                              const std::filesystem::path& copy,
                                                              CodeSink sink);
  // A record of a module that failed to load, start or reload.
  static std::shared_ptr<ModuleInstance> failed(const std::filesystem::path& file,
                                                const std::string& name,
                                                const absl::Status& status);

  // Starts the module with `context` and serves its services on an
  // in-process server; on error the module is stopped and released.
  absl::Status start();
  // Drops the module object (its code goes to the sink given to open()),
  // then the context.
  void release();

  std::vector<std::string> service_names() const;
  ModuleStatus status() const;

  std::string name;
  std::filesystem::path file;
  std::filesystem::path private_copy;
  ModuleInfo info;  // without validators: the record may outlive the library
  std::vector<ServiceBinding> bindings;
  ModuleState state = ModuleState::kLoading;
  std::string error;
  uint64_t generation = 0;
  std::chrono::system_clock::time_point load_time;
  ModuleHealth health;
  std::string config_yaml;  // the effective config it was started with
  // Released in this order: the in-process server, the module, its library
  // (inside LoadedModule), then the context.
  std::unique_ptr<ModuleContextImpl> context;
  std::unique_ptr<LoadedModule> loaded;
  std::unique_ptr<grpc::Server> server;
  std::shared_ptr<grpc::Channel> channel;
  // Calls this instance serves through direct routes (not via `server`).
  std::shared_ptr<CallTracker> direct_calls = std::make_shared<CallTracker>();

 private:
  absl::Status serve_in_process();
};

}  // namespace telekern::kernel
