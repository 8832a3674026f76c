// HttpWriter against a local cpp-httplib server: status mapping, retries
// until the server answers, no retry for bad requests, the breaker opening.
#include "telekern/http_writer.h"

#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>
#include <thread>

namespace telekern {
namespace {

class LocalServer {
 public:
  LocalServer() {
    server_.Post("/write", [this](const httplib::Request& request, httplib::Response& response) {
      int call = calls_++;
      if (call < failures_) {
        response.status = 503;
        response.set_content("busy", "text/plain");
        return;
      }
      body_ = request.body;
      response.status = 204;
    });
    server_.Post("/bad", [](const httplib::Request&, httplib::Response& response) {
      response.status = 400;
      response.set_content("{\"error\":\"unable to parse 'x'\"}", "application/json");
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    while (!server_.is_running()) std::this_thread::yield();  // listening begins at once
  }
  ~LocalServer() {
    server_.stop();
    thread_.join();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::atomic<int> calls_{0};
  int failures_ = 0;
  std::string body_;

 private:
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
};

HttpWriterOptions fast(const std::string& url) {
  HttpWriterOptions options;
  options.base_url = url;
  options.backoff = {std::chrono::milliseconds(1), std::chrono::milliseconds(5), 2.0, 0};
  options.breaker_failures = 3;
  options.breaker_open_for = std::chrono::milliseconds(20);
  options.connect_timeout = std::chrono::milliseconds(500);
  return options;
}

TEST(HttpWriter, RetriesUntilTheServerTakesTheWrite) {
  LocalServer server;
  server.failures_ = 2;
  auto writer = HttpWriter::create(fast(server.url()));
  ASSERT_TRUE(writer.ok()) << writer.status();
  auto reply = (*writer)->post_with_retry("/write?db=x", "m value=1 1", "text/plain");
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(reply->status, 204);
  EXPECT_EQ(server.calls_.load(), 3);
  EXPECT_EQ((*writer)->retries(), 2u);
  EXPECT_EQ(server.body_, "m value=1 1");
  EXPECT_EQ((*writer)->breaker_state(), CircuitBreaker::State::kClosed);
}

TEST(HttpWriter, BadRequestsAreNotRetriedAndQuoteTheReply) {
  LocalServer server;
  auto writer = HttpWriter::create(fast(server.url()));
  auto reply = (*writer)->post_with_retry("/bad", "x", "text/plain");
  ASSERT_EQ(reply.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(reply.status().message().find("HTTP 400"), std::string::npos) << reply.status();
  EXPECT_NE(reply.status().message().find("unable to parse"), std::string::npos);
  EXPECT_EQ((*writer)->retries(), 0u);
}

TEST(HttpWriter, AnUnreachableServerOpensTheBreaker) {
  int port = 0;
  {
    LocalServer gone;  // take a port, then free it
    port = std::stoi(gone.url().substr(gone.url().rfind(':') + 1));
  }
  auto options = fast("http://127.0.0.1:" + std::to_string(port));
  options.backoff.max_attempts = 5;
  auto writer = HttpWriter::create(options);
  auto reply = (*writer)->post_with_retry("/write", "x", "text/plain");
  EXPECT_EQ(reply.status().code(), absl::StatusCode::kUnavailable) << reply.status();
  EXPECT_NE((*writer)->breaker_state(), CircuitBreaker::State::kClosed);
  EXPECT_EQ((*writer)->retries(), 4u);
}

TEST(HttpWriter, RefusesABaseUrlWithAPath) {
  auto options = fast("http://127.0.0.1:8086/write");
  EXPECT_EQ(HttpWriter::create(options).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(HttpWriter::create(fast("127.0.0.1:8086")).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace telekern
