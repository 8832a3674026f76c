// One gRPC server serving a fixed set of services. gRPC servers cannot add
// services after start, so the kernel changes what it serves by starting a new
// generation on the same port (SO_REUSEPORT) and then draining the old one.
#pragma once

#include <absl/status/statusor.h>
#include <grpcpp/generic/async_generic_service.h>
#include <grpc/grpc.h>
#include <grpcpp/server.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "kernel/auth/call_gate.h"
#include "kernel/rpc_metrics.h"
#include "telekern/module.h"

namespace telekern::kernel {

struct TlsSettings {
  std::string cert_file;
  std::string key_file;
  std::string ca_file;  // when set, clients must present a certificate signed by it
  bool enabled() const { return !cert_file.empty(); }
};

struct GenerationSpec {
  uint64_t number = 0;
  std::string address;  // host:port; port 0 picks one (first generation only)
  TlsSettings tls;
  std::vector<ServiceBinding> services;  // kernel's own and every running module's
  std::shared_ptr<auth::CallGate> gate;
  RpcMetrics* metrics = nullptr;
};

class ServerGeneration {
 public:
  // Builds and starts the server; the error says why it could not listen.
  static absl::StatusOr<std::unique_ptr<ServerGeneration>> start(GenerationSpec spec);
  ~ServerGeneration();

  uint64_t number() const { return spec_.number; }
  int port() const { return port_; }
  auth::CallGate& gate() const { return *spec_.gate; }
  // Marks each service and the server as a whole for grpc.health.v1.
  void set_health(const std::string& service, bool serving);
  // Stops accepting and sends GOAWAY at once, without waiting, so clients move
  // to the next generation before the caller replies to anyone.
  void begin_drain();
  // Stops accepting, lets in-flight calls finish until the deadline, then
  // cancels the rest. Safe to call twice.
  void drain(std::chrono::milliseconds deadline);

 private:
  explicit ServerGeneration(GenerationSpec spec);
  GenerationSpec spec_;
  std::unique_ptr<grpc::CallbackGenericService> fallback_;
  std::vector<std::unique_ptr<grpc::Service>> own_services_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  bool drained_ = false;
  grpc_completion_queue* shutdown_queue_ = nullptr;  // core queue for begin_drain()
};

}  // namespace telekern::kernel
