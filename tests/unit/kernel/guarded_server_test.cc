// The HTTP endpoint's GuardedServer on a loopback port: keep-alive requests a
// worker serves back to back (pipelined ones in order), connections it hands
// back to the gate (a slow client never holds the only worker), and answers
// whose headers are held for their body (streams still go out as written).
#include "kernel/http/guarded_server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

#include "telekern/strings.h"

namespace telekern::kernel::http {
namespace {

// A GuardedServer answering GET/POST /echo with the `n` query parameter or
// the body, GET /stream with chunks the test releases one by one.
class GuardedServerTest : public ::testing::Test {
 protected:
  void start(ConnectionLimits limits) {
    server_ = std::make_unique<GuardedServer>(limits, metrics_);
    server_->set_tcp_nodelay(true);
    server_->Get("/echo", [](const httplib::Request& request, httplib::Response& response) {
      response.set_content(request.get_param_value("n"), "text/plain");
    });
    server_->Post("/echo", [](const httplib::Request& request, httplib::Response& response) {
      response.set_content(request.body, "text/plain");
    });
    server_->Get("/empty", [](const httplib::Request&, httplib::Response& response) {
      response.status = 204;
    });
    server_->Get("/stream", [this](const httplib::Request&, httplib::Response& response) {
      response.set_chunked_content_provider(
          "text/plain", [this](size_t offset, httplib::DataSink& sink) {
            std::unique_lock lock(mutex_);
            if (!released_.wait_for(lock, std::chrono::seconds(10),
                                    [&] { return chunks_released_ > offset / 6; })) {
              return false;
            }
            if (offset >= 12) {
              sink.done();
              return true;
            }
            return sink.write(offset == 0 ? "chunk1" : "chunk2", 6);
          });
    });
    port_ = server_->bind_to_any_port("127.0.0.1");
    ASSERT_GT(port_, 0);
    thread_ = std::thread([this] { server_->listen_after_bind(); });
    while (!server_->is_running()) std::this_thread::yield();
  }

  void TearDown() override {
    {
      std::lock_guard lock(mutex_);
      chunks_released_ = 100;
    }
    released_.notify_all();
    if (server_) server_->stop();
    if (thread_.joinable()) thread_.join();
    if (server_) server_->shutdown_connections();
  }

  void release_chunk() {
    {
      std::lock_guard lock(mutex_);
      ++chunks_released_;
    }
    released_.notify_all();
  }

