// A client for stores spoken to over HTTP (InfluxDB's /write and /query,
// ClickHouse's HTTP interface, ...): a pool of keep-alive connections to one
// base URL, replies mapped to absl::Status, and writes retried with
// exponential backoff and full jitter behind a circuit breaker, so a caller
// that must not lose data retries until the store is back without hammering it.
#pragma once

#include <absl/status/status.h>
#include <absl/status/statusor.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <stop_token>
#include <string>
#include <utility>
#include <vector>

#include "telekern/retry.h"

namespace httplib {
class Client;
}

namespace telekern {

struct HttpWriterOptions {
  std::string base_url;  // "http://host:port"
  std::chrono::milliseconds connect_timeout{2000};
  std::chrono::milliseconds request_timeout{30000};
  size_t max_idle_connections = 8;  // kept open between requests
  BackoffPolicy backoff{std::chrono::milliseconds(100), std::chrono::seconds(5), 2.0, 0};
  int breaker_failures = 5;  // consecutive failures that open the breaker
  std::chrono::milliseconds breaker_open_for{std::chrono::seconds(5)};
  std::vector<std::pair<std::string, std::string>> headers;  // sent with every request
  std::string basic_auth_user;                               // HTTP basic auth when not empty
  std::string basic_auth_password;
};

struct HttpReply {
  int status = 0;
  std::string body;
};

// OK for a 2xx reply; otherwise the status HttpWriter gives that reply
// (5xx UNAVAILABLE, 429 RESOURCE_EXHAUSTED, ...), naming `where` and quoting the body.
absl::Status http_reply_status(const std::string& where, const HttpReply& reply);

class HttpWriter {
 public:
  // INVALID_ARGUMENT when base_url is not http://host[:port] or https://...
  static absl::StatusOr<std::unique_ptr<HttpWriter>> create(HttpWriterOptions options);
  ~HttpWriter();
  HttpWriter(const HttpWriter&) = delete;
  HttpWriter& operator=(const HttpWriter&) = delete;

  // One request. A connection failure or 5xx is UNAVAILABLE, 429 is
  // RESOURCE_EXHAUSTED, 401/403 PERMISSION_DENIED, any other 4xx
  // INVALID_ARGUMENT; each message names the URL and quotes the reply.
  absl::StatusOr<HttpReply> get(const std::string& path_and_query);
  absl::StatusOr<HttpReply> post(const std::string& path_and_query, const std::string& body,
                                 const std::string& content_type);

  // post() through the breaker, retried while the failure is retryable
  // (backoff.max_attempts bounds it; 0 = until `stop`). `on_retry` sees each
  // failure before the wait.
  absl::StatusOr<HttpReply> post_with_retry(
      const std::string& path_and_query, const std::string& body, const std::string& content_type,
      std::stop_token stop = {},
      const std::function<void(int attempt, const absl::Status&)>& on_retry = nullptr);

  CircuitBreaker::State breaker_state() const { return breaker_.state(); }
  uint64_t retries() const { return retries_.load(std::memory_order_relaxed); }
  const std::string& base_url() const { return options_.base_url; }

 private:
  explicit HttpWriter(HttpWriterOptions options);
  std::unique_ptr<httplib::Client> acquire();
  void release(std::unique_ptr<httplib::Client> client);
  absl::StatusOr<HttpReply> send(bool post, const std::string& path_and_query,
                                 const std::string& body, const std::string& content_type);

  HttpWriterOptions options_;
  CircuitBreaker breaker_;
  std::atomic<uint64_t> retries_{0};
  std::mutex mutex_;
  std::vector<std::unique_ptr<httplib::Client>> idle_;
};

}  // namespace telekern
