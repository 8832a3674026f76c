// The HTTP/JSON gateway: every RPC of every loaded service as
// POST /rpc/<package.Service>/<Method>, and the REST routes services declare
// with (telekern.options.v1.http). Calls go through the public server's
// in-process channel with the caller's credentials, so the call gate, RPC
// metrics and routing apply exactly as on gRPC. Server streams answer as
// Server-Sent Events (Accept: text/event-stream) or NDJSON.
#pragma once

#include <absl/status/status.h>
#include <grpcpp/channel.h>
#include <httplib.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "kernel/http/console_files.h"
#include "kernel/http/rate_limiter.h"
#include "kernel/http/report_tickets.h"
#include "kernel/http/route_table.h"
#include "kernel/routing/local_calls.h"
#include "telekern/metrics.h"

namespace telekern::kernel::http {

struct GatewaySources {
  // The public server's in-process channel; null until it serves.
  std::function<std::shared_ptr<grpc::Channel>()> channel;
  // Full names of the services served now (kernel and modules).
  std::function<std::vector<std::string>()> services;
  // The call gate's credential check for a call to "/pkg.Service/Method"
  // (auth::check_credentials), asked before the body is parsed; null: none.
  std::function<absl::Status(std::string_view api_key, std::string_view authorization,
                             std::string_view path)>
      authorize;
  // Unary calls without gRPC, tried first (ModuleManager::local_calls);
  // null, or a null answer: every call goes through `channel`.
  std::function<LocalCalls*()> local_calls;
};

struct GatewayOptions {
  // Deadline of unary and client-streaming calls.
  std::chrono::milliseconds call_timeout{30'000};
  // How long a server stream may take to answer or fail before its HTTP
  // status (200) is sent; errors within it get their own status.
  std::chrono::milliseconds stream_first_response{1'000};
  // Larger request bodies get 413.
  size_t max_body_bytes = 4 << 20;
  std::string version;  // in the OpenAPI document
  // Token buckets for gateway calls (429 + Retry-After past them).
  RateLimit per_credential{200, 400};
  RateLimit per_address{400, 800};
  // rate_limits: the gateway applies the route-family rules ("/api/v1/");
  // the call gate the service and method rules.
  std::map<std::string, double> rate_limits;
  // Origins allowed to call from a browser (CORS); empty: CORS off.
  std::vector<std::string> cors_origins;
  // Server streams open at once (each holds an HTTP worker); more get 503.
  size_t max_streams = 16;
  // The web console, answering GETs no route matched; null: none.
  std::shared_ptr<const ConsoleFiles> console;
  // How long a report ticket (POST /api/report-tickets) may wait for its GET.
  std::chrono::seconds report_ticket_lifetime{60};
};

// The CSP of a report page (a route answering text/html: the tracer's and
// bench's self-contained Plotly reports): its inline script and style run,
// nothing is fetched, and the page is sandboxed into an origin of its own,
// so it can neither read nor call the console's origin.
inline constexpr std::string_view kReportContentSecurityPolicy =
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
    "img-src data: blob:; font-src data:; connect-src 'none'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'; "
    "sandbox allow-scripts allow-downloads allow-popups";

class Gateway {
 public:
  Gateway(GatewaySources sources, GatewayOptions options, MetricsRegistry& metrics);
  ~Gateway();

  // Adds /api/openapi.json, /api/docs, /swagger/, POST /rpc/... and the
  // catch-all REST handlers; call after every
  // fixed path is registered (httplib tries handlers in order).
  void install(httplib::Server& server);

  // The routes of the services served now, rebuilt when a module load,
  // unload or reload changed them.
  std::shared_ptr<const RouteTable> routes();

 private:
  void serve_rpc(const httplib::Request& request, httplib::Response& response);
  void serve_route(const httplib::Request& request, httplib::Response& response);
  // POST /api/report-tickets {"path": "/bench/runs/ID/report"} -> {"url": path?ticket=T}.
  void issue_report_ticket(const httplib::Request& request, httplib::Response& response);
  // `lent`: the credentials of a redeemed report ticket instead of the request's.
  void call(const google::protobuf::MethodDescriptor& method, const std::string& service_hint,
            const httplib::Request& request, httplib::Response& response, const RouteMatch* match,
            const ReportTickets::Grant* lent = nullptr);

  // True when within the limits; otherwise answers 429 with Retry-After.
  bool admit(const httplib::Request& request, httplib::Response& response);

  GatewaySources sources_;
  GatewayOptions options_;
  CounterFamily& calls_;
  CounterFamily& local_calls_;
  CounterFamily& limited_;
  Gauge& open_streams_gauge_;
  // Server streams open now; each holds an HTTP worker until it ends.
  std::atomic<size_t> open_streams_{0};
  ReportTickets report_tickets_;
  RateLimiter credential_limiter_;
  RateLimiter address_limiter_;
  RateRules rules_;
  std::mutex routes_mutex_;
  std::shared_ptr<const RouteTable> routes_;
  std::vector<std::string> routes_services_;
  // The routes of every service seen since start, to name the service an
  // unloaded route needs.
  std::set<std::string> seen_services_;
  std::shared_ptr<const RouteTable> seen_routes_;
};

}  // namespace telekern::kernel::http
