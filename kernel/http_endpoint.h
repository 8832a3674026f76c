// The daemon's HTTP side: /metrics (Prometheus text), /health and /ready.
#pragma once

#include <absl/status/status.h>

#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "telekern/metrics.h"

namespace httplib {
class Server;
}

namespace telekern::kernel {

struct HttpHandlers {
  std::function<std::string()> health_json;        // always 200
  std::function<bool(std::string* detail)> ready;  // 200 when true, else 503 with detail
};

class HttpEndpoint {
 public:
  HttpEndpoint(MetricsRegistry& metrics, HttpHandlers handlers);
  ~HttpEndpoint();

  // Binds host:port (port 0 picks one) and serves on a thread of its own.
  absl::Status start(const std::string& address);
  int port() const { return port_; }
  void stop();

 private:
  MetricsRegistry& metrics_;
  HttpHandlers handlers_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  int port_ = 0;
};

}  // namespace telekern::kernel
