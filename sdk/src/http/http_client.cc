#include "telekern/http_client.h"

#include <httplib.h>

#include "telekern/strings.h"

namespace telekern::http {

struct Client::State {
  std::mutex mutex;
  std::unique_ptr<httplib::Client> client;
};

Client::Client(ClientOptions options) : options_(std::move(options)), state_(new State) {}
Client::~Client() = default;

std::string Client::base_url() const {
  return str_cat(options_.secure ? "https://" : "http://", options_.host, ":", options_.port);
}

namespace {

absl::StatusOr<Response> to_response(const httplib::Result& result, const std::string& url) {
  if (!result) {
    return absl::UnavailableError(str_cat(url, ": ", httplib::to_string(result.error()),
                                          "; is the server running and reachable?"));
  }
  Response response{result->status, result->body};
  if (response.status >= 200 && response.status < 300) return response;
  std::string message = response.body.substr(0, 600);
  while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) message.pop_back();
  std::string text = str_cat(url, " answered HTTP ", response.status, ": ", message);
  if (response.status >= 500 || response.status == 429) return absl::UnavailableError(text);
  return absl::InvalidArgumentError(text);
}

}  // namespace

absl::StatusOr<Response> Client::post(const std::string& path, const std::string& body,
                                      const std::string& content_type) {
  std::lock_guard lock(state_->mutex);
  if (!state_->client) {
    state_->client = std::make_unique<httplib::Client>(base_url());
    state_->client->set_connection_timeout(options_.connect_timeout);
    state_->client->set_read_timeout(options_.read_timeout);
    state_->client->set_write_timeout(options_.read_timeout);
    state_->client->set_keep_alive(true);
    if (!options_.username.empty())
      state_->client->set_basic_auth(options_.username, options_.password);
  }
  auto result = state_->client->Post(path, body, content_type);
  auto response = to_response(result, base_url() + path.substr(0, path.find('?')));
  if (!result) state_->client.reset();  // reconnect next time
  return response;
}

absl::StatusOr<Response> Client::get(const std::string& path) {
  std::lock_guard lock(state_->mutex);
  if (!state_->client) {
    state_->client = std::make_unique<httplib::Client>(base_url());
    state_->client->set_connection_timeout(options_.connect_timeout);
    state_->client->set_read_timeout(options_.read_timeout);
    state_->client->set_keep_alive(true);
    if (!options_.username.empty())
      state_->client->set_basic_auth(options_.username, options_.password);
  }
  auto result = state_->client->Get(path);
  auto response = to_response(result, base_url() + path.substr(0, path.find('?')));
  if (!result) state_->client.reset();
  return response;
}

std::string url_encode(const std::string& value) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : value) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

absl::Status send_with_retry(const std::function<absl::Status()>& attempt, Backoff& backoff,
                             CircuitBreaker* breaker, std::stop_token stop,
                             const std::function<void(int, const absl::Status&)>& on_retry) {
  auto guarded = [&]() -> absl::Status {
    if (breaker) {
      if (auto allowed = breaker->allow(); !allowed.ok()) return allowed;
    }
    auto status = attempt();
    if (breaker) {
      if (status.ok() || !is_retryable(status))
        breaker->record_success();
      else
        breaker->record_failure();
    }
    return status;
  };
  return retry(guarded, backoff, stop, on_retry);
}

}  // namespace telekern::http
