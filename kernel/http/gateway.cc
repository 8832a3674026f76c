#include "kernel/http/gateway.h"

#include <google/protobuf/dynamic_message.h>
#include <grpcpp/client_context.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/support/byte_buffer.h>
#include <zlib.h>

#include <cctype>
#include <condition_variable>
#include <future>
#include <nlohmann/json.hpp>
#include <optional>

#include "kernel/auth/caller_identity.h"
#include "kernel/http/json_errors.h"
#include "kernel/http/openapi.h"
#include "kernel/http/transcoder.h"
#include "telekern/status.h"
#include "telekern/strings.h"

namespace telekern::kernel::http {

namespace {

using google::protobuf::Message;
using google::protobuf::MethodDescriptor;

void send_error(httplib::Response& response, grpc::StatusCode code, std::string_view message) {
  response.status = http_status_for(code);
  if (code == grpc::StatusCode::RESOURCE_EXHAUSTED && !response.has_header("Retry-After")) {
    response.set_header("Retry-After", "1");  // a limit behind the gateway (the call gate's)
  }
  if (code == grpc::StatusCode::UNAUTHENTICATED) {
    response.set_header("WWW-Authenticate", "Bearer realm=\"telekernd\"");
  }
  response.set_content(error_json(code, message), "application/json");
}

grpc::ByteBuffer to_buffer(const Message& message) {
  std::string bytes = message.SerializeAsString();
  grpc::Slice slice(bytes);
  return grpc::ByteBuffer(&slice, 1);
}

std::unique_ptr<Message> from_buffer(const google::protobuf::Descriptor& type,
                                     const grpc::ByteBuffer& buffer) {
  std::vector<grpc::Slice> slices;
  (void)buffer.Dump(&slices);
  std::string bytes;
  for (const auto& slice : slices) {
    bytes.append(reinterpret_cast<const char*>(slice.begin()), slice.size());
  }
  const auto* prototype =
      google::protobuf::MessageFactory::generated_factory()->GetPrototype(&type);
  std::unique_ptr<Message> message(prototype->New());
  if (!message->ParseFromString(bytes)) return nullptr;
  return message;
}

// A route's response_body field as the whole HTTP body (CSV exports, HTML
// reports), a download when the route names a file.
void set_download_name(const Route& route, httplib::Response& response) {
  if (!route.response_file_name.empty()) {
    std::string name;
    for (char c : route.response_file_name) {
      if (c >= 0x20 && c != '"' && c != '\\' && c != 0x7f) name += c;
    }
    response.set_header("Content-Disposition", str_cat("attachment; filename=\"", name, "\""));
  }
}

void send_raw_body(const Route& route, const Message& message, httplib::Response& response) {
  std::string scratch;
  const std::string& body =
      message.GetReflection()->GetStringReference(message, route.response_body, &scratch);
  response.set_content(body, route.response_content_type);
  set_download_name(route, response);
}

// `text` gzip-encoded at zlib's default level; nullopt if zlib fails.
std::optional<std::string> gzip(std::string_view text) {
  z_stream stream{};
  if (deflateInit2(&stream, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) !=
      Z_OK) {
    return std::nullopt;
  }
  std::string out(deflateBound(&stream, text.size()), '\0');
  stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(text.data()));
  stream.avail_in = static_cast<uInt>(text.size());
  stream.next_out = reinterpret_cast<Bytef*>(out.data());
  stream.avail_out = static_cast<uInt>(out.size());
  int result = deflate(&stream, Z_FINISH);
  out.resize(stream.total_out);
  deflateEnd(&stream);
  if (result != Z_STREAM_END) return std::nullopt;
  return out;
}

// A report page (megabytes: plotly.js and the data embedded). httplib would
// compress it on the fly with brotli at quality 11 for any browser (a minute
// for an 8 MB report on this kind of machine); a body from a content provider
// of known length it sends as is, so the page goes out gzip-encoded here
// (a fraction of a second) or plain.
void send_report_page(const Route& route, const Message& message, const httplib::Request& request,
                      httplib::Response& response) {
  std::string scratch;
  const std::string& html =
      message.GetReflection()->GetStringReference(message, route.response_body, &scratch);
  std::optional<std::string> packed;
  if (to_lower(request.get_header_value("Accept-Encoding")).find("gzip") != std::string::npos) {
    packed = gzip(html);
  }
  auto body = std::make_shared<const std::string>(packed ? std::move(*packed) : html);
  if (packed) response.set_header("Content-Encoding", "gzip");
  response.set_header("Vary", "Accept-Encoding");
  response.set_content_provider(body->size(), route.response_content_type,
                                [body](size_t offset, size_t length, httplib::DataSink& sink) {
                                  return sink.write(body->data() + offset,
                                                    std::min(length, body->size() - offset));
                                });
}

// The caller's credentials, or those a report ticket lends its one GET.
void add_credentials(const httplib::Request& request, const ReportTickets::Grant* lent,
                     grpc::ClientContext& context) {
  // For the call gate's per-address limits (trusted only on the in-process channel).
  context.AddMetadata(std::string(auth::kClientAddressHeader), request.remote_addr);
  auto api_key = lent ? lent->api_key : request.get_header_value("X-API-Key");
  if (!api_key.empty()) context.AddMetadata("x-api-key", api_key);
  auto authorization = lent ? lent->authorization : request.get_header_value("Authorization");
  if (!authorization.empty()) context.AddMetadata("authorization", authorization);
}

bool is_report_route(const Route& route) {
  return route.response_body != nullptr && route.response_content_type.starts_with("text/html");
}

// A report path as the console sends it: no query, fragment or escapes, so
// the path a ticket names is the path its GET arrives at.
bool plain_report_path(std::string_view path) {
  if (path.empty() || path.front() != '/' || path.size() > 512) return false;
  return std::all_of(path.begin(), path.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '/' || c == '-' || c == '_' ||
           c == '.' || c == '~' || c == ':' || c == '@';
  });
}

