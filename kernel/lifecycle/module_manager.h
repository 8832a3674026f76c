// Owns the running modules, the public server and the routes between them.
// Unary calls to the modules loaded at start run straight on the public server
// (DirectRoutes); every other call is forwarded by the router to the module's
// own in-process server. Load, unload and reload requests are queued and
// run one at a time on the manager's own thread, which also polls module
// health between operations; every module lifecycle call happens on that
// thread. Each operation bumps the routing generation.
#pragma once

#include <absl/status/statusor.h>

#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <thread>

#include "kernel/auth/authenticator.h"
#include "kernel/auth/caller_identity.h"
#include "kernel/kernel_config.h"
#include "kernel/lifecycle/code_retirement.h"
#include "kernel/lifecycle/module_instance.h"
#include "kernel/routing/direct_routes.h"
#include "kernel/routing/local_calls.h"
#include "kernel/routing/module_channels.h"
#include "kernel/routing/module_router.h"
#include "kernel/routing/public_server.h"
#include "kernel/rpc_metrics.h"

namespace telekern::kernel {

struct OperationResult {
  ModuleStatus module;
  uint64_t generation = 0;
};

using OperationCallback = std::function<void(absl::StatusOr<OperationResult>)>;

class ModuleManager {
 public:
  // `login_providers` (may be null) receives the providers modules add; it
  // must outlive the manager.
  ModuleManager(KernelConfig config, MetricsRegistry& metrics, RpcMetrics& rpc_metrics,
                std::shared_ptr<const auth::Authenticator> authenticator,
                auth::LoginProviders* login_providers = nullptr);
  ~ModuleManager();

  // Starts serving `kernel_services`, loads the configured modules and serves
  // them too. Fails only when the server cannot listen.
  absl::Status start(std::vector<ServiceBinding> kernel_services);

  // Queue an operation; `done` runs on the manager thread with its outcome.
  void load(std::string name_or_path, OperationCallback done);
  void unload(std::string name, OperationCallback done);
  void reload(std::string name, OperationCallback done);

  std::vector<ModuleStatus> list() const;
  // Full names of every service the public server answers now.
  std::vector<std::string> service_names() const;
  // A channel into the public server that adds no credentials (the HTTP
  // gateway forwards its callers'); null until start() succeeded.
  std::shared_ptr<grpc::Channel> gateway_channel();
  // Unary calls without gRPC to the methods modules serve locally (the HTTP
  // gateway's first choice); null until start() succeeded and once stopping.
  LocalCalls* local_calls();
  uint64_t generation() const;
  int port() const;
  // True when every loaded module reports SERVING; `detail` names those that don't.
  bool ready(std::string* detail) const;
  absl::StatusOr<std::string> module_config(const std::string& name) const;
  // Module copies kept mapped past their grace period, with the reason; and
  // how many copies of destroyed instances are still mapped at all.
  std::vector<RetainedCode> retained_code() const { return retirement_->retained(); }
  size_t retired_copies_mapped() const { return retirement_->mapped(); }
  const KernelConfig& config() const { return config_; }
  void set_authenticator(std::shared_ptr<const auth::Authenticator> authenticator);
  // SIGHUP: takes the new modules.* sections and reloads (queued) every
  // running module whose effective config changed; a reload whose new config
  // is invalid keeps the running instance. Returns the modules queued.
  std::vector<std::string> apply_module_sections(YAML::Node sections);

  // Stops accepting, drains in-flight calls, stops modules in reverse order.
  // `for_exit`: the process exits right after (std::_Exit), so the gRPC
  // servers and channels are left alive rather than torn down.
  void shutdown(bool for_exit = false);

 private:
  using Record = ModuleInstance;
  struct Operation;

  void run();
  void execute(Operation& operation);
  void poll_health();
  // prepare() then launch().
  absl::StatusOr<std::shared_ptr<Record>> instantiate(const std::filesystem::path& file,
                                                      const std::string& replacing);
  // Loads the library and creates the module, checks its services and config;
  // does not start it.
  absl::StatusOr<std::shared_ptr<Record>> prepare(const std::filesystem::path& file,
                                                  const std::string& replacing);
  // The record's config section from the current config, checked by the module.
  absl::StatusOr<Config> effective_config(const Record& record) const;
  // Starts a prepared module and hosts its services; on error the module is
  // stopped and destroyed.
  absl::Status launch(Record& record);
  // Sends calls for the record's services to it (directly where possible).
  void route_to(const Record& record);
  // Lets in-flight calls finish (up to drain_timeout), stops the module,
  // destroys it, then unloads its library.
  void destroy(std::shared_ptr<Record> record);
  uint64_t next_generation();
  std::shared_ptr<Record> find_running(const std::string& name) const;
  std::filesystem::path resolve(const std::string& name_or_path) const;
  void record_failure(const std::filesystem::path& file, const std::string& name,
                      const absl::Status& status);

  KernelConfig config_;
  MetricsRegistry& metrics_;
  RpcMetrics& rpc_metrics_;
  std::shared_ptr<spdlog::logger> log_;
  std::vector<ServiceBinding> kernel_services_;
  auth::LoginProviders* login_providers_;

  mutable std::mutex mutex_;  // guards everything below
  std::shared_ptr<const auth::Authenticator> authenticator_;
  std::unique_ptr<auth::CallerIdentity> callers_;  // outlives router_ and every module
  std::unique_ptr<CodeRetirement> retirement_;     // outlives every module instance
  std::unique_ptr<ModuleChannels> channels_;
  std::vector<std::shared_ptr<Record>> records_;  // in load order
  std::unique_ptr<ModuleRouter> router_;
  std::unique_ptr<DirectRoutes> direct_;  // registered on server_, so it outlives it
  std::unique_ptr<PublicServer> server_;
  std::shared_ptr<auth::CallGate> gate_;
  std::shared_ptr<grpc::Channel> gateway_channel_;
  std::unique_ptr<LocalCalls> local_calls_;  // declared after direct_ and gate_: goes first
  uint64_t generation_ = 0;
  uint64_t copies_ = 0;
  int port_ = 0;
  std::deque<std::unique_ptr<Operation>> queue_;
  std::condition_variable queue_changed_;
  bool stopping_ = false;
  bool exiting_ = false;                                      // shutdown(for_exit)
  std::vector<std::unique_ptr<grpc::Server>> kept_for_exit_;  // module servers, see shutdown()
  std::unique_ptr<PublicServer> kept_public_server_;
  std::thread worker_;

  GaugeFamily& module_up_;
  CounterFamily& operations_;
};

}  // namespace telekern::kernel
