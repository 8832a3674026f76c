#include "telekern/http_writer.h"

#include <httplib.h>

#include <condition_variable>

namespace telekern {

absl::StatusOr<std::unique_ptr<HttpWriter>> HttpWriter::create(HttpWriterOptions options) {
  const std::string& url = options.base_url;
  bool http = url.rfind("http://", 0) == 0;
  bool https = url.rfind("https://", 0) == 0;
  size_t host_start = http ? 7 : 8;
  if ((!http && !https) || url.size() <= host_start ||
      url.find('/', host_start) != std::string::npos) {
    return absl::InvalidArgumentError("'" + url +
                                      "' is not a base URL; use http://host:port (no path)");
  }
  return std::unique_ptr<HttpWriter>(new HttpWriter(std::move(options)));
}

HttpWriter::HttpWriter(HttpWriterOptions options)
    : options_(std::move(options)),
      breaker_(options_.base_url, options_.breaker_failures, options_.breaker_open_for) {}

HttpWriter::~HttpWriter() = default;

std::unique_ptr<httplib::Client> HttpWriter::acquire() {
  {
    std::lock_guard lock(mutex_);
    if (!idle_.empty()) {
      auto client = std::move(idle_.back());
      idle_.pop_back();
      return client;
    }
  }
  auto client = std::make_unique<httplib::Client>(options_.base_url);
  client->set_keep_alive(true);
  client->set_tcp_nodelay(true);
  auto seconds = [](std::chrono::milliseconds ms) {
    return static_cast<time_t>(ms.count() / 1000);
  };
  auto micros = [](std::chrono::milliseconds ms) {
    return static_cast<time_t>((ms.count() % 1000) * 1000);
  };
  client->set_connection_timeout(seconds(options_.connect_timeout),
                                 micros(options_.connect_timeout));
  client->set_read_timeout(seconds(options_.request_timeout), micros(options_.request_timeout));
  client->set_write_timeout(seconds(options_.request_timeout), micros(options_.request_timeout));
  if (!options_.basic_auth_user.empty())
    client->set_basic_auth(options_.basic_auth_user, options_.basic_auth_password);
  httplib::Headers headers;
  for (const auto& [name, value] : options_.headers) headers.emplace(name, value);
  client->set_default_headers(std::move(headers));
  return client;
}

void HttpWriter::release(std::unique_ptr<httplib::Client> client) {
  std::lock_guard lock(mutex_);
  if (idle_.size() < options_.max_idle_connections) idle_.push_back(std::move(client));
}

absl::StatusOr<HttpReply> HttpWriter::send(bool post, const std::string& path_and_query,
                                           const std::string& body,
                                           const std::string& content_type) {
  auto client = acquire();
  httplib::Result result =
      post ? client->Post(path_and_query, body, content_type) : client->Get(path_and_query);
  std::string where = options_.base_url + path_and_query.substr(0, path_and_query.find('?'));
  if (!result) {
    // The connection is in an unknown state: drop it.
    return absl::UnavailableError(where + ": " + httplib::to_string(result.error()) +
                                  "; is the server running?");
  }
  HttpReply reply{result->status, result->body};
  release(std::move(client));
  auto status = http_reply_status(where, reply);
  if (!status.ok()) return status;
  return reply;
}

absl::Status http_reply_status(const std::string& where, const HttpReply& reply) {
  if (reply.status >= 200 && reply.status < 300) return absl::OkStatus();
  std::string quoted = reply.body.substr(0, 300);
  while (!quoted.empty() && (quoted.back() == '\n' || quoted.back() == '\r')) quoted.pop_back();
  std::string message = where + " answered HTTP " + std::to_string(reply.status) + ": " + quoted;
  if (reply.status >= 500) return absl::UnavailableError(message);
  if (reply.status == 429) return absl::ResourceExhaustedError(message);
  if (reply.status == 401 || reply.status == 403) return absl::PermissionDeniedError(message);
  return absl::InvalidArgumentError(message);
}

absl::StatusOr<HttpReply> HttpWriter::get(const std::string& path_and_query) {
  return send(false, path_and_query, {}, {});
}

absl::StatusOr<HttpReply> HttpWriter::post(const std::string& path_and_query,
                                           const std::string& body,
                                           const std::string& content_type) {
  return send(true, path_and_query, body, content_type);
}

absl::StatusOr<HttpReply> HttpWriter::post_with_retry(
    const std::string& path_and_query, const std::string& body, const std::string& content_type,
    std::stop_token stop, const std::function<void(int, const absl::Status&)>& on_retry) {
  Backoff backoff(options_.backoff);
  HttpReply reply;
  auto status = retry(
      [&]() -> absl::Status {
        auto allowed = breaker_.allow();
        if (!allowed.ok()) return allowed;
        auto result = post(path_and_query, body, content_type);
        if (result.ok()) {
          breaker_.record_success();
          reply = std::move(*result);
          return absl::OkStatus();
        }
        // A refused request (bad data) says nothing about the store's health.
        if (is_retryable(result.status())) {
          breaker_.record_failure();
        } else {
          breaker_.record_success();
        }
        return result.status();
      },
      backoff, stop,
      [&](int attempt, const absl::Status& failure) {
        retries_.fetch_add(1, std::memory_order_relaxed);
        if (on_retry) on_retry(attempt, failure);
      });
  if (!status.ok()) return status;
  return reply;
}

}  // namespace telekern
