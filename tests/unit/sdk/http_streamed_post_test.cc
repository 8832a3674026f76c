// HttpStreamedPost against a local cpp-httplib server: the body written in
// pieces arrives whole as one chunked request, the server's answer decides
// the result, and a server that is gone makes finish() UNAVAILABLE.
#include "telekern/http_streamed_post.h"

#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>
#include <thread>

namespace telekern {
namespace {

class LocalServer {
 public:
  LocalServer() {
    server_.Post("/insert", [this](const httplib::Request& request, httplib::Response& response) {
      body_ = request.body;
      chunked_ = request.get_header_value("Transfer-Encoding") == "chunked";
      response.status = 200;
      response.set_content("Ok.", "text/plain");
    });
    server_.Post("/refuse", [](const httplib::Request&, httplib::Response& response) {
      response.status = 500;
      response.set_content("Code: 60, Table default.x doesn't exist", "text/plain");
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    while (!server_.is_running()) std::this_thread::yield();
  }
  ~LocalServer() {
    server_.stop();
    thread_.join();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::string body_;
  bool chunked_ = false;

 private:
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
};

HttpWriterOptions options_for(const std::string& url) {
  HttpWriterOptions options;
  options.base_url = url;
  options.connect_timeout = std::chrono::milliseconds(500);
  options.request_timeout = std::chrono::milliseconds(5000);
  return options;
}

TEST(HttpStreamedPost, PiecesArriveAsOneChunkedBody) {
  LocalServer server;
  auto post = HttpStreamedPost::open(options_for(server.url()), "/insert?query=x", "text/plain");
  ASSERT_TRUE(post.ok()) << post.status();
  std::string expected;
  for (int i = 0; i < 200; ++i) {
    std::string piece = "row " + std::to_string(i) + "\n";
    expected += piece;
    ASSERT_TRUE((*post)->write(piece));
  }
  EXPECT_TRUE((*post)->write(""));  // an empty piece neither ends nor breaks the body
  EXPECT_EQ((*post)->bytes_written(), expected.size());
  auto reply = (*post)->finish();
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(reply->status, 200);
  EXPECT_EQ(reply->body, "Ok.");
  EXPECT_TRUE(server.chunked_);
  EXPECT_EQ(server.body_, expected);
}

TEST(HttpStreamedPost, TheServersRefusalIsTheResult) {
  LocalServer server;
  auto post = HttpStreamedPost::open(options_for(server.url()), "/refuse", "text/plain");
  ASSERT_TRUE(post.ok());
  (*post)->write("a row\n");
  auto reply = (*post)->finish();
  ASSERT_FALSE(reply.ok());
  EXPECT_TRUE(absl::IsUnavailable(reply.status())) << reply.status();
  EXPECT_NE(reply.status().message().find("doesn't exist"), std::string::npos) << reply.status();
}

TEST(HttpStreamedPost, NoServerFailsAndSaysSo) {
  int port = 0;
  {
    LocalServer gone;  // a port that was just free
    port = std::stoi(gone.url().substr(gone.url().rfind(':') + 1));
  }
  auto post = HttpStreamedPost::open(options_for("http://127.0.0.1:" + std::to_string(port)),
                                     "/insert", "text/plain");
  ASSERT_TRUE(post.ok());
  (*post)->write("a row\n");
  auto reply = (*post)->finish();
  ASSERT_FALSE(reply.ok());
  EXPECT_TRUE(absl::IsUnavailable(reply.status())) << reply.status();
  EXPECT_TRUE((*post)->failed());
  EXPECT_FALSE((*post)->write("more"));
}

TEST(HttpStreamedPost, MalformedBaseUrlIsRefused) {
  auto post = HttpStreamedPost::open(options_for("localhost:8123"), "/", "text/plain");
  EXPECT_TRUE(absl::IsInvalidArgument(post.status())) << post.status();
}

}  // namespace
}  // namespace telekern