bool wants_sse(const httplib::Request& request) {
  return to_lower(request.get_header_value("Accept")).find("text/event-stream") !=
         std::string::npos;
}

std::string sse_frame(std::string_view event, std::string_view data) {
  std::string frame;
  if (!event.empty()) frame = str_cat("event: ", event, "\n");
  str_append(frame, "data: ", data, "\n\n");
  return frame;
}

// One streaming call on a completion queue of its own, driven by the HTTP
// worker that serves the request: no extra thread, and the worker can stop
// waiting to see whether its client is still there.
class StreamCall {
 public:
  enum Tag : intptr_t { kStart = 1, kWrite, kWritesDone, kRead, kFinish };

  ~StreamCall() {
    finish(/*cancel=*/true);
    queue_.Shutdown();
    void* tag;
    bool ok;
    while (queue_.Next(&tag, &ok)) {
    }
  }

  grpc::ClientContext& context() { return context_; }

  // Starts the call and sends every request; false when the call already ended.
  bool begin(grpc::GenericStub& stub, const std::string& path,
             const std::vector<std::unique_ptr<Message>>& requests) {
    stream_ = stub.PrepareCall(&context_, path, &queue_);
    if (!stream_) return false;
    stream_->StartCall(reinterpret_cast<void*>(kStart));
    if (!wait_for(kStart)) return false;
    for (const auto& request : requests) {
      stream_->Write(to_buffer(*request), reinterpret_cast<void*>(kWrite));
      if (!wait_for(kWrite)) return false;
    }
    stream_->WritesDone(reinterpret_cast<void*>(kWritesDone));
    return wait_for(kWritesDone);
  }

  enum class Next { kMessage, kEnd, kTimeout };
  // The next response, waiting until `deadline`.
  Next read(grpc::ByteBuffer* out, std::chrono::system_clock::time_point deadline) {
    if (ended_) return Next::kEnd;
    if (!read_pending_) {
      stream_->Read(&incoming_, reinterpret_cast<void*>(kRead));
      read_pending_ = true;
    }
    void* tag = nullptr;
    bool ok = false;
    auto result = queue_.AsyncNext(&tag, &ok, deadline);
    if (result == grpc::CompletionQueue::TIMEOUT) return Next::kTimeout;
    read_pending_ = false;
    if (result != grpc::CompletionQueue::GOT_EVENT || !ok) {
      ended_ = true;
      return Next::kEnd;
    }
    *out = std::move(incoming_);
    return Next::kMessage;
  }

