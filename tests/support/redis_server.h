// A real redis-server on a free loopback port in a temp dir, stopped on destruction.
#pragma once

#include <memory>
#include <string>

#include "tests/support/process.h"

struct redisContext;

namespace telekern::testing {

struct RedisOptions {
  std::string appendonly = "no";         // "yes" for AOF persistence
  std::string appendfsync = "everysec";  // always | everysec | no
};

class RedisServer {
 public:
  explicit RedisServer(RedisOptions options = {});
  ~RedisServer();

  // False when redis-server is missing or did not answer PING within 10 s.
  bool ready() const { return ready_; }
  int port() const { return port_; }
  std::string binary() const { return binary_; }
  // A new hiredis connection; the caller frees it with redisFree.
  redisContext* connect() const;

 private:
  TempDir dir_;
  std::string binary_;
  int port_ = 0;
  std::unique_ptr<Process> process_;
  bool ready_ = false;
};

// A free TCP port on 127.0.0.1 (bound and released; good enough for servers
// that take a port on the command line).
int free_loopback_port();

}  // namespace telekern::testing
