#include "tests/support/redis_server.h"

#include <arpa/inet.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

namespace telekern::testing {

int free_loopback_port() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  socklen_t length = sizeof address;
  int port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0) {
    port = ntohs(address.sin_port);
  }
  close(fd);
  return port;
}

RedisServer::RedisServer(RedisOptions options) : dir_("redis") {
  binary_ = find_executable("redis-server", {"/usr/bin/redis-server"});
  if (binary_.empty()) return;
  for (int attempt = 0; attempt < 3 && !ready_; ++attempt) {
    port_ = free_loopback_port();
    process_ = std::make_unique<Process>(
        std::vector<std::string>{binary_, "--port", std::to_string(port_), "--bind", "127.0.0.1",
                                 "--dir", dir_.path().string(), "--save", "", "--appendonly",
                                 options.appendonly, "--appendfsync", options.appendfsync,
                                 "--daemonize", "no", "--protected-mode", "yes"},
        std::map<std::string, std::string>{}, dir_.path() / "redis.log");
    ready_ = wait_for(
                 [&] {
                   if (!process_->running()) return true;
                   redisContext* context = connect();
                   if (context == nullptr) return false;
                   auto* reply = static_cast<redisReply*>(redisCommand(context, "PING"));
                   bool ok = reply != nullptr && reply->type == REDIS_REPLY_STATUS;
                   if (reply) freeReplyObject(reply);
                   redisFree(context);
                   return ok;
                 },
                 std::chrono::seconds(10)) &&
             process_->running();
  }
}

RedisServer::~RedisServer() = default;  // Process kills the server

redisContext* RedisServer::connect() const {
  timeval timeout{2, 0};
  redisContext* context = redisConnectWithTimeout("127.0.0.1", port_, timeout);
  if (context != nullptr && context->err) {
    redisFree(context);
    return nullptr;
  }
  return context;
}

}  // namespace telekern::testing
