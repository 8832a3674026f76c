#include "kernel/routing/public_server.h"

#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server_builder.h>

#include <fstream>
#include <sstream>

#include "telekern/strings.h"

namespace telekern::kernel {
namespace {

absl::StatusOr<std::string> read_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(str_cat("cannot read TLS file ", path));
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> make_credentials(const TlsSettings& tls) {
  if (!tls.enabled()) return grpc::InsecureServerCredentials();
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

PublicServer::PublicServer(PublicServerSpec spec) : spec_(std::move(spec)) {}

absl::StatusOr<std::unique_ptr<PublicServer>> PublicServer::start(PublicServerSpec spec) {
  auto credentials = make_credentials(spec.tls);
  if (!credentials.ok()) return credentials.status();

  std::unique_ptr<PublicServer> server(new PublicServer(std::move(spec)));
  grpc::ServerBuilder builder;
  builder.AddListeningPort(server->spec_.address, *credentials, &server->port_);
  builder.SetMaxReceiveMessageSize(64 * 1024 * 1024);
  // Nothing here reads channelz; without it each call skips its bookkeeping.
  builder.AddChannelArgument(GRPC_ARG_ENABLE_CHANNELZ, 0);
  server->own_services_.push_back(make_reflection_v1_service(server->spec_.list_services));
  server->own_services_.push_back(make_reflection_v1alpha_service(server->spec_.list_services));
  for (const auto& service : server->own_services_) builder.RegisterService(service.get());
  if (server->spec_.direct_routes) builder.RegisterService(server->spec_.direct_routes);
  if (server->spec_.router) builder.RegisterCallbackGenericService(server->spec_.router);
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> interceptors;
  interceptors.push_back(server->spec_.metrics->interceptor_factory());
  builder.experimental().SetInterceptorCreators(std::move(interceptors));

  server->server_ = builder.BuildAndStart();
  if (!server->server_ || server->port_ == 0) {
    return absl::UnavailableError(
        str_cat("cannot listen on ", server->spec_.address,
                ": address in use by another program or not local; pick another with --listen"));
  }
  if (auto* health = server->server_->GetHealthCheckService()) {
    for (const auto& name : server->spec_.health_names) health->SetServingStatus(name, true);
    health->SetServingStatus(true);
  }
  return server;
}

PublicServer::~PublicServer() { drain(std::chrono::milliseconds(0)); }

std::shared_ptr<grpc::Channel> PublicServer::in_process_channel(
    std::vector<std::unique_ptr<grpc::experimental::ClientInterceptorFactoryInterface>>
        interceptors) {
  grpc::ChannelArguments arguments;
  arguments.SetMaxReceiveMessageSize(-1);
  // As on the server: no channelz bookkeeping on every call (the gateway's
  // calls and the modules' calls to each other come through here).
  arguments.SetInt(GRPC_ARG_ENABLE_CHANNELZ, 0);
  return server_->experimental().InProcessChannelWithInterceptors(arguments,
                                                                  std::move(interceptors));
}

void PublicServer::set_health(const std::string& service, bool serving) {
  std::lock_guard lock(health_mutex_);
  if (drained_ || !server_) return;
  if (auto* health = server_->GetHealthCheckService()) {
    if (service.empty()) {
      health->SetServingStatus(serving);
    } else {
      health->SetServingStatus(service, serving);
    }
  }
}

void PublicServer::drain(std::chrono::milliseconds deadline) {
  {
    std::lock_guard lock(health_mutex_);
    if (drained_ || !server_) return;
    drained_ = true;
  }
  server_->Shutdown(std::chrono::system_clock::now() + deadline);
  server_->Wait();
}

}  // namespace telekern::kernel
