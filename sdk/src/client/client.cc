// telekern::Client: credentials go in through a client interceptor
// (credentials_interceptor.h); retries come from the service config.
#include "telekern/client.h"

#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/support/client_interceptor.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

#include "grpc/health/v1/health.grpc.pb.h"
#include "telekern/credentials_interceptor.h"
#include "telekern/kernel/v1/kernel.grpc.pb.h"
#include "telekern/strings.h"

namespace telekern {

struct Client::Credentials {
  mutable std::mutex mutex;
  std::string api_key;
  std::string token;

  std::pair<std::string, std::string> header() const {
    std::lock_guard lock(mutex);
    if (!token.empty()) return {"authorization", "Bearer " + token};
    if (!api_key.empty()) return {"x-api-key", api_key};
    return {};
  }
};

namespace {

std::string env_or(const char* name, std::string fallback) {
  const char* value = std::getenv(name);
  return value != nullptr && *value != '\0' ? std::string(value) : fallback;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

std::string service_config(int max_attempts) {
  if (max_attempts < 2) return "";
  // An empty name entry makes this the default for every service and method.
  return str_cat(R"({"methodConfig":[{"name":[{}],"retryPolicy":{"maxAttempts":)",
                 std::min(max_attempts, 5),
                 R"(,"initialBackoff":"0.1s","maxBackoff":"2s","backoffMultiplier":2,)",
                 R"("retryableStatusCodes":["UNAVAILABLE"]}}]})");
}

}  // namespace

ClientOptions ClientOptions::from_environment() {
  ClientOptions options;
  options.target = env_or("TELEKERN_ADDR", "127.0.0.1:7070");
  options.api_key = env_or("TELEKERN_API_KEY", "");
  options.token = env_or("TELEKERN_TOKEN", "");
  return options;
}

Client::Client(ClientOptions options)
    : options_(std::move(options)), credentials_(std::make_shared<Credentials>()) {
  if (options_.target.empty()) options_.target = env_or("TELEKERN_ADDR", "127.0.0.1:7070");
  credentials_->api_key = options_.api_key;
  credentials_->token = options_.token;

  std::shared_ptr<grpc::ChannelCredentials> channel_credentials;
  if (options_.tls) {
    grpc::SslCredentialsOptions ssl;
    if (!options_.ca_file.empty()) ssl.pem_root_certs = read_file(options_.ca_file);
    if (!options_.cert_file.empty()) ssl.pem_cert_chain = read_file(options_.cert_file);
    if (!options_.key_file.empty()) ssl.pem_private_key = read_file(options_.key_file);
    channel_credentials = grpc::SslCredentials(ssl);
  } else {
    channel_credentials = grpc::InsecureChannelCredentials();
  }
  grpc::ChannelArguments arguments;
  std::string config = service_config(options_.max_attempts);
  if (!config.empty()) arguments.SetServiceConfigJSON(config);
  std::vector<std::unique_ptr<grpc::experimental::ClientInterceptorFactoryInterface>> interceptors;
  interceptors.push_back(
      credentials_interceptor([credentials = credentials_] { return credentials->header(); }));
  channel_ = grpc::experimental::CreateCustomChannelWithInterceptors(
      options_.target, channel_credentials, arguments, std::move(interceptors));
}

std::unique_ptr<grpc::ClientContext> Client::context(
    std::optional<std::chrono::milliseconds> deadline) const {
  auto context = std::make_unique<grpc::ClientContext>();
  auto timeout = deadline.value_or(options_.default_deadline);
  if (timeout.count() > 0) context->set_deadline(std::chrono::system_clock::now() + timeout);
  context->set_wait_for_ready(options_.wait_for_ready);
  return context;
}

void Client::set_token(std::string token) {
  std::lock_guard lock(credentials_->mutex);
  credentials_->token = std::move(token);
}

std::string Client::token() const {
  std::lock_guard lock(credentials_->mutex);
  return credentials_->token;
}

absl::StatusOr<std::string> Client::login(const std::string& user, const std::string& password) {
  kernel::v1::LoginRequest request;
  request.set_user(user);
  request.set_password(password);
  kernel::v1::LoginResponse response;
  auto status = stub<kernel::v1::Kernel>()->Login(context().get(), request, &response);
  if (!status.ok()) {
    return absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
  }
  set_token(response.token());
  return response.token();
}

absl::Status Client::wait_until_ready(std::chrono::milliseconds timeout) const {
  auto deadline = std::chrono::system_clock::now() + timeout;
  auto health = stub<grpc::health::v1::Health>();
  grpc::Status last;
  while (std::chrono::system_clock::now() < deadline) {
    grpc::ClientContext context;
    context.set_deadline(
        std::min(deadline, std::chrono::system_clock::now() + std::chrono::seconds(2)));
    context.set_wait_for_ready(true);
    grpc::health::v1::HealthCheckResponse response;
    last = health->Check(&context, {}, &response);
    if (last.ok()) return absl::OkStatus();
    if (last.error_code() != grpc::StatusCode::DEADLINE_EXCEEDED &&
        last.error_code() != grpc::StatusCode::UNAVAILABLE) {
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return absl::UnavailableError(str_cat("telekernd at ", options_.target, " did not answer within ",
                                        timeout.count(), " ms",
                                        last.ok() ? "" : str_cat(": ", last.error_message())));
}

}  // namespace telekern
