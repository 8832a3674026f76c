// Unary calls the HTTP gateway makes without gRPC, to methods a module serves
// as a LocalUnary (telekern/service/local_unary.h). Each call passes the call
// gate with the HTTP caller's credentials and address, runs the module's own
// handler on the calling thread with a context made for it (through gRPC's
// DefaultReactorTestPeer, gRPC 1.51's one way to run a callback handler
// without a call), and is counted in the RPC metrics as a call over gRPC
// would be. The serving instance's CallTracker counts it too, so reload and
// unload wait for it as for any direct call.
#pragma once

#include <google/protobuf/message.h>
#include <grpcpp/support/status.h>

#include <atomic>
#include <chrono>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string_view>

#include "kernel/auth/call_gate.h"
#include "kernel/routing/direct_routes.h"
#include "kernel/rpc_metrics.h"

namespace telekern::kernel {

// What a local call comes with, as the gRPC call would carry it.
struct LocalCredentials {
  std::string_view api_key;        // X-API-Key
  std::string_view authorization;  // Authorization
  std::string_view client_address;
};

class LocalCalls {
 public:
  LocalCalls(const DirectRoutes& routes, const auth::CallGate& gate, RpcMetrics& metrics);
  ~LocalCalls();
  LocalCalls(const LocalCalls&) = delete;
  LocalCalls& operator=(const LocalCalls&) = delete;

  // Calls `path` ("/pkg.Service/Method") with `request`, filling `response`
  // (a message of the method's output type), and waits for its status;
  // nullopt, with nothing run, when no module instance serves that method
  // locally now (make a gRPC call instead). Past `timeout` the status is
  // DEADLINE_EXCEEDED: the handler may still finish later, and the call keeps
  // both messages until it has.
  std::optional<grpc::Status> call(std::string_view path, const LocalCredentials& credentials,
                                   std::shared_ptr<const google::protobuf::Message> request,
                                   std::shared_ptr<google::protobuf::Message> response,
                                   std::chrono::milliseconds timeout);

 private:
  struct Call;
  // Keeps a call whose caller stopped waiting until its handler has answered.
  void keep_abandoned(std::unique_ptr<Call> call);
  // Frees abandoned calls whose handlers have answered since.
  void sweep();

  const DirectRoutes& routes_;
  const auth::CallGate& gate_;
  RpcMetrics& metrics_;
  std::mutex mutex_;
  std::list<std::unique_ptr<Call>> abandoned_;  // timed out, handler still running
  std::atomic<size_t> abandoned_count_{0};
};

}  // namespace telekern::kernel