  // The call's status; cancels it first when `cancel` (the client left).
  grpc::Status finish(bool cancel) {
    if (finished_ || !stream_) return status_;
    finished_ = true;
    if (cancel) context_.TryCancel();
    if (read_pending_) {
      (void)wait_for(kRead);
      read_pending_ = false;
    }
    stream_->Finish(&status_, reinterpret_cast<void*>(kFinish));
    (void)wait_for(kFinish);
    return status_;
  }

 private:
  bool wait_for(Tag expected) {
    void* tag = nullptr;
    bool ok = false;
    while (queue_.Next(&tag, &ok)) {
      if (reinterpret_cast<intptr_t>(tag) == expected) return ok;
    }
    return false;
  }

  grpc::ClientContext context_;
  grpc::CompletionQueue queue_;
  std::unique_ptr<grpc::GenericClientAsyncReaderWriter> stream_;
  grpc::ByteBuffer incoming_;
  grpc::Status status_;
  bool read_pending_ = false;
  bool ended_ = false;
  bool finished_ = false;
};

}  // namespace

Gateway::Gateway(GatewaySources sources, GatewayOptions options, MetricsRegistry& metrics)
    : sources_(std::move(sources)),
      options_(options),
      calls_(metrics.counter("telekern_http_gateway_calls_total",
                             "Calls through the HTTP gateway, by service, method and HTTP status",
                             {"service", "method", "code"})),
      local_calls_(metrics.counter("telekern_http_gateway_local_calls_total",
                                   "Gateway calls that took the local path (the module's handler "
                                   "run without a gRPC call), by service",
                                   {"service"})),
      limited_(metrics.counter("telekern_http_rate_limited_total",
                               "Gateway requests refused with 429, by the limit they passed",
                               {"limit"})),
      open_streams_gauge_(metrics
                              .gauge("telekern_http_gateway_open_streams",
                                     "Server streams (SSE/NDJSON) open through the gateway now")
                              .with({})),
      report_tickets_(options_.report_ticket_lifetime),
      credential_limiter_(options_.per_credential),
      address_limiter_(options_.per_address),
      rules_(options_.rate_limits) {}

bool Gateway::admit(const httplib::Request& request, httplib::Response& response) {
  // `which`: "address", "credential" or "route:<prefix>" (the metric's label).
  auto refuse = [&](std::chrono::milliseconds wait, const std::string& which, double per_second,
                    const std::string& key) {
    limited_.with({which}).inc();
    auto seconds = std::max<int64_t>(1, (wait.count() + 999) / 1000);
    response.set_header("Retry-After", std::to_string(seconds));
    std::string per = which.starts_with("route:") ? str_cat(" to ", which.substr(6), " per caller")
                                                  : str_cat(" per ", which);
    send_error(response, grpc::StatusCode::RESOURCE_EXHAUSTED,
               str_cat("more than ", std::to_string(static_cast<int64_t>(per_second)),
                       " requests a second", per, "; retry after ", std::to_string(seconds),
                       " s (limit: ", key, ")"));
  };
  if (auto wait = address_limiter_.acquire(request.remote_addr)) {
    refuse(*wait, "address", address_limiter_.limit().per_second, "http_gateway.rate_per_address");
    return false;
  }
  std::string credential = request.get_header_value("X-API-Key");
  if (credential.empty()) credential = request.get_header_value("Authorization");
  if (!credential.empty()) {
    if (auto wait = credential_limiter_.acquire(credential)) {
      refuse(*wait, "credential", credential_limiter_.limit().per_second,
             "http_gateway.rate_per_credential");
      return false;
    }
  }
  if (auto refused = rules_.acquire_route(request.path,
                                          credential.empty() ? request.remote_addr : credential)) {
    refuse(refused->wait, str_cat("route:", refused->scope), refused->per_second,
           str_cat("rate_limits.", refused->scope));
    return false;
  }
  return true;
}

Gateway::~Gateway() = default;

