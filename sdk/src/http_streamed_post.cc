#include "telekern/http_streamed_post.h"

#include <httplib.h>

namespace telekern {

absl::StatusOr<std::unique_ptr<HttpStreamedPost>> HttpStreamedPost::open(
    const HttpWriterOptions& options, std::string path_and_query, std::string content_type) {
  const std::string& url = options.base_url;
  bool http = url.rfind("http://", 0) == 0;
  bool https = url.rfind("https://", 0) == 0;
  size_t host_start = http ? 7 : 8;
  if ((!http && !https) || url.size() <= host_start ||
      url.find('/', host_start) != std::string::npos)
    return absl::InvalidArgumentError("'" + url +
                                      "' is not a base URL; use http://host:port (no path)");
  std::unique_ptr<HttpStreamedPost> post(
      new HttpStreamedPost(options, std::move(path_and_query), std::move(content_type)));
  post->thread_ = std::thread([raw = post.get()] { raw->run(); });
  return post;
}

HttpStreamedPost::HttpStreamedPost(const HttpWriterOptions& options, std::string path_and_query,
                                   std::string content_type)
    : options_(options), path_(std::move(path_and_query)), content_type_(std::move(content_type)) {}

HttpStreamedPost::~HttpStreamedPost() {
  {
    std::lock_guard lock(mutex_);
    ended_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void HttpStreamedPost::run() {
  httplib::Client client(options_.base_url);
  client.set_keep_alive(false);
  client.set_tcp_nodelay(true);
  auto seconds = [](std::chrono::milliseconds ms) {
    return static_cast<time_t>(ms.count() / 1000);
  };
  auto micros = [](std::chrono::milliseconds ms) {
    return static_cast<time_t>((ms.count() % 1000) * 1000);
  };
  client.set_connection_timeout(seconds(options_.connect_timeout),
                                micros(options_.connect_timeout));
  client.set_read_timeout(seconds(options_.request_timeout), micros(options_.request_timeout));
  client.set_write_timeout(seconds(options_.request_timeout), micros(options_.request_timeout));
  if (!options_.basic_auth_user.empty())
    client.set_basic_auth(options_.basic_auth_user, options_.basic_auth_password);
  httplib::Headers headers;
  for (const auto& [name, value] : options_.headers) headers.emplace(name, value);
  // Each call sends one queued chunk, or the end of the body; it waits while
  // nothing is queued (an empty write would end the body early).
  auto provider = [this](size_t, httplib::DataSink& sink) {
    std::unique_lock lock(mutex_);
    wake_.wait(lock, [&] { return !pending_.empty() || ended_; });
    if (pending_.empty()) {
      lock.unlock();
      sink.done();
      return true;
    }
    std::string chunk = std::move(pending_.front());
    pending_.pop_front();
    lock.unlock();
    return sink.write(chunk.data(), chunk.size());
  };
  httplib::Result result = client.Post(path_, headers, provider, content_type_);
  std::string where = options_.base_url + path_.substr(0, path_.find('?'));
  absl::StatusOr<HttpReply> outcome;
  if (!result) {
    outcome = absl::UnavailableError(where + ": " + httplib::to_string(result.error()) +
                                     " (streamed request); is the server running?");
  } else {
    HttpReply reply{result->status, result->body};
    auto status = http_reply_status(where, reply);
    if (status.ok())
      outcome = std::move(reply);
    else
      outcome = status;
  }
  std::lock_guard lock(mutex_);
  result_ = std::move(outcome);
  done_ = true;
  pending_.clear();
  wake_.notify_all();
}

bool HttpStreamedPost::write(std::string_view bytes) {
  if (bytes.empty()) return !failed();
  {
    std::lock_guard lock(mutex_);
    if (done_ || ended_) return false;
    pending_.emplace_back(bytes);
    bytes_ += bytes.size();
  }
  wake_.notify_all();
  return true;
}

bool HttpStreamedPost::failed() const {
  std::lock_guard lock(mutex_);
  return done_;  // done before the body ended: the request broke off
}

size_t HttpStreamedPost::bytes_written() const {
  std::lock_guard lock(mutex_);
  return bytes_;
}

absl::StatusOr<HttpReply> HttpStreamedPost::finish() {
  {
    std::lock_guard lock(mutex_);
    ended_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
  std::lock_guard lock(mutex_);
  return result_;
}

}  // namespace telekern
