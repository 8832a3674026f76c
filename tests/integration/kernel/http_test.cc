// The real telekernd's HTTP endpoint and login path under hostile clients:
// who may read /metrics, slow clients (slowloris), connection caps, junk
// method names, repeated failed logins.
#include <arpa/inet.h>
#include <grpcpp/generic/generic_stub.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "telekern/kernel/v1/kernel.grpc.pb.h"
#include "tests/support/auth_config.h"
#include "tests/support/telekernd.h"

namespace telekern::testing {
namespace {

namespace kv1 = telekern::kernel::v1;

// The tests' auth section (tests/support/auth_config.h) plus `extra` kernel keys.
std::string auth_config(const std::string& extra = "") { return auth_config_yaml() + extra; }

int http_port(const Telekernd& daemon) {
  return std::stoi(daemon.http_address().substr(daemon.http_address().rfind(':') + 1));
}

// A TCP connection to 127.0.0.1:port from `source` (any 127/8 address is
// loopback on Linux, so tests can act as many clients); -1 when it fails.
int connect_from(const std::string& source, int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in local{};
  local.sin_family = AF_INET;
  inet_pton(AF_INET, source.c_str(), &local.sin_addr);
  sockaddr_in remote{};
  remote.sin_family = AF_INET;
  remote.sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, "127.0.0.1", &remote.sin_addr);
  timeval timeout{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout));
  if (::bind(fd, reinterpret_cast<sockaddr*>(&local), sizeof(local)) != 0 ||
      ::connect(fd, reinterpret_cast<sockaddr*>(&remote), sizeof(remote)) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

bool send_text(int fd, const std::string& text) {
  return ::send(fd, text.data(), text.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(text.size());
}

// Whether the server still holds `fd` open (nothing to read, no EOF).
bool still_open(int fd) {
  char byte;
  ssize_t received = ::recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  return received < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

// Everything the server sends until it closes (bounded by SO_RCVTIMEO).
std::string read_until_closed(int fd) {
  std::string text;
  char buffer[4096];
  ssize_t received;
  while ((received = ::recv(fd, buffer, sizeof(buffer), 0)) > 0) text.append(buffer, received);
  return text;
}

// Connections the test opens, closed when it ends.
struct Sockets {
  std::vector<int> fds;
  ~Sockets() {
    for (int fd : fds) ::close(fd);
  }
};

// Raises this process's open-file limit (the daemon, started later, inherits
// it) and returns how many slow connections it allows, at most `wanted`.
int slow_connections_allowed(int wanted) {
  rlimit limit{};
  getrlimit(RLIMIT_NOFILE, &limit);
  limit.rlim_cur = limit.rlim_max;
  setrlimit(RLIMIT_NOFILE, &limit);
  getrlimit(RLIMIT_NOFILE, &limit);
  return static_cast<int>(std::min<rlim_t>(wanted, limit.rlim_cur / 2 - 200));
}

TEST(HttpEndpointTest, MetricsNeedAViewerCredentialWhenAuthIsOn) {
  Telekernd daemon({.config_yaml = auth_config(), .load = {"echo"}});
  ASSERT_TRUE(daemon.ready()) << daemon.log();

  auto [anonymous_code, anonymous] = daemon.http_get("/metrics");
  EXPECT_EQ(anonymous_code, 401) << anonymous;
  EXPECT_NE(anonymous.find("X-API-Key"), std::string::npos) << "says what to send: " << anonymous;
  EXPECT_EQ(anonymous.find("telekern_rpc"), std::string::npos);
  EXPECT_EQ(daemon.http_get("/metrics", {{"X-API-Key", "wrong"}}).first, 401);
  EXPECT_EQ(daemon.http_get("/metrics", {{"X-API-Key", "viewer-secret"}}).first, 200);
  // Prometheus' `authorization: {credentials: KEY}` sends the key as a bearer token.
  auto [bearer_key_code, body] =
      daemon.http_get("/metrics", {{"Authorization", "Bearer viewer-secret"}});
  EXPECT_EQ(bearer_key_code, 200);
  EXPECT_NE(body.find("telekern_build_info"), std::string::npos);
  kv1::LoginRequest login;
  login.set_user("alice");
  login.set_password("wonderland");
  kv1::LoginResponse token;
  grpc::ClientContext context;
  ASSERT_TRUE(kv1::Kernel::NewStub(daemon.channel())->Login(&context, login, &token).ok());
  EXPECT_EQ(daemon.http_get("/metrics", {{"Authorization", "Bearer " + token.token()}}).first, 200);

  // /health and /ready stay public but name modules only to viewers.
  auto [health_code, health] = daemon.http_get("/health");
  EXPECT_EQ(health_code, 200);
  EXPECT_NE(health.find("\"status\":\"ok\""), std::string::npos) << health;
  EXPECT_EQ(health.find("echo"), std::string::npos) << health;
  EXPECT_NE(daemon.http_get("/health", {{"X-API-Key", "viewer-secret"}}).second.find("\"echo\""),
            std::string::npos);
  EXPECT_EQ(daemon.http_get("/ready").first, 200);

  Telekernd open({.config_yaml = auth_config("http_public_metrics: true\n"), .load = {"echo"}});
  ASSERT_TRUE(open.ready()) << open.log();
  EXPECT_EQ(open.http_get("/metrics").first, 200) << "http_public_metrics: true opens /metrics";
  EXPECT_EQ(open.http_get("/health").second.find("echo"), std::string::npos);
}

TEST(HttpEndpointTest, NotReadyDetailNamesModulesOnlyToViewers) {
  Telekernd daemon({.config_yaml = auth_config(), .load = {"echo", "throwing_start"}});
  ASSERT_TRUE(daemon.ready()) << daemon.log();
  auto [code, body] = daemon.http_get("/ready");
  EXPECT_EQ(code, 503);
  EXPECT_EQ(body.find("throwing_start"), std::string::npos) << body;
  auto [viewer_code, detail] = daemon.http_get("/ready", {{"X-API-Key", "viewer-secret"}});
  EXPECT_EQ(viewer_code, 503);
  EXPECT_NE(detail.find("throwing_start"), std::string::npos) << detail;
}

// Each unknown method name used to add a requests series and a histogram
// forever (5000 junk names: /metrics 223 KB -> 12.4 MB).
TEST(HttpEndpointTest, JunkMethodNamesFromAnonymousClientsAddNoSeries) {
  Telekernd daemon({.config_yaml = auth_config(), .load = {"echo"}});
  ASSERT_TRUE(daemon.ready()) << daemon.log();
  auto series = [&] {
    auto [code, body] = daemon.http_get("/metrics", {{"X-API-Key", "viewer-secret"}});
    size_t count = 0;
    for (size_t at = 0; (at = body.find("\ntelekern_rpc_requests_total{", at)) != std::string::npos;
         ++at)
      ++count;
    return std::make_pair(count, body);
  };
  grpc::GenericStub stub(daemon.channel());
  auto call = [&](const std::string& method) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    grpc::ByteBuffer request, response;
    grpc::Slice empty("", 0);
    request = grpc::ByteBuffer(&empty, 1);
    std::mutex mutex;
    std::condition_variable done;
    bool finished = false;
    grpc::Status status;
    stub.UnaryCall(&context, method, grpc::StubOptions(), &request, &response,
                   [&](grpc::Status result) {
                     std::lock_guard lock(mutex);
                     status = result;
                     finished = true;
                     done.notify_one();
                   });
    std::unique_lock lock(mutex);
    done.wait(lock, [&] { return finished; });
    return status;
  };
  EXPECT_EQ(call("/junk.Warmup/First").error_code(), grpc::StatusCode::UNAUTHENTICATED);
  // The first junk call is counted when the server finishes it.
  ASSERT_TRUE(wait_for([&] { return series().second.find("unserved") != std::string::npos; },
                       std::chrono::seconds(5)));
  size_t before = series().first;
  for (int i = 0; i < 300; ++i) {
    call("/junk.Service" + std::to_string(i) + "/Method" + std::to_string(i));
    call("/telekern.kernel.v1.Kernel/Junk" + std::to_string(i));
  }
  auto [after, body] = series();
  EXPECT_LE(after, before + 1) << "one more code (UNIMPLEMENTED) at most";
  EXPECT_EQ(body.find("junk.Service"), std::string::npos);
  EXPECT_EQ(body.find("Junk1"), std::string::npos);
}

// GetConfig (operator) showed the SHA-256 of every API key, which lets anyone
// test key guesses offline.
TEST(HttpEndpointTest, GetConfigMasksApiKeyHashes) {
  Telekernd daemon({.config_yaml = auth_config()});
  ASSERT_TRUE(daemon.ready()) << daemon.log();
  auto kernel = kv1::Kernel::NewStub(daemon.channel());
  kv1::LoginRequest login;
  login.set_user("alice");
  login.set_password("wonderland");
  kv1::LoginResponse token;
  grpc::ClientContext login_context;
  ASSERT_TRUE(kernel->Login(&login_context, login, &token).ok());
  grpc::ClientContext context;
  context.AddMetadata("authorization", "Bearer " + token.token());
  kv1::GetConfigResponse config;
  auto status = kernel->GetConfig(&context, {}, &config);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_NE(config.yaml().find("viewer-key"), std::string::npos) << config.yaml();
  EXPECT_EQ(config.yaml().find(sha256_hex(kViewerKey)), std::string::npos) << config.yaml();
  EXPECT_EQ(config.yaml().find("pbkdf2"), std::string::npos) << config.yaml();
}

TEST(HttpEndpointTest, RepeatedFailedLoginsAreSlowedDownAndCounted) {
  Telekernd daemon({.config_yaml = auth_config()});
  ASSERT_TRUE(daemon.ready()) << daemon.log();
  auto kernel = kv1::Kernel::NewStub(daemon.channel());
  auto login = [&](const std::string& user, const std::string& password) {
    kv1::LoginRequest request;
    request.set_user(user);
    request.set_password(password);
    kv1::LoginResponse response;
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    return kernel->Login(&context, request, &response);
  };
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(login("alice", "guess" + std::to_string(i)).error_code(),
              grpc::StatusCode::UNAUTHENTICATED);
  }
  auto throttled = login("alice", "wonderland");
  EXPECT_EQ(throttled.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED)
      << throttled.error_message();
  EXPECT_NE(throttled.error_message().find("retry in"), std::string::npos);
  // An unknown name from the same address is turned away the same way.
  EXPECT_EQ(login("nobody", "x").error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  auto [code, body] = daemon.http_get("/metrics", {{"X-API-Key", "viewer-secret"}});
  EXPECT_NE(body.find("telekern_login_failures_total 5\n"), std::string::npos);
  EXPECT_NE(body.find("telekern_login_throttled_total{scope=\"user\"} 1\n"), std::string::npos);
  EXPECT_NE(body.find("telekern_login_throttled_total{scope=\"address\"} 1\n"), std::string::npos);
}

// Eight connections sending headers a line per second used to take every
// one of cpp-httplib's 8 threads, and /health timed out for everyone else.
TEST(HttpEndpointTest, HealthAnswersWithinAHundredMillisecondsWithAThousandSlowConnections) {
  const int slow_count = slow_connections_allowed(1000);
  Telekernd daemon({.load = {"echo"}});
  ASSERT_TRUE(daemon.ready()) << daemon.log();
  const int port = http_port(daemon);
  if (slow_count < 1000) std::cerr << "open-file limit allows " << slow_count << " connections\n";

  Sockets slow;
  for (int i = 0; i < slow_count; ++i) {
    // Ten client addresses, each under the per-address cap.
    int fd = connect_from("127.0.0." + std::to_string(10 + i % 10), port);
    ASSERT_GE(fd, 0) << "connection " << i << ": " << strerror(errno);
    slow.fds.push_back(fd);
    ASSERT_TRUE(send_text(fd, "GET /health HTTP/1.1\r\nHost: slow\r\n"));
  }
  std::mutex mutex;
  std::condition_variable stop_changed;
  bool stop = false;
  std::thread trickle([&] {
    std::unique_lock lock(mutex);
    // Slowloris pace: one more header line per connection each second.
    while (!stop_changed.wait_for(lock, std::chrono::seconds(1), [&] { return stop; })) {
      for (int fd : slow.fds) send_text(fd, "X-Slow: 1\r\n");
    }
  });

  std::vector<double> latencies;
  int answered = 0;
  for (int i = 0; i < 21; ++i) {
    httplib::Client client("127.0.0.1", port);
    client.set_connection_timeout(2);
    client.set_read_timeout(2);
    auto start = std::chrono::steady_clock::now();
    auto result = client.Get("/health");
    latencies.push_back(
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
            .count());
    if (result && result->status == 200) ++answered;
  }
  int open = 0;
  for (int fd : slow.fds) open += still_open(fd) ? 1 : 0;
  {
    std::lock_guard lock(mutex);
    stop = true;
  }
  stop_changed.notify_all();
  trickle.join();

  std::sort(latencies.begin(), latencies.end());
  double median = latencies[latencies.size() / 2];
  std::cerr << "/health with " << open << " slow connections open: median " << median << " ms, max "
            << latencies.back() << " ms\n";
  EXPECT_EQ(answered, 21);
  EXPECT_EQ(open, slow_count) << "the slow connections must still be open while /health answers";
  // The issue states this bound as the behaviour; the median absorbs a
  // scheduling hiccup on a shared machine.
  EXPECT_LT(median, 100.0);
}

TEST(HttpEndpointTest, SlowHeadersAreCutOffAndOneAddressCannotHoldEveryConnection) {
  slow_connections_allowed(400);
  Telekernd daemon({.load = {"echo"}});
  ASSERT_TRUE(daemon.ready()) << daemon.log();
  const int port = http_port(daemon);

  // 128 connections per client address; the next one is refused at once.
  Sockets held;
  for (int i = 0; i < 128; ++i) {
    int fd = connect_from("127.0.0.77", port);
    ASSERT_GE(fd, 0);
    held.fds.push_back(fd);
  }
  int extra = connect_from("127.0.0.77", port);
  ASSERT_GE(extra, 0);
  std::string refusal = read_until_closed(extra);
  ::close(extra);
  EXPECT_NE(refusal.find("503"), std::string::npos) << refusal;
  EXPECT_NE(refusal.find("127.0.0.77 already holds 128"), std::string::npos) << refusal;
  EXPECT_EQ(daemon.http_get("/health").first, 200) << "other addresses are served";
  for (int fd : held.fds) ::close(fd);
  held.fds.clear();

  // Headers that never finish are cut off (header timeout 10 s).
  int slow = connect_from("127.0.0.78", port);
  ASSERT_GE(slow, 0);
  Sockets closing{{slow}};
  ASSERT_TRUE(send_text(slow, "GET /health HTTP/1.1\r\n"));
  auto start = std::chrono::steady_clock::now();
  bool cut = wait_for(
      [&] {
        send_text(slow, "X-Slow: 1\r\n");
        return !still_open(slow);
      },
      std::chrono::seconds(20));
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_TRUE(cut) << "a connection trickling headers must be closed";
  std::cerr << "slow headers cut after " << seconds << " s\n";
  auto [code, metrics] = daemon.http_get("/metrics");
  EXPECT_NE(
      metrics.find("telekern_http_connections_closed_total{reason=\"per_address_limit\"} 1\n"),
      std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find("telekern_http_connections_closed_total{reason=\"header_timeout\"} 1\n"),
            std::string::npos)
      << metrics;
}

}  // namespace
}  // namespace telekern::testing