std::shared_ptr<const RouteTable> Gateway::routes() {
  // Keyed on the served services themselves rather than the manager's
  // generation, which moves just before a loaded module's routes are in place.
  auto services = sources_.services ? sources_.services() : std::vector<std::string>{};
  std::sort(services.begin(), services.end());
  std::lock_guard lock(routes_mutex_);
  if (routes_ && services == routes_services_) return routes_;
  routes_ = std::make_shared<const RouteTable>(RouteTable::build(services));
  routes_services_ = services;
  size_t before = seen_services_.size();
  seen_services_.insert(services.begin(), services.end());
  if (!seen_routes_ || seen_services_.size() != before) {
    seen_routes_ = std::make_shared<const RouteTable>(
        RouteTable::build(std::vector<std::string>(seen_services_.begin(), seen_services_.end())));
  }
  return routes_;
}

void Gateway::install(httplib::Server& server) {
  server.Get("/api/openapi.json", [this](const httplib::Request&, httplib::Response& response) {
    response.set_content(openapi_json(*routes(), options_.version), "application/json");
  });
  auto docs = [](const httplib::Request&, httplib::Response& response) {
    response.set_content(api_docs_page(), "text/html; charset=utf-8");
  };
  server.Get("/api/docs", docs);
  // Security headers on every answer; CORS only for configured origins.
  server.set_post_routing_handler(
      [this](const httplib::Request& request, httplib::Response& response) {
        response.set_header("X-Content-Type-Options", "nosniff");
        response.set_header("X-Frame-Options", "DENY");
        response.set_header("Referrer-Policy", "no-referrer");
        if (!response.has_header("Content-Security-Policy")) {  // the console sets a stricter one
          response.set_header("Content-Security-Policy",
                              "default-src 'self'; script-src 'self' 'unsafe-inline'; "
                              "style-src 'self' 'unsafe-inline'; frame-ancestors 'none'");
        }
        auto origin = request.get_header_value("Origin");
        if (!origin.empty() && std::find(options_.cors_origins.begin(), options_.cors_origins.end(),
                                         origin) != options_.cors_origins.end()) {
          response.set_header("Access-Control-Allow-Origin", origin);
          response.set_header("Vary", "Origin");
          response.set_header("Access-Control-Allow-Headers",
                              "Content-Type, Authorization, X-API-Key, Accept");
          response.set_header("Access-Control-Allow-Methods", "GET, POST, PUT, DELETE, PATCH");
        }
      });
  server.Options(R"(/.*)", [](const httplib::Request&, httplib::Response& response) {
    response.status = 204;  // preflight; the post-routing handler adds CORS when allowed
  });
  server.Get("/swagger/", docs);
  server.Get("/swagger", [](const httplib::Request&, httplib::Response& response) {
    response.set_redirect("/swagger/");
  });
  server.Post("/api/report-tickets",
              [this](const httplib::Request& request, httplib::Response& response) {
                issue_report_ticket(request, response);
              });
  server.Post(R"(/rpc/.*)", [this](const httplib::Request& request, httplib::Response& response) {
    serve_rpc(request, response);
  });
  auto route = [this](const httplib::Request& request, httplib::Response& response) {
    serve_route(request, response);
  };
  server.Get(R"(/.*)", route);
  server.Post(R"(/.*)", route);
  server.Put(R"(/.*)", route);
  server.Delete(R"(/.*)", route);
  server.Patch(R"(/.*)", route);
}

