// The daemon's one gRPC server on the public address. It never restarts:
// the unary methods of the kernel's services and of the modules loaded at
// start are registered through DirectRoutes, everything else reaches modules
// through the module router (a generic service), because gRPC servers cannot
// add services after start. Both pass every call through the call gate;
// health and reflection, public, are registered as they are.
#pragma once

#include <absl/status/statusor.h>
#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/server.h>

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

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
  std::vector<std::string> health_names;  // marked SERVING at start (the kernel's services)
  grpc::Service* direct_routes = nullptr;
  grpc::CallbackGenericService* router = nullptr;
  ServiceLister list_services;  // for reflection
  RpcMetrics* metrics = nullptr;
};

class PublicServer {
 public:
  // Builds and starts the server; the error says why it could not listen.
  static absl::StatusOr<std::unique_ptr<PublicServer>> start(PublicServerSpec spec);
  ~PublicServer();

  int port() const { return port_; }
  // A channel into this server that skips the network; its calls still pass
  // the call gate, so `interceptors` add whatever credentials they need.
  std::shared_ptr<grpc::Channel> in_process_channel(
      std::vector<std::unique_ptr<grpc::experimental::ClientInterceptorFactoryInterface>>
          interceptors);
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
