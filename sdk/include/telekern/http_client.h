// A small HTTP/1.1 client for stores with an HTTP API (ClickHouse, InfluxDB,
// Prometheus): one base URL, timeouts, basic auth, and status mapping that
// names the endpoint and the server's answer. Retries and circuit breaking
// are the caller's (telekern/retry.h), so at-least-once writers decide when
// to give up; send_with_retry() combines them for the common case.
#pragma once

#include <absl/status/status.h>
#include <absl/status/statusor.h>

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <stop_token>
#include <string>

#include "telekern/retry.h"

namespace telekern::http {

struct ClientOptions {
  std::string host = "127.0.0.1";
  int port = 80;
  bool secure = false;  // https (needs OpenSSL support in cpp-httplib)
  std::string username;
  std::string password;
  std::chrono::milliseconds connect_timeout{2000};
  std::chrono::milliseconds read_timeout{30000};
};

struct Response {
  int status = 0;
  std::string body;
};

class Client {
 public:
  explicit Client(ClientOptions options);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // POST `path` (with query) and `body`; a non-2xx answer or a transport
  // failure is an error: UNAVAILABLE for connection failures and 5xx,
  // INVALID_ARGUMENT for 4xx, each naming the URL and the server's message.
  absl::StatusOr<Response> post(const std::string& path, const std::string& body,
                                const std::string& content_type = "text/plain");
  absl::StatusOr<Response> get(const std::string& path);

  // "http://host:port", for messages.
  std::string base_url() const;

 private:
  struct State;
  ClientOptions options_;
  std::unique_ptr<State> state_;
};

// Percent-encodes a query parameter value.
std::string url_encode(const std::string& value);

// Runs `attempt` with backoff until it succeeds, fails with a non-retryable
// status, or `stop` fires; `breaker` (optional) refuses calls while open and
// the wait continues until it lets a trial through.
absl::Status send_with_retry(const std::function<absl::Status()>& attempt, Backoff& backoff,
                             CircuitBreaker* breaker, std::stop_token stop,
                             const std::function<void(int, const absl::Status&)>& on_retry = {});

}  // namespace telekern::http
