// A real nats-server (Debian's package) with JetStream and file storage on a
// free loopback port in a temp dir, stopped on destruction.
#pragma once

#include <memory>
#include <string>

#include "tests/support/process.h"

namespace telekern::testing {

class NatsServer {
 public:
  NatsServer();
  ~NatsServer();

  // False when nats-server is missing or did not answer PING within 10 s.
  bool ready() const { return ready_; }
  int port() const { return port_; }
  std::string binary() const { return binary_; }
  std::string url() const { return "nats://127.0.0.1:" + std::to_string(port_); }
  std::string log() const;

 private:
  TempDir dir_;
  std::string binary_;
  int port_ = 0;
  std::unique_ptr<Process> process_;
  bool ready_ = false;
};

}  // namespace telekern::testing
