#include "tests/support/nats_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "tests/support/redis_server.h"  // free_loopback_port

namespace telekern::testing {
namespace {

// Connects, reads INFO, sends PING and expects PONG.
bool answers_ping(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return false;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(static_cast<uint16_t>(port));
  bool ok = false;
  if (connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0) {
    std::string seen;
    const std::string ping = "CONNECT {\"verbose\":false}\r\nPING\r\n";
    if (send(fd, ping.data(), ping.size(), MSG_NOSIGNAL) == ssize_t(ping.size())) {
      for (int i = 0; i < 20 && seen.find("PONG") == std::string::npos; ++i) {
        pollfd p{fd, POLLIN, 0};
        if (poll(&p, 1, 100) <= 0) continue;
        char buffer[4096];
        ssize_t n = recv(fd, buffer, sizeof buffer, 0);
        if (n <= 0) break;
        seen.append(buffer, size_t(n));
      }
    }
    ok = seen.find("PONG") != std::string::npos;
  }
  close(fd);
  return ok;
}

}  // namespace

NatsServer::NatsServer() : dir_("nats") {
  binary_ = find_executable("nats-server", {"/usr/sbin/nats-server", "/usr/bin/nats-server"});
  if (binary_.empty()) return;
  for (int attempt = 0; attempt < 3 && !ready_; ++attempt) {
    port_ = free_loopback_port();
    process_ = std::make_unique<Process>(
        std::vector<std::string>{binary_, "-a", "127.0.0.1", "-p", std::to_string(port_), "-js",
                                 "-sd", (dir_.path() / "jetstream").string(), "-m", "0"},
        std::map<std::string, std::string>{}, dir_.path() / "nats.log");
    ready_ = wait_for([&] { return !process_->running() || answers_ping(port_); },
                      std::chrono::seconds(10)) &&
             process_->running();
  }
}

NatsServer::~NatsServer() = default;  // Process kills the server

std::string NatsServer::log() const {
  std::ifstream in(dir_.path() / "nats.log");
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

}  // namespace telekern::testing
