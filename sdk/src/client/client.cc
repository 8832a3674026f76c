// telekern::Client: one channel from make_channel (channel.h) whose
// credentials header follows set_token().
#include "telekern/client.h"

#include <cstdlib>
#include <thread>

#include "grpc/health/v1/health.grpc.pb.h"
#include "telekern/channel.h"
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

  ChannelOptions channel;
  channel.target = options_.target;
  channel.tls = options_.tls;
  channel.ca_file = options_.ca_file;
  channel.cert_file = options_.cert_file;
  channel.key_file = options_.key_file;
  channel.credentials = [credentials = credentials_] { return credentials->header(); };
  channel.max_attempts = options_.max_attempts;
  auto made = make_channel(channel);
  if (made.ok()) {
    channel_ = std::move(*made);
  } else {
    // Calls fail with the reason (an unreadable TLS file) instead of falling
    // back to a channel with other credentials than asked for.
    status_ = made.status();
    channel.tls = false;
    channel.target = "unix:/nonexistent/telekern-client-misconfigured";
    channel_ = *make_channel(channel);
  }
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
  if (!status_.ok()) return status_;
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
