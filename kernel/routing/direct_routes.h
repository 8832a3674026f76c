// How unary calls reach their handlers on the public server. Every unary
// method of the kernel's own services and of the module services known when
// the server starts is registered on it through here: a call first passes the
// call gate (auth and min_role), then runs the handler of whoever serves the
// method now, on the public server's call — no second gRPC call. While no
// module instance can take it that way (reloading or unloaded, or not a
// callback service) the call goes through the module router like every other
// call, so reload and unload keep their guarantees. Streaming methods and
// services first seen later always use the router: gRPC servers cannot add
// methods after start.
#pragma once

#include <absl/status/statusor.h>
#include <grpcpp/impl/rpc_service_method.h>
#include <grpcpp/impl/service_type.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "kernel/auth/call_gate.h"
#include "kernel/routing/module_router.h"
#include "telekern/module.h"
#include "telekern/service/local_unary.h"

namespace telekern::kernel {

// Counts the calls one module instance is serving through direct routes, so
// the kernel can wait for them before it stops and destroys the instance.
class CallTracker {
 public:
  void started() { running_.fetch_add(1, std::memory_order_relaxed); }
  void finished();
  // Waits until no call runs or until `deadline`; returns how many still run.
  int wait_until_idle(std::chrono::steady_clock::time_point deadline);

 private:
  std::atomic<int> running_{0};
  std::mutex mutex_;
  std::condition_variable idle_;
};

class DirectRoutes final : public grpc::Service {
 public:
  // One route per unary method of `kernel_services` (always attached) and of
  // `module_services`, from the generated descriptor pool (the modules'
  // protos are loaded by then; unknown names are skipped). Fails when a kernel
  // service is not a callback service with unary methods only.
  static absl::StatusOr<std::unique_ptr<DirectRoutes>> create(
      const std::vector<ServiceBinding>& kernel_services,
      const std::vector<std::string>& module_services, ModuleRouter& router,
      const auth::CallGate& gate);
  ~DirectRoutes() override;

  // Sends calls to the unary methods of `binding` straight to its handlers
  // from now on, counted in `calls`; those it serves as a LocalUnary may also
  // be called without gRPC (local_target). False, and nothing changes, when
  // the service has no direct routes or is not a callback service.
  bool attach(const ServiceBinding& binding, std::shared_ptr<CallTracker> calls);

  // What a call to `path` ("/pkg.Service/Method") made without gRPC runs now:
  // the serving instance's handlers, the method's name, and the instance's
  // tracker, already counting the call (the caller calls finished() once the
  // call is completely done). nullopt when no attached module instance
  // serves that method locally.
  struct LocalTarget {
    LocalUnary* service = nullptr;
    std::string_view method;
    std::shared_ptr<CallTracker> calls;
  };
  std::optional<LocalTarget> local_target(std::string_view path) const;
  // Calls to `services` go through the router again. Once this returns no new
  // call reaches the detached handlers; calls already there keep running
  // (their CallTracker tells when they are done).
  void detach(const std::vector<std::string>& services);

 private:
  class Method;
  struct Target {
    grpc::internal::MethodHandler* handler = nullptr;  // the module's, or the route's fallback
    std::shared_ptr<CallTracker> calls;                // null for the fallback
    LocalUnary* local = nullptr;  // the module's, when it serves the method locally
  };
  struct Route {
    std::string path;  // "/pkg.Service/Method"; the server keeps a pointer to it
    std::string service;
    std::string method;
    int method_index = 0;  // in the service's descriptor, = in its generated grpc::Service
    Target direct;         // handler null while detached; calls null for kernel services
    std::unique_ptr<grpc::internal::MethodHandler> fallback;  // through the router
  };
  DirectRoutes(ModuleRouter& router, const auth::CallGate& gate);
  void add_routes(const std::string& service);
  // The handler a new call to route `index` runs, its tracker already counting it.
  Target pick(size_t index) const;

  ModuleRouter& router_;
  const auth::CallGate& gate_;
  std::vector<std::unique_ptr<Route>> routes_;            // fixed after construction
  std::unordered_map<std::string_view, size_t> by_path_;  // Route::path -> index in routes_
  mutable std::shared_mutex mutex_;                       // guards Route::direct
};

}  // namespace telekern::kernel
