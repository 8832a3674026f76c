#include "telekern/channel.h"

#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>

#include <fstream>
#include <sstream>

#include "telekern/strings.h"

namespace telekern {
namespace {

absl::StatusOr<std::string> read_pem(const std::string& path, std::string_view what) {
  std::ifstream in(path);
  if (!in) {
    return absl::InvalidArgumentError(
        str_cat("cannot read the ", what, " file '", path, "'; check the path and permissions"));
  }
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

std::string retry_service_config(int max_attempts) {
  // An empty name entry makes this the default for every service and method.
  return str_cat(R"({"methodConfig":[{"name":[{}],"retryPolicy":{"maxAttempts":)",
                 std::min(max_attempts, 5),
                 R"(,"initialBackoff":"0.1s","maxBackoff":"2s","backoffMultiplier":2,)",
                 R"("retryableStatusCodes":["UNAVAILABLE"]}}]})");
}

}  // namespace

absl::StatusOr<std::shared_ptr<grpc::Channel>> make_channel(const ChannelOptions& options) {
  std::shared_ptr<grpc::ChannelCredentials> transport = grpc::InsecureChannelCredentials();
  if (options.tls) {
    grpc::SslCredentialsOptions ssl;
    const std::pair<const std::string*, std::string*> files[] = {
        {&options.ca_file, &ssl.pem_root_certs},
        {&options.cert_file, &ssl.pem_cert_chain},
        {&options.key_file, &ssl.pem_private_key}};
    const char* names[] = {"CA", "client certificate", "client key"};
    for (size_t i = 0; i < 3; ++i) {
      if (files[i].first->empty()) continue;
      auto pem = read_pem(*files[i].first, names[i]);
      if (!pem.ok()) return pem.status();
      *files[i].second = std::move(*pem);
    }
    transport = grpc::SslCredentials(ssl);
  }
  grpc::ChannelArguments arguments;
  arguments.SetMaxReceiveMessageSize(options.max_receive_bytes);
  if (options.max_attempts >= 2) {
    arguments.SetServiceConfigJSON(retry_service_config(options.max_attempts));
  }
  if (options.keepalive.count() > 0) {
    arguments.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, static_cast<int>(options.keepalive.count()));
    arguments.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS,
                     static_cast<int>(std::max<int64_t>(options.keepalive.count() / 2, 1000)));
    arguments.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  }
  CredentialsHeader header = options.credentials;
  if (!header && !options.token.empty()) {
    header = [value = "Bearer " + options.token] {
      return std::pair<std::string, std::string>{"authorization", value};
    };
  } else if (!header && !options.api_key.empty()) {
    header = [key = options.api_key] {
      return std::pair<std::string, std::string>{"x-api-key", key};
    };
  }
  std::vector<std::unique_ptr<grpc::experimental::ClientInterceptorFactoryInterface>> interceptors;
  if (header) interceptors.push_back(credentials_interceptor(std::move(header)));
  return grpc::experimental::CreateCustomChannelWithInterceptors(
      options.target, transport, arguments, std::move(interceptors));
}

}  // namespace telekern
