// The daemon's HTTP side: /metrics (Prometheus text), /health and /ready,
// served by a GuardedServer so slow clients cannot starve it.
#pragma once

#include <absl/status/status.h>

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <thread>

#include "kernel/http/gateway.h"
#include "kernel/http/guarded_server.h"
#include "telekern/metrics.h"

namespace telekern::kernel {

struct HttpHandlers {
  // Always 200; module names only when `with_modules`.
  std::function<std::string(bool with_modules)> health_json;
  std::function<bool(std::string* detail)> ready;  // 200 when true, else 503 with detail
  // OK when a request with these credentials may read metrics and module
  // names (auth off, or a viewer credential); the error says what to send.
  std::function<absl::Status(std::string_view api_key, std::string_view authorization)> viewer;
  // Whether /metrics answers without credentials (http_public_metrics).
  std::function<bool()> public_metrics;
};

class HttpEndpoint {
 public:
  HttpEndpoint(MetricsRegistry& metrics, HttpHandlers handlers, http::ConnectionLimits limits = {});
  ~HttpEndpoint();

  // Serves the HTTP/JSON gateway (/rpc/... and the services' REST routes)
  // after the fixed paths; call before start().
  void enable_gateway(http::GatewaySources sources, http::GatewayOptions options = {});

  // Binds host:port (port 0 picks one) and serves on a thread of its own.
  absl::Status start(const std::string& address);
  int port() const { return port_; }
  void stop();

 private:
  MetricsRegistry& metrics_;
  HttpHandlers handlers_;
  std::unique_ptr<http::GuardedServer> server_;
  std::unique_ptr<http::Gateway> gateway_;
  std::thread thread_;
  int port_ = 0;
};

}  // namespace telekern::kernel
