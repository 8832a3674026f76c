#include "kernel/http_endpoint.h"

#include <httplib.h>

#include "telekern/strings.h"

namespace telekern::kernel {

namespace {

// X-API-Key and Authorization of a request, checked by handlers.viewer.
absl::Status check_viewer(const HttpHandlers& handlers, const httplib::Request& request) {
  if (!handlers.viewer) return absl::OkStatus();
  return handlers.viewer(request.get_header_value("X-API-Key"),
                         request.get_header_value("Authorization"));
}

}  // namespace

HttpEndpoint::HttpEndpoint(MetricsRegistry& metrics, HttpHandlers handlers,
                           http::ConnectionLimits limits)
    : metrics_(metrics),
      handlers_(std::move(handlers)),
      server_(std::make_unique<http::GuardedServer>(limits, metrics)) {
  // Answers go out whole at once; without it a keep-alive client's next
  // request waits for a delayed ACK (40 ms).
  server_->set_tcp_nodelay(true);
  auto& requests =
      metrics_.counter("telekern_http_requests_total",
                       "HTTP requests served, by path and status code", {"path", "code"});
  server_->Get("/metrics", [this](const httplib::Request& request, httplib::Response& response) {
    if (!handlers_.public_metrics || !handlers_.public_metrics()) {
      if (auto allowed = check_viewer(handlers_, request); !allowed.ok()) {
        response.status = allowed.code() == absl::StatusCode::kPermissionDenied ? 403 : 401;
        response.set_header("WWW-Authenticate", "Bearer realm=\"telekernd\"");
        response.set_content(str_cat("/metrics: ", allowed.message(), "\n"), "text/plain");
        return;
      }
    }
    response.set_content(metrics_.expose(), "text/plain; version=0.0.4; charset=utf-8");
  });
  server_->Get("/health", [this](const httplib::Request& request, httplib::Response& response) {
    response.set_content(handlers_.health_json(check_viewer(handlers_, request).ok()),
                         "application/json");
  });
  server_->Get("/ready", [this](const httplib::Request& request, httplib::Response& response) {
    std::string detail;
    if (handlers_.ready(&detail)) {
      response.set_content("ready\n", "text/plain");
      return;
    }
    response.status = 503;
    if (!check_viewer(handlers_, request).ok()) {
      detail = "a module is not serving (send a viewer credential to see which)";
    }
    response.set_content(str_cat("not ready: ", detail, "\n"), "text/plain");
  });
  server_->set_logger(
      [&requests](const httplib::Request& request, const httplib::Response& response) {
        std::string path = request.path;
        if (path.starts_with("/rpc/")) {
          path = "/rpc";
        } else if (path != "/metrics" && path != "/health" && path != "/ready") {
          path = "other";
        }
        requests.with({path, std::to_string(response.status)}).inc();
      });
}

HttpEndpoint::~HttpEndpoint() { stop(); }

void HttpEndpoint::enable_gateway(http::GatewaySources sources, http::GatewayOptions options) {
  server_->set_payload_max_length(options.max_body_bytes);
  gateway_ = std::make_unique<http::Gateway>(std::move(sources), options, metrics_);
  gateway_->install(*server_);
}

absl::Status HttpEndpoint::start(const std::string& address) {
  auto colon = address.rfind(':');
  auto parsed = colon == std::string::npos ? std::nullopt : parse_int(address.substr(colon + 1));
  int port = parsed ? static_cast<int>(*parsed) : 0;
  if (!parsed) {
    return absl::InvalidArgumentError(str_cat("http address '", address, "' is not host:port"));
  }
  std::string host = address.substr(0, colon);
  if (port == 0) {
    port_ = server_->bind_to_any_port(host);
  } else {
    port_ = server_->bind_to_port(host, port) ? port : -1;
  }
  if (port_ <= 0) {
    return absl::UnavailableError(
        str_cat("cannot listen for HTTP on ", address,
                ": address in use or not local; pick another with --http"));
  }
  server_->widen_backlog();
  thread_ = std::thread([this] { server_->listen_after_bind(); });
  return absl::OkStatus();
}

void HttpEndpoint::stop() {
  if (server_) server_->stop();
  if (thread_.joinable()) thread_.join();
  if (server_) server_->shutdown_connections();
}

}  // namespace telekern::kernel
