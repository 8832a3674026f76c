// A real influxd (InfluxDB 1.x) on free loopback ports (HTTP and the RPC bind
// address) with a generated config in a temp dir, stopped on destruction.
// stop()/start() restart it on the same ports and data (outage tests).
#pragma once

#include <memory>
#include <string>

#include "tests/support/process.h"

namespace telekern::testing {

class InfluxDbServer {
 public:
  InfluxDbServer();
  ~InfluxDbServer();

  // False when influxd is missing or did not answer /ping within 20 s.
  bool ready() const { return ready_; }
  const std::string& binary() const { return binary_; }
  int http_port() const { return http_port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(http_port_); }
  std::string log() const;

  // SIGKILL (an outage, not a clean shutdown) and wait for the exit.
  void kill();
  // Starts it again on the same ports and data; true once /ping answers.
  bool start();

  // InfluxQL through /query (GET, or POST for statements that write); the JSON reply.
  std::pair<int, std::string> query(const std::string& database, const std::string& influxql,
                                    bool post = false) const;
  // Line protocol to /write; the HTTP status.
  int write(const std::string& database, const std::string& lines,
            const std::string& precision = "ns") const;
  // SELECT count("field") FROM measurement in database (0 when empty or absent).
  long long count(const std::string& database, const std::string& measurement,
                  const std::string& field = "value") const;

 private:
  bool launch();
  TempDir dir_;
  std::string binary_;
  int http_port_ = 0;
  int rpc_port_ = 0;
  std::unique_ptr<Process> process_;
  bool ready_ = false;
};

}  // namespace telekern::testing
