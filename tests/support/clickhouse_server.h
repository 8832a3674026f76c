// A real clickhouse-server on free loopback ports (HTTP, native,
// interserver) in a temp dir, listening on 127.0.0.1 only, stopped on
// destruction. Tests talk to it over the HTTP interface.
#pragma once

#include <memory>
#include <string>

#include "tests/support/process.h"

namespace telekern::testing {

class ClickHouseServer {
 public:
  ClickHouseServer();
  ~ClickHouseServer();

  // False when clickhouse-server is missing or /ping did not answer within 60 s.
  bool ready() const { return ready_; }
  int http_port() const { return http_port_; }
  std::string binary() const { return binary_; }
  // Runs `sql` over HTTP; the body, or "ERROR: ..." with the server's message.
  std::string query(const std::string& sql) const;
  // The first number of `sql`'s answer (e.g. SELECT count()), -1 on error.
  long long count(const std::string& sql) const;
  // Stops the server (SIGKILL) and starts it again on the same ports and data.
  void kill();
  bool restart();
  std::string log() const;
  // The server process (benchmarks read its CPU time), -1 when not running.
  pid_t pid() const { return process_ ? process_->pid() : -1; }

 private:
  bool launch();
  TempDir dir_;
  std::string binary_;
  int http_port_ = 0;
  int tcp_port_ = 0;
  int interserver_port_ = 0;
  std::unique_ptr<Process> process_;
  bool ready_ = false;
};

}  // namespace telekern::testing
