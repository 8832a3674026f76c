// Routes calls for module services from the daemon's one public server to the
// in-process server of the module that serves them. The public server never
// restarts, so loading, unloading or reloading one module never disturbs calls
// to another; while a module reloads, calls to it are held (bounded) and then
// forwarded to the new instance.
#pragma once

#include <grpcpp/channel.h>
#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/support/byte_buffer.h>
#include <grpcpp/support/server_callback.h>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "kernel/auth/call_gate.h"
#include "kernel/auth/caller_identity.h"

namespace telekern::kernel {

struct HeldCall;

// A public call the router forwards: started on a module's backend channel, or
// ended without one.
class RoutedCall {
 public:
  virtual ~RoutedCall() = default;
  // Starts forwarding to `backend`; called once, from route() or a release.
  virtual void begin(std::shared_ptr<grpc::Channel> backend) = 0;
  // Ends the call without reaching a backend.
  virtual void fail(const grpc::Status& status) = 0;
  virtual void set_held(std::shared_ptr<HeldCall> held) = 0;
};

// A call waiting for its service to come back; cleared when the call ends first.
struct HeldCall {
  std::mutex mutex;
  RoutedCall* call = nullptr;
  std::chrono::steady_clock::time_point since;
};

class ModuleRouter final : public grpc::CallbackGenericService {
 public:
  // Calls pass `gate` first. Forwarded calls carry the caller's identity
  // from `callers`, with its proof, which is how a module tells a forwarded
  // identity from one a client wrote itself.
  ModuleRouter(std::chrono::milliseconds hold_limit, const auth::CallGate& gate,
               const auth::CallerIdentity& callers);
  ~ModuleRouter() override;

  grpc::ServerGenericBidiReactor* CreateReactor(
      grpc::GenericCallbackServerContext* context) override;
  // Routes a unary call whose request the server has already read (a direct
  // route whose module cannot take it directly right now, see DirectRoutes).
  grpc::ServerUnaryReactor* route_unary(grpc::CallbackServerContext* context,
                                        const std::string& method, const grpc::ByteBuffer* request,
                                        grpc::ByteBuffer* response);

  // Routes `services` to `backend` and releases calls held for them.
  void add(const std::vector<std::string>& services, const std::string& module,
           std::shared_ptr<grpc::Channel> backend);
  // New calls to `services` wait (up to the hold limit) until add() or remove().
  void hold(const std::vector<std::string>& services);
  // Stops routing `services`; held calls end with `status`.
  void remove(const std::vector<std::string>& services, const grpc::Status& status);
  // Ends calls held longer than the hold limit with UNAVAILABLE.
  void expire_held_calls();
  // Waits until no call forwarded to `backend` is still running, or until
  // `deadline`; returns how many are still running. Call after hold() or
  // remove(), so no new call can start on it. (Shutting down an in-process
  // server closes its transport at once: an answer still on its way would be
  // lost although the module did the work.)
  int wait_until_idle(const grpc::Channel* backend, std::chrono::steady_clock::time_point deadline);
  std::vector<std::string> services() const;

  // Used by the routed calls.
  void route(const std::string& service, RoutedCall* call);
  void backend_call_started(const grpc::Channel* backend);
  void backend_call_finished(const grpc::Channel* backend);
  // Whether "/pkg.Service/Method" is a unary method, from its descriptor.
  bool is_unary(const std::string& path);
  void forget(const std::shared_ptr<HeldCall>& held);

 private:
  struct Route {
    std::string module;
    std::shared_ptr<grpc::Channel> backend;  // null while held
    std::vector<std::shared_ptr<HeldCall>> held;
  };
  std::chrono::milliseconds hold_limit_;

 public:
  const auth::CallGate& gate;
  const auth::CallerIdentity& callers;

 private:
  mutable std::mutex mutex_;
  // Shared while a call picks a backend and creates its backend call; taken
  // exclusively by hold() and remove(), so once they return no new call can
  // start on the old backend and its server may be destroyed.
  std::shared_mutex start_mutex_;
  std::mutex active_mutex_;
  std::condition_variable active_changed_;
  std::map<const grpc::Channel*, int> active_;  // calls running per backend
  std::shared_mutex unary_mutex_;
  std::unordered_map<std::string, bool> unary_;
  std::map<std::string, Route> routes_;
};

}  // namespace telekern::kernel
