// The daemon's one gRPC server on the public address. It never restarts: the
// kernel's own services are registered directly, the unary methods of the
// modules loaded at start through DirectRoutes, and everything else reaches
// modules through the module router (a generic service), because gRPC servers
// cannot add services after start.
#pragma once

#include <absl/status/statusor.h>
#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/server.h>

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "kernel/auth/call_gate.h"
#include "kernel/reflection_service.h"
#include "kernel/rpc_metrics.h"
#include "telekern/module.h"

namespace telekern::kernel {

struct TlsSettings {
  std::string cert_file;
  std::string key_file;
  std::string ca_file;  // when set, clients must present a certificate signed by it
  bool enabled() const { return !cert_file.empty(); }
};

struct PublicServerSpec {
  std::string address;  // host:port; port 0 picks one
  TlsSettings tls;
  std::vector<ServiceBinding> services;  // the kernel's own
  grpc::Service* direct_routes = nullptr;
  grpc::CallbackGenericService* router = nullptr;
  ServiceLister list_services;  // for reflection
  std::shared_ptr<auth::CallGate> gate;
  RpcMetrics* metrics = nullptr;
};

class PublicServer {
 public:
  // Builds and starts the server; the error says why it could not listen.
  static absl::StatusOr<std::unique_ptr<PublicServer>> start(PublicServerSpec spec);
  ~PublicServer();

  int port() const { return port_; }
  // A channel into this server that skips the network (and the call gate).
  std::shared_ptr<grpc::Channel> in_process_channel(
      std::vector<std::unique_ptr<grpc::experimental::ClientInterceptorFactoryInterface>>
          interceptors);
  auth::CallGate& gate() const { return *spec_.gate; }
  // Marks each service and the server as a whole for grpc.health.v1.
  void set_health(const std::string& service, bool serving);
  // Stops accepting, lets in-flight calls finish until the deadline, then
  // cancels the rest. Safe to call twice.
  void drain(std::chrono::milliseconds deadline);

 private:
  explicit PublicServer(PublicServerSpec spec);
  PublicServerSpec spec_;
  std::vector<std::unique_ptr<grpc::Service>> own_services_;
  std::unique_ptr<grpc::Server> server_;
  std::mutex health_mutex_;
  int port_ = 0;
  bool drained_ = false;
};

}  // namespace telekern::kernel