void Gateway::serve_rpc(const httplib::Request& request, httplib::Response& response) {
  if (!admit(request, response)) return;
  // /rpc/<package.Service>/<Method>
  std::string_view rest = std::string_view(request.path).substr(5);
  size_t slash = rest.find('/');
  if (slash == std::string_view::npos || slash == 0 || slash + 1 == rest.size() ||
      rest.find('/', slash + 1) != std::string_view::npos) {
    send_error(response, grpc::StatusCode::NOT_FOUND,
               str_cat("'", request.path,
                       "' is not /rpc/<package.Service>/<Method> (e.g. "
                       "/rpc/telekern.kernel.v1.Kernel/ListModules); see /api/openapi.json"));
    return;
  }
  std::string service_name(rest.substr(0, slash));
  std::string method_name(rest.substr(slash + 1));
  auto table = routes();
  const auto* service =
      google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(service_name);
  if (!table->serves(service_name) || service == nullptr) {
    send_error(
        response, grpc::StatusCode::NOT_FOUND,
        str_cat("service '", service_name, "' is not loaded; loaded services: ",
                join(std::vector<std::string>(table->services().begin(), table->services().end()),
                     ", "),
                " (load its module with `telesh module load NAME`)"));
    return;
  }
  const auto* method = service->FindMethodByName(method_name);
  if (method == nullptr) {
    std::vector<std::string> methods;
    for (int i = 0; i < service->method_count(); ++i) methods.push_back(service->method(i)->name());
    send_error(response, grpc::StatusCode::NOT_FOUND,
               str_cat("service '", service_name, "' has no method '", method_name,
                       "'; its methods: ", join(methods, ", ")));
    return;
  }
  call(*method, service_name, request, response, nullptr);
}

void Gateway::serve_route(const httplib::Request& request, httplib::Response& response) {
  if (!admit(request, response)) return;
  auto table = routes();
  std::vector<std::string> other_verbs;
  auto match = table->match(request.method, request.path, &other_verbs);
  if (match && request.method == "GET" && is_report_route(*match->route) &&
      request.has_param("ticket")) {
    auto grant = report_tickets_.redeem(request.get_param_value("ticket"), request.path);
    if (!grant.ok()) {
      send_error(response, grpc::StatusCode::UNAUTHENTICATED,
                 std::string(grant.status().message()));
      response.set_header("Cache-Control", "no-store");
      calls_
          .with({match->route->method->service()->full_name(), match->route->method->name(),
                 std::to_string(response.status)})
          .inc();
      return;
    }
    call(*match->route->method, match->route->method->service()->full_name(), request, response,
         &*match, &*grant);
    return;
  }
  if (match) {
    call(*match->route->method, match->route->method->service()->full_name(), request, response,
         &*match);
    return;
  }
  if (!other_verbs.empty()) {
    response.set_header("Allow", join(other_verbs, ", "));
    response.status = 405;
    response.set_content(error_json(grpc::StatusCode::UNIMPLEMENTED,
                                    str_cat(request.method, " ", request.path,
                                            " is not a route; use ", join(other_verbs, " or "))),
                         "application/json");
    return;
  }
  std::shared_ptr<const RouteTable> seen;
  {
    std::lock_guard lock(routes_mutex_);
    seen = seen_routes_;
  }
  if (seen) {
    if (auto gone = seen->match(request.method, request.path)) {
      send_error(response, grpc::StatusCode::NOT_FOUND,
                 str_cat(request.method, " ", request.path, " is served by ",
                         gone->route->method->service()->full_name(),
                         ", which is not loaded now; load its module (`telesh module load NAME`)"));
      return;
    }
  }
  // No route, now or of an unloaded module: the web console's, if any.
  if (options_.console && options_.console->serve(request, response)) return;
  send_error(response, grpc::StatusCode::NOT_FOUND,
             str_cat("no route for ", request.method, " ", request.path,
                     "; every RPC is at POST /rpc/<package.Service>/<Method>, the routes are "
                     "listed at /api/openapi.json"));
}

void Gateway::issue_report_ticket(const httplib::Request& request, httplib::Response& response) {
  if (!admit(request, response)) return;
  response.set_header("Cache-Control", "no-store");
  auto body = nlohmann::json::parse(request.body, nullptr, /*allow_exceptions=*/false);
  std::string path = body.is_object() && body.contains("path") && body["path"].is_string()
                         ? body["path"].get<std::string>()
                         : std::string();
  if (!plain_report_path(path)) {
    send_error(response, grpc::StatusCode::INVALID_ARGUMENT,
               "send {\"path\": \"/bench/runs/ID/report\"}: the path of a report route, "
               "without query or escapes");
    return;
  }
  auto table = routes();
  auto match = table->match("GET", path);
  if (!match || !is_report_route(*match->route)) {
    send_error(response, grpc::StatusCode::INVALID_ARGUMENT,
               str_cat("GET ", path,
                       " is not a report route of a loaded module (a route answering text/html); "
                       "tickets open reports only"));
    return;
  }
  // The credentials must hold now, for the report's own method and role (the
  // GET is checked again): a stale session hears it here, not in a new tab.
  if (sources_.authorize) {
    const auto& method = *match->route->method;
    auto allowed = sources_.authorize(
        request.get_header_value("X-API-Key"), request.get_header_value("Authorization"),
        str_cat("/", method.service()->full_name(), "/", method.name()));
    if (!allowed.ok()) {
      send_error(response, to_grpc(allowed).error_code(), std::string(allowed.message()));
      return;
    }
  }
  std::string ticket = report_tickets_.issue(
      {path, request.get_header_value("X-API-Key"), request.get_header_value("Authorization")});
  nlohmann::json answer = {{"url", str_cat(path, "?ticket=", ticket)},
                           {"expiresInSeconds", report_tickets_.lifetime().count()}};
  response.set_content(answer.dump(), "application/json");
}

