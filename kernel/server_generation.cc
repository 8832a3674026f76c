#include "kernel/server_generation.h"

#include <grpc/grpc.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server_builder.h>

#include <fstream>
#include <sstream>

#include "kernel/reflection_v1.h"
#include "telekern/strings.h"

namespace telekern::kernel {
namespace {

// Answers calls to services nobody serves with a message that says what to do.
class UnknownServiceFallback final : public grpc::CallbackGenericService {
 public:
  grpc::ServerGenericBidiReactor* CreateReactor(grpc::GenericCallbackServerContext* context) override {
    class Reactor final : public grpc::ServerGenericBidiReactor {
     public:
      explicit Reactor(const std::string& method) {
        std::string service = method.substr(method.empty() ? 0 : 1);
        service = service.substr(0, service.find('/'));
        Finish(grpc::Status(grpc::StatusCode::UNIMPLEMENTED,
                            str_cat("service '", service,
                                         "' is not served here; `modules list` shows what is "
                                         "loaded and `modules load NAME` loads a module")));
      }
      void OnDone() override { delete this; }
    };
    return new Reactor(context->method());
  }
};

absl::StatusOr<std::string> read_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(str_cat("cannot read TLS file ", path));
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> make_credentials(const TlsSettings& tls) {
  if (!tls.enabled()) {
    // xDS credentials with an insecure fallback behave as plaintext but, unlike
    // InsecureServerCredentials in gRPC 1.51, accept an AuthMetadataProcessor.
    return grpc::XdsServerCredentials(grpc::InsecureServerCredentials());
  }
  auto cert = read_file(tls.cert_file);
  if (!cert.ok()) return cert.status();
  auto key = read_file(tls.key_file);
  if (!key.ok()) return key.status();
  grpc::SslServerCredentialsOptions options(
      tls.ca_file.empty() ? GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE
                          : GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  if (!tls.ca_file.empty()) {
    auto ca = read_file(tls.ca_file);
    if (!ca.ok()) return ca.status();
    options.pem_root_certs = *ca;
  }
  options.pem_key_cert_pairs.push_back({*key, *cert});
  return grpc::SslServerCredentials(options);
}

}  // namespace

ServerGeneration::ServerGeneration(GenerationSpec spec) : spec_(std::move(spec)) {}

absl::StatusOr<std::unique_ptr<ServerGeneration>> ServerGeneration::start(GenerationSpec spec) {
  auto credentials = make_credentials(spec.tls);
  if (!credentials.ok()) return credentials.status();
  (*credentials)->SetAuthMetadataProcessor(spec.gate);

  std::unique_ptr<ServerGeneration> generation(new ServerGeneration(std::move(spec)));
  grpc::ServerBuilder builder;
  builder.AddListeningPort(generation->spec_.address, *credentials, &generation->port_);
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 1);
  builder.SetMaxReceiveMessageSize(64 * 1024 * 1024);
  for (const auto& binding : generation->spec_.services) builder.RegisterService(binding.service);
  std::vector<std::string> names;
  for (const auto& binding : generation->spec_.services) names.push_back(binding.name);
  names.insert(names.end(), {"grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection",
                             "grpc.reflection.v1alpha.ServerReflection"});
  generation->own_services_.push_back(make_reflection_v1_service(std::move(names)));
  for (const auto& service : generation->own_services_) builder.RegisterService(service.get());
  generation->fallback_ = std::make_unique<UnknownServiceFallback>();
  builder.RegisterCallbackGenericService(generation->fallback_.get());
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> interceptors;
  interceptors.push_back(generation->spec_.metrics->interceptor_factory());
  builder.experimental().SetInterceptorCreators(std::move(interceptors));

  generation->server_ = builder.BuildAndStart();
  if (!generation->server_ || generation->port_ == 0) {
    return absl::UnavailableError(str_cat(
        "cannot listen on ", generation->spec_.address,
        ": address in use by another program or not local; pick another with --listen"));
  }
  if (auto* health = generation->server_->GetHealthCheckService()) {
    health->SetServingStatus(true);
    for (const auto& binding : generation->spec_.services) {
      health->SetServingStatus(binding.name, true);
    }
  }
  return generation;
}

ServerGeneration::~ServerGeneration() { drain(std::chrono::milliseconds(0)); }

void ServerGeneration::set_health(const std::string& service, bool serving) {
  if (drained_ || !server_) return;
  if (auto* health = server_->GetHealthCheckService()) {
    if (service.empty()) {
      health->SetServingStatus(serving);
    } else {
      health->SetServingStatus(service, serving);
    }
  }
}

void ServerGeneration::begin_drain() {
  if (drained_ || !server_ || shutdown_queue_) return;
  shutdown_queue_ = grpc_completion_queue_create_for_next(nullptr);
  // Core allows several shutdown requests; Shutdown() in drain() makes its own.
  grpc_server_shutdown_and_notify(server_->c_server(), shutdown_queue_, nullptr);
}

void ServerGeneration::drain(std::chrono::milliseconds deadline) {
  if (drained_ || !server_) return;
  drained_ = true;
  server_->Shutdown(std::chrono::system_clock::now() + deadline);
  server_->Wait();
  if (shutdown_queue_) {
    grpc_completion_queue_shutdown(shutdown_queue_);
    while (grpc_completion_queue_next(shutdown_queue_, gpr_inf_future(GPR_CLOCK_REALTIME), nullptr)
               .type != GRPC_QUEUE_SHUTDOWN) {
    }
    grpc_completion_queue_destroy(shutdown_queue_);
    shutdown_queue_ = nullptr;
  }
}

}  // namespace telekern::kernel