  int connect_client() {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in remote{};
    remote.sin_family = AF_INET;
    remote.sin_port = htons(static_cast<uint16_t>(port_));
    inet_pton(AF_INET, "127.0.0.1", &remote.sin_addr);
    timeval timeout{10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
    if (::connect(fd, reinterpret_cast<sockaddr*>(&remote), sizeof(remote)) != 0) {
      ::close(fd);
      return -1;
    }
    fds_.push_back(fd);
    return fd;
  }

  static bool send_text(int fd, const std::string& text) {
    return ::send(fd, text.data(), text.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(text.size());
  }

  // Reads from `fd` into `received` until it holds `needle` (or the peer
  // closes, or SO_RCVTIMEO passes).
  static bool read_until(int fd, std::string& received, std::string_view needle) {
    char buffer[4096];
    while (received.find(needle) == std::string::npos) {
      ssize_t count = ::recv(fd, buffer, sizeof(buffer), 0);
      if (count <= 0) return false;
      received.append(buffer, static_cast<size_t>(count));
    }
    return true;
  }

  // The bodies of the Content-Length responses in `text`, in order.
  static std::vector<std::string> bodies(const std::string& text) {
    std::vector<std::string> found;
    size_t at = 0;
    while ((at = text.find("Content-Length: ", at)) != std::string::npos) {
      size_t length = std::stoul(text.substr(at + 16));
      size_t start = text.find("\r\n\r\n", at) + 4;
      found.push_back(text.substr(start, length));
      at = start + length;
    }
    return found;
  }

  MetricsRegistry metrics_;
  std::unique_ptr<GuardedServer> server_;
  std::thread thread_;
  int port_ = 0;
  std::mutex mutex_;
  std::condition_variable released_;
  size_t chunks_released_ = 0;
  struct Fds {
    std::vector<int> fds;
    void push_back(int fd) { fds.push_back(fd); }
    ~Fds() {
      for (int fd : fds) ::close(fd);
    }
  } fds_;
};

TEST_F(GuardedServerTest, PipelinedKeepAliveRequestsAreAllAnsweredInOrder) {
  start({.workers = 2});
  int fd = connect_client();
  ASSERT_GE(fd, 0);
  // Thirty requests in one write, GETs and POSTs with bodies mixed.
  std::string requests;
  for (int i = 0; i < 30; ++i) {
    if (i % 3 == 0) {
      std::string body = "post-" + std::to_string(i);
      requests += str_cat("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: ", body.size(),
                          "\r\n\r\n", body);
    } else {
      requests += str_cat("GET /echo?n=get-", i, " HTTP/1.1\r\nHost: t\r\n\r\n");
    }
  }
  ASSERT_TRUE(send_text(fd, requests));
  std::string received;
  ASSERT_TRUE(read_until(fd, received, "get-29")) << received;
  auto answers = bodies(received);
  ASSERT_EQ(answers.size(), 30u) << received;
  for (int i = 0; i < 30; ++i) {
    EXPECT_EQ(answers[i], (i % 3 == 0 ? "post-" : "get-") + std::to_string(i)) << i;
  }
}

TEST_F(GuardedServerTest, KeepAliveRequestAfterAPauseIsStillAnswered) {
  // With no linger the worker hands the connection back to the gate as soon
  // as it answered (as it does once a linger ran out); the next request is
  // answered from there.
  start({.workers = 1, .keep_alive_linger = std::chrono::microseconds(0)});
  int fd = connect_client();
  ASSERT_GE(fd, 0);
  std::string received;
  ASSERT_TRUE(send_text(fd, "GET /echo?n=first HTTP/1.1\r\nHost: t\r\n\r\n"));
  ASSERT_TRUE(read_until(fd, received, "first"));
  received.clear();
  ASSERT_TRUE(send_text(fd, "GET /echo?n=second HTTP/1.1\r\nHost: t\r\n\r\n"));
  ASSERT_TRUE(read_until(fd, received, "second")) << received;
}

TEST_F(GuardedServerTest, ASlowNextRequestGoesBackToTheGateAndFreesTheOnlyWorker) {
  // One worker, which would wait a minute for a next request. A's next
  // request stops halfway through its headers: the worker must hand A back to
  // the gate at once, or B would wait for a minute.
  start({.header_timeout = std::chrono::milliseconds(3'000),
         .workers = 1,
         .keep_alive_linger = std::chrono::seconds(60)});
  int slow = connect_client();
  ASSERT_GE(slow, 0);
  std::string received;
  ASSERT_TRUE(send_text(slow, "GET /echo?n=a1 HTTP/1.1\r\nHost: t\r\n\r\n"));
  ASSERT_TRUE(read_until(slow, received, "a1"));
  ASSERT_TRUE(send_text(slow, "GET /echo?n=a2 HTTP/1.1\r\nHost: t\r\n"));

  int other = connect_client();
  ASSERT_GE(other, 0);
  std::string answer;
  ASSERT_TRUE(send_text(other, "GET /echo?n=b1 HTTP/1.1\r\nHost: t\r\n\r\n"));
  ASSERT_TRUE(read_until(other, answer, "b1")) << answer;
  char byte;
  ssize_t peeked = ::recv(slow, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  EXPECT_TRUE(peeked < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
      << "B must be answered while A, incomplete, is still held open";
  ::shutdown(other, SHUT_RDWR);  // B's worker, waiting for B's next request, lets go

  // A's unfinished headers then meet the header timeout at the gate.
  received.clear();
  ASSERT_TRUE(read_until(slow, received, "408 Request Timeout")) << received;
  EXPECT_NE(metrics_.expose().find(
                "telekern_http_connections_closed_total{reason=\"header_timeout\"} 1\n"),
            std::string::npos);
}

TEST_F(GuardedServerTest, IdleKeepAliveConnectionsMeetTheIdleTimeout) {
  start({.idle_timeout = std::chrono::milliseconds(200), .workers = 1});
  int fd = connect_client();
  ASSERT_GE(fd, 0);
  std::string received;
  ASSERT_TRUE(send_text(fd, "GET /echo?n=once HTTP/1.1\r\nHost: t\r\n\r\n"));
  ASSERT_TRUE(read_until(fd, received, "once"));
  char byte;
  EXPECT_EQ(::recv(fd, &byte, 1, 0), 0) << "the server closes an idle connection";
  EXPECT_NE(
      metrics_.expose().find("telekern_http_connections_closed_total{reason=\"idle_timeout\"} 1\n"),
      std::string::npos);
}

TEST_F(GuardedServerTest, AnswersWithoutBodyAndStreamedAnswersGoOutAsWritten) {
  start({.workers = 2});
  int fd = connect_client();
  ASSERT_GE(fd, 0);
  std::string received;
  // No body: the headers are not held back.
  ASSERT_TRUE(send_text(fd, "GET /empty HTTP/1.1\r\nHost: t\r\n\r\n"));
  ASSERT_TRUE(read_until(fd, received, "\r\n\r\n")) << received;
  EXPECT_NE(received.find("204"), std::string::npos) << received;
  // HEAD: headers with a length but no body follow.
  received.clear();
  ASSERT_TRUE(send_text(fd, "HEAD /echo?n=abc HTTP/1.1\r\nHost: t\r\n\r\n"));
  ASSERT_TRUE(read_until(fd, received, "\r\n\r\n")) << received;
  EXPECT_NE(received.find("Content-Length: 3"), std::string::npos) << received;
  // A chunked stream: its first chunk arrives before the second is produced.
  received.clear();
  ASSERT_TRUE(send_text(fd, "GET /stream HTTP/1.1\r\nHost: t\r\n\r\n"));
  release_chunk();
  ASSERT_TRUE(read_until(fd, received, "chunk1")) << received;
  EXPECT_EQ(received.find("chunk2"), std::string::npos);
  release_chunk();
  release_chunk();
  ASSERT_TRUE(read_until(fd, received, "0\r\n\r\n")) << received;
  EXPECT_NE(received.find("chunk2"), std::string::npos) << received;
}

}  // namespace
}  // namespace telekern::kernel::http