namespace {

// A server stream whose route names a response_body field: the field of each
// message, back to back, as one raw body (a CSV export in chunks). An error
// after the first chunk aborts the transfer, so a client never takes a cut
// file for a whole one.
void stream_raw_body(const Route& route, std::shared_ptr<StreamCall> call,
                     std::optional<grpc::ByteBuffer> first, bool ended, std::shared_ptr<void> slot,
                     const google::protobuf::Descriptor& output, httplib::Response& response) {
  struct State {
    std::shared_ptr<StreamCall> call;
    std::optional<grpc::ByteBuffer> first;
    bool ended = false;
    std::shared_ptr<void> slot;
  };
  auto state =
      std::make_shared<State>(State{std::move(call), std::move(first), ended, std::move(slot)});
  set_download_name(route, response);
  const auto* field = route.response_body;
  response.set_chunked_content_provider(
      route.response_content_type,
      [state, field, output = &output](size_t, httplib::DataSink& sink) {
        auto end_stream = [&] {
          auto status = state->call->finish(false);
          if (!status.ok()) return false;  // abort: the body is incomplete
          sink.done();
          return true;
        };
        if (state->ended) return end_stream();
        grpc::ByteBuffer buffer;
        StreamCall::Next next;
        if (state->first) {
          buffer = std::move(*state->first);
          state->first.reset();
          next = StreamCall::Next::kMessage;
        } else {
          next = state->call->read(
              &buffer, std::chrono::system_clock::now() + std::chrono::milliseconds(250));
        }
        if (next == StreamCall::Next::kTimeout) return sink.is_writable();
        if (next == StreamCall::Next::kEnd) return end_stream();
        auto message = from_buffer(*output, buffer);
        if (!message) return false;
        std::string scratch;
        const std::string& chunk =
            message->GetReflection()->GetStringReference(*message, field, &scratch);
        return chunk.empty() || sink.write(chunk.data(), chunk.size());
      },
      [state](bool) { state->call->finish(/*cancel=*/true); });
}

}  // namespace

