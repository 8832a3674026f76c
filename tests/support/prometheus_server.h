// Starts a real Prometheus server (Debian's `prometheus`) on a free loopback
// port in a temp dir, scraping one target every second, and stops it.
#pragma once

#include <memory>
#include <string>

#include "tests/support/process.h"

namespace telekern::testing {

class PrometheusServer {
 public:
  // `target`: host:port serving /metrics; `bearer`: credential sent on scrapes (may be empty).
  PrometheusServer(const std::string& target, const std::string& bearer);
  ~PrometheusServer();

  // True once /-/ready answered (bounded wait).
  bool ready() const { return ready_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  // GET /api/v1/query?query=<promql>; the JSON body, or "" on failure.
  std::string query(const std::string& promql) const;
  std::string log() const;

 private:
  TempDir dir_{"prometheus"};
  int port_ = 0;
  std::unique_ptr<Process> process_;
  bool ready_ = false;
};

}  // namespace telekern::testing