void Gateway::call(const MethodDescriptor& method, const std::string& service_name,
                   const httplib::Request& request, httplib::Response& response,
                   const RouteMatch* match, const ReportTickets::Grant* lent) {
  auto count = [&] {
    calls_.with({service_name, method.name(), std::to_string(response.status)}).inc();
  };
  auto channel = sources_.channel ? sources_.channel() : nullptr;
  if (!channel) {
    send_error(response, grpc::StatusCode::UNAVAILABLE,
               "the gRPC server is not serving yet; retry in a moment");
    count();
    return;
  }
  const std::string path = str_cat("/", service_name, "/", method.name());
  // Who may call comes first: a caller without the right learns that (401 or
  // 403), not what is wrong with a body it may not send.
  if (sources_.authorize) {
    auto allowed = lent ? sources_.authorize(lent->api_key, lent->authorization, path)
                        : sources_.authorize(request.get_header_value("X-API-Key"),
                                             request.get_header_value("Authorization"), path);
    if (!allowed.ok()) {
      send_error(response, to_grpc(allowed).error_code(), std::string(allowed.message()));
      count();
      return;
    }
  }
  HttpRequestParts parts;
  parts.body = request.body;
  parts.content_type = request.get_header_value("Content-Type");
  parts.query = parse_query(request.target);
  if (lent) parts.query.erase("ticket");
  BodyRule rule;
  if (match) {
    parts.path_bindings = match->bindings;
    rule.body = match->route->body;
    rule.ignored_query_parameters = match->route->ignored_query_parameters;
    rule.request_defaults = match->route->request_defaults;
  }

  std::vector<std::unique_ptr<Message>> requests;
  if (method.client_streaming()) {
    auto parsed = transcode_ndjson(*method.input_type(), parts);
    if (!parsed.ok()) {
      send_error(response, grpc::StatusCode::INVALID_ARGUMENT,
                 std::string(parsed.status().message()));
      count();
      return;
    }
    requests = std::move(*parsed);
  } else {
    auto parsed = transcode_request(*method.input_type(), parts, rule);
    if (!parsed.ok()) {
      send_error(response, grpc::StatusCode::INVALID_ARGUMENT,
                 std::string(parsed.status().message()));
      count();
      return;
    }
    requests.push_back(std::move(*parsed));
  }

  grpc::GenericStub stub(channel);
  const auto& output_type = *method.output_type();

  if (!method.client_streaming() && !method.server_streaming()) {
    std::shared_ptr<const Message> request_message = std::move(requests.front());
    std::shared_ptr<Message> answer(
        google::protobuf::MessageFactory::generated_factory()->GetPrototype(&output_type)->New());
    // First choice: the module's handler run right here, without gRPC.
    std::optional<grpc::Status> status;
    if (auto* local = sources_.local_calls ? sources_.local_calls() : nullptr) {
      std::string api_key = lent ? lent->api_key : request.get_header_value("X-API-Key");
      std::string authorization =
          lent ? lent->authorization : request.get_header_value("Authorization");
      status = local->call(path, {api_key, authorization, request.remote_addr}, request_message,
                           answer, options_.call_timeout);
      if (status) local_calls_.with({service_name}).inc();
    }
    if (!status) {
      grpc::ClientContext context;
      add_credentials(request, lent, context);
      context.set_deadline(std::chrono::system_clock::now() + options_.call_timeout);
      grpc::ByteBuffer request_buffer = to_buffer(*request_message);
      grpc::ByteBuffer response_buffer;
      std::promise<grpc::Status> done;
      auto finished = done.get_future();
      stub.UnaryCall(&context, path, grpc::StubOptions(), &request_buffer, &response_buffer,
                     [&done](grpc::Status status) { done.set_value(std::move(status)); });
      status = finished.get();
      if (status->ok()) {
        answer = from_buffer(output_type, response_buffer);
        if (!answer) {
          status = grpc::Status(grpc::StatusCode::INTERNAL,
                                str_cat("the response is not a valid ", output_type.full_name()));
        }
      }
    }
    if (!status->ok()) {
      send_error(response, status->error_code(), status->error_message());
    } else {
      const Message& message = *answer;
      response.status = 200;
      if (match && match->route->response_body != nullptr) {
        if (is_report_route(*match->route)) {
          send_report_page(*match->route, message, request, response);
          response.set_header("Content-Security-Policy", std::string(kReportContentSecurityPolicy));
          if (lent) response.set_header("Cache-Control", "no-store");
        } else {
          send_raw_body(*match->route, message, response);
        }
      } else {
        response.set_content(message_to_json(message), "application/json");
      }
    }
    count();
    return;
  }

  // A server stream holds an HTTP worker for as long as it is open: past
  // max_streams, refuse it so other requests always find a worker.
  std::shared_ptr<void> stream_slot;
  if (method.server_streaming()) {
    if (open_streams_.fetch_add(1) >= options_.max_streams) {
      open_streams_.fetch_sub(1);
      response.set_header("Retry-After", "5");
      send_error(response, grpc::StatusCode::UNAVAILABLE,
                 str_cat("too many open streams (http_gateway.max_streams = ", options_.max_streams,
                         "); close one, retry later, or raise http_gateway.max_streams together "
                         "with http_gateway.workers"));
      count();
      return;
    }
    open_streams_gauge_.inc();
    stream_slot = std::shared_ptr<void>(nullptr, [this](void*) {
      open_streams_.fetch_sub(1);
      open_streams_gauge_.dec();
    });
  }
  auto call = std::make_shared<StreamCall>();
  add_credentials(request, lent, call->context());
  if (!method.server_streaming()) {
    call->context().set_deadline(std::chrono::system_clock::now() + options_.call_timeout);
  }
  (void)call->begin(stub, path, requests);

  if (!method.server_streaming()) {
    // Client streaming: one answer after the whole NDJSON body.
    grpc::ByteBuffer buffer;
    std::unique_ptr<Message> answer;
    while (call->read(&buffer, std::chrono::system_clock::time_point::max()) ==
           StreamCall::Next::kMessage) {
      answer = from_buffer(output_type, buffer);
    }
    auto status = call->finish(false);
    if (!status.ok()) {
      send_error(response, status.error_code(), status.error_message());
    } else {
      response.status = 200;
      response.set_content(answer ? message_to_json(*answer) : "{}", "application/json");
    }
    count();
    return;
  }

  // Server streaming: errors before the first answer (credentials, role,
  // arguments) get their HTTP status; later ones end the stream with an
  // error event or line.
  bool sse = wants_sse(request);
  grpc::ByteBuffer first;
  auto first_read =
      call->read(&first, std::chrono::system_clock::now() + options_.stream_first_response);
  if (first_read == StreamCall::Next::kEnd) {
    auto status = call->finish(false);
    if (!status.ok()) {
      send_error(response, status.error_code(), status.error_message());
      count();
      return;
    }
  }
  response.set_header("Cache-Control", "no-cache");
  response.set_header("X-Accel-Buffering", "no");
  struct Pending {
    std::shared_ptr<StreamCall> call;
    std::optional<grpc::ByteBuffer> first;
    bool ended = false;
    std::shared_ptr<void> slot;  // freed with the last copy of this state
  };
  auto pending = std::make_shared<Pending>();
  pending->slot = std::move(stream_slot);
  pending->call = call;
  if (first_read == StreamCall::Next::kMessage) pending->first = std::move(first);
  pending->ended = first_read == StreamCall::Next::kEnd;
  const auto* output = &output_type;
  response.status = 200;
  count();
  if (match && match->route->response_body != nullptr) {
    stream_raw_body(*match->route, pending->call, std::move(pending->first), pending->ended,
                    std::move(pending->slot), *output, response);
    return;
  }
  response.set_chunked_content_provider(
      sse ? "text/event-stream" : "application/x-ndjson",
      [pending, output, sse](size_t, httplib::DataSink& sink) {
        auto frame = [sse](const std::string& json) {
          return sse ? sse_frame("", json) : str_cat(json, "\n");
        };
        auto end_stream = [&] {
          auto status = pending->call->finish(false);
          std::string text;
          if (!status.ok()) {
            std::string error = error_json(status.error_code(), status.error_message());
            text = sse ? sse_frame("error", error) : str_cat("{\"error\":", error, "}\n");
          } else if (sse) {
            text = sse_frame("end", "{}");
          }
          if (!text.empty()) sink.write(text.data(), text.size());
          sink.done();
          return true;
        };
        if (pending->ended) return end_stream();
        grpc::ByteBuffer buffer;
        StreamCall::Next next;
        if (pending->first) {
          buffer = std::move(*pending->first);
          pending->first.reset();
          next = StreamCall::Next::kMessage;
        } else {
          // Bounded, to check between waits that the client is still there.
          next = pending->call->read(
              &buffer, std::chrono::system_clock::now() + std::chrono::milliseconds(250));
        }
        // httplib does not notice a client that left; ask between waits.
        if (next == StreamCall::Next::kTimeout) return sink.is_writable();
        if (next == StreamCall::Next::kEnd) return end_stream();
        auto message = from_buffer(*output, buffer);
        std::string text = frame(message ? message_to_json(*message) : "{}");
        return sink.write(text.data(), text.size());
      },
      [pending](bool) {
        // Done or the client left: a call still running is cancelled.
        pending->call->finish(/*cancel=*/true);
      });
}

}  // namespace telekern::kernel::http
