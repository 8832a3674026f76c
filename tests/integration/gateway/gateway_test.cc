// The HTTP/JSON gateway on a real telekernd with the broker: every RPC over
// POST /rpc/..., the seed's broker routes with curl's shapes, SSE streams,
// error shapes and status codes, auth (401/403, API key as bearer), bad
// input, and routes that follow modules as they load and unload.
#include <google/protobuf/descriptor.h>
#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "telekern/broker/v1/broker.pb.h"
#include "telekern/kernel/v1/kernel.grpc.pb.h"
#include "telekern/options/v1/options.pb.h"
#include "tests/support/auth_config.h"
#include "tests/support/telekernd.h"

namespace telekern::testing {
namespace {

using nlohmann::json;

int http_port(const Telekernd& daemon) {
  return std::stoi(daemon.http_address().substr(daemon.http_address().rfind(':') + 1));
}

struct Reply {
  int status = 0;
  std::string body;
  json parsed() const { return json::parse(body, nullptr, false); }
};

// One daemon with auth and the broker for the whole suite.
class GatewayTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    daemon_ = new Telekernd({.config_yaml = auth_config_yaml(),
                             .modules_dir = std::string(TELEKERN_BUILD_DIR) + "/modules",
                             .load = {"broker"}});
  }
  static void TearDownTestSuite() {
    delete daemon_;
    daemon_ = nullptr;
  }
  void SetUp() override { ASSERT_TRUE(daemon_->ready()) << daemon_->log(); }

  static httplib::Client client() {
    httplib::Client client("127.0.0.1", http_port(*daemon_));
    client.set_read_timeout(30, 0);
    return client;
  }
  static Reply send(const std::string& verb, const std::string& path, const std::string& body,
                    httplib::Headers headers = {},
                    const std::string& content_type = "application/json") {
    auto http = client();
    httplib::Result result = verb == "GET"      ? http.Get(path, headers)
                             : verb == "DELETE" ? http.Delete(path, headers, body, content_type)
                             : verb == "PUT"    ? http.Put(path, headers, body, content_type)
                                                : http.Post(path, headers, body, content_type);
    if (!result) return {-1, httplib::to_string(result.error())};
    return {result->status, result->body};
  }
  static httplib::Headers operator_key() { return {{"X-API-Key", kOperatorKey}}; }
  static httplib::Headers viewer_key() { return {{"X-API-Key", kViewerKey}}; }
  static httplib::Headers admin_bearer() {
    auto reply = send("POST", "/api/auth/login",
                      json{{"user", kAdminUser}, {"password", kAdminPassword}}.dump());
    EXPECT_EQ(reply.status, 200) << reply.body;
    return {{"Authorization", "Bearer " + reply.parsed().value("token", "")}};
  }

  static Telekernd* daemon_;
};
Telekernd* GatewayTest::daemon_ = nullptr;

void expect_error_shape(const Reply& reply, int http_status, const std::string& status,
                        const std::string& mentions) {
  EXPECT_EQ(reply.status, http_status) << reply.body;
  json body = reply.parsed();
  ASSERT_TRUE(body.is_object()) << reply.body;
  EXPECT_EQ(body.value("status", ""), status) << reply.body;
  EXPECT_TRUE(body.contains("code")) << reply.body;
  EXPECT_NE(body.value("message", "").find(mentions), std::string::npos)
      << "message should mention '" << mentions << "': " << reply.body;
}

const google::protobuf::ServiceDescriptor* service(const std::string& name) {
  // Naming a message of each file links its descriptors into this binary.
  (void)telekern::broker::v1::ListTopicsRequest::descriptor();
  (void)telekern::kernel::v1::ListModulesRequest::descriptor();
  return google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(name);
}

TEST_F(GatewayTest, EveryKernelAndBrokerMethodIsReachableOverRpc) {
  auto admin = admin_bearer();
  for (const auto* descriptor :
       {service("telekern.kernel.v1.Kernel"), service("telekern.broker.v1.Broker")}) {
    ASSERT_NE(descriptor, nullptr);
    for (int i = 0; i < descriptor->method_count(); ++i) {
      const auto* method = descriptor->method(i);
      std::string body = method->client_streaming() ? "" : "{}";
      if (method->name() == "Consume") body = R"({"topic":"absent-topic","max":1,"wait":"1s"})";
      auto reply =
          send("POST", "/rpc/" + descriptor->full_name() + "/" + method->name(), body, admin);
      SCOPED_TRACE(method->full_name() + " -> " + std::to_string(reply.status) + " " + reply.body);
      ASSERT_GT(reply.status, 0);
      // The gateway found and called it: no routing 404, a JSON answer.
      EXPECT_EQ(reply.body.find("is not loaded"), std::string::npos);
      EXPECT_EQ(reply.body.find("has no method"), std::string::npos);
      if (method->options().GetExtension(options::v1::min_role) != options::v1::ROLE_PUBLIC) {
        EXPECT_NE(reply.status, 401);  // Login with {} is refused, rightly
      }
      EXPECT_NE(reply.status, 403);
      if (!method->server_streaming() && !reply.body.empty()) {
        EXPECT_TRUE(reply.parsed().is_object());
      }
    }
  }
}

TEST_F(GatewayTest, SeedCurlLinesProduceConsumeAckAndListTopics) {
  auto created = send("POST", "/topics", R"({"topic":"telemetry","partitions":2})", operator_key());
  ASSERT_EQ(created.status, 200) << created.body;
  // curl -X POST 'host/produce?topic=telemetry&partition=0' -d '{"gpu_id":3}'
  auto produced = send("POST", "/produce?topic=telemetry&partition=0", R"({"gpu_id":3})",
                       operator_key(), "application/x-www-form-urlencoded");
  ASSERT_EQ(produced.status, 200) << produced.body;
  EXPECT_EQ(produced.parsed()["appends"][0].value("partition", 99), 0) << produced.body;

  // curl -N -H 'Accept: text/event-stream' 'host/consume?topic=telemetry&partition=0&group=g'
  std::string events;
  auto http = client();
  auto headers = operator_key();
  headers.emplace("Accept", "text/event-stream");
  auto result = http.Get("/consume?topic=telemetry&partition=0&group=seed", headers,
                         [&](const char* data, size_t length) {
                           events.append(data, length);
                           // Stop (disconnect) once a whole event arrived.
                           return events.find("\n\n") == std::string::npos;
                         });
  ASSERT_NE(events.find("data: "), std::string::npos) << events;
  std::string data = events.substr(events.find("data: ") + 6);
  data = data.substr(0, data.find('\n'));
  json event = json::parse(data, nullptr, false);
  ASSERT_TRUE(event.is_object()) << data;
  auto record = event["records"][0];
  // The message as the producer wrote it, not base64 (the route's value_as_text).
  EXPECT_EQ(record.value("valueText", ""), R"({"gpu_id":3})") << data;
  EXPECT_EQ(record.value("value", "absent"), "") << data;  // the gateway prints defaults
  EXPECT_EQ(record.value("deliveryAttempt", 0), 1);

  // curl -X POST 'host/ack?topic=telemetry&partition=0&group=seed' -d '{"offset":0}'
  auto acked = send("POST", "/ack?topic=telemetry&partition=0&group=seed", R"({"offset":"0"})",
                    operator_key(), "application/x-www-form-urlencoded");
  ASSERT_EQ(acked.status, 200) << acked.body;
  EXPECT_EQ(acked.parsed().value("acked", 0), 1) << acked.body;

  // curl -H 'X-API-Key: KEY' host/topics, and with the key as a bearer token.
  for (const auto& credential :
       {viewer_key(), httplib::Headers{{"Authorization", std::string("Bearer ") + kViewerKey}}}) {
    auto topics = send("GET", "/topics", "", credential);
    ASSERT_EQ(topics.status, 200) << topics.body;
    EXPECT_NE(topics.body.find("\"telemetry\""), std::string::npos) << topics.body;
  }
  auto described = send("GET", "/topics/telemetry", "", viewer_key());
  EXPECT_EQ(described.status, 200) << described.body;
}

TEST_F(GatewayTest, ADisconnectedStreamClientCancelsItsCall) {
  ASSERT_EQ(send("POST", "/topics", R"({"topic":"idle"})", operator_key()).status, 200);
  auto cancelled = [] {
    auto metrics = daemon_->http_get("/metrics", {{"X-API-Key", kViewerKey}}).second;
    std::string series =
        R"(telekern_rpc_requests_total{service="telekern.broker.v1.Broker",method="Consume",code="CANCELLED"} )";
    auto at = metrics.find(series);
    return at == std::string::npos ? 0 : std::stoi(metrics.substr(at + series.size()));
  };
  int before = cancelled();
  std::string received;
  auto http = client();
  // NDJSON: the first line is the member announcement; leave after it.
  auto result = http.Get("/consume?topic=idle&group=leaver", operator_key(),
                         [&](const char* data, size_t length) {
                           received.append(data, length);
                           return received.find('\n') == std::string::npos;
                         });
  EXPECT_NE(received.find("\"member\""), std::string::npos) << received;
  EXPECT_TRUE(wait_for([&] { return cancelled() > before; }, std::chrono::seconds(20)))
      << "the Consume call kept running after its HTTP client left";
  EXPECT_EQ(daemon_->http_get("/health").first, 200);
}

TEST_F(GatewayTest, ErrorsHaveJsonShapesAndMatchingStatus) {
  auto op = operator_key();
  expect_error_shape(send("POST", "/rpc/telekern.nothing.v1.Nope/Call", "{}", op), 404, "NOT_FOUND",
                     "telekern.nothing.v1.Nope");
  expect_error_shape(send("POST", "/rpc/telekern.broker.v1.Broker/Nope", "{}", op), 404,
                     "NOT_FOUND", "Nope");
  expect_error_shape(send("GET", "/no/such/route", "", op), 404, "NOT_FOUND", "/no/such/route");
  expect_error_shape(send("GET", "/topics/absent-topic", "", op), 404, "NOT_FOUND", "absent-topic");
  // Malformed JSON, unknown fields (nested too), wrong types.
  expect_error_shape(send("POST", "/rpc/telekern.broker.v1.Broker/Produce", R"({"topic":)", op),
                     400, "INVALID_ARGUMENT", "not valid JSON");
  expect_error_shape(
      send("POST", "/rpc/telekern.broker.v1.Broker/Produce", R"({"topic":"t","bogus":1})", op), 400,
      "INVALID_ARGUMENT", "bogus");
  expect_error_shape(send("POST", "/rpc/telekern.broker.v1.Broker/Produce",
                          R"({"topic":"t","records":[{"nope":1}]})", op),
                     400, "INVALID_ARGUMENT", "records[0].nope");
  expect_error_shape(send("POST", "/rpc/telekern.broker.v1.Broker/Produce",
                          R"({"topic":"t","partition":"x"})", op),
                     400, "INVALID_ARGUMENT", "partition");
  expect_error_shape(send("POST", "/rpc/telekern.broker.v1.Broker/Produce", R"([1,2])", op), 400,
                     "INVALID_ARGUMENT", "JSON object");
  expect_error_shape(send("GET", "/topics?bogus=1", "", op), 400, "INVALID_ARGUMENT", "bogus");
  // Found by the transcoder fuzz target: a parameter named "." crashed the daemon.
  expect_error_shape(send("GET", "/topics?.=1", "", op), 400, "INVALID_ARGUMENT", "names no field");
  expect_error_shape(send("GET", "/consume?topic=t&group=g&max_batch=many", "", op), 400,
                     "INVALID_ARGUMENT", "max_batch");
  // Invalid UTF-8 in a JSON string and in a raw string body.
  expect_error_shape(send("POST", "/rpc/telekern.broker.v1.Broker/Produce",
                          std::string("{\"topic\":\"t\xff\xfe\"}"), op),
                     400, "INVALID_ARGUMENT", "UTF-8");
  expect_error_shape(
      send("POST", "/produce?topic=t", std::string("\xc3\x28\xff"), op, "text/plain"), 400,
      "INVALID_ARGUMENT", "UTF-8");
  // Path traversal is a topic name like any other, never a file.
  auto traversal = send("GET", "/topics/..%2F..%2Fetc%2Fpasswd", "", op);
  EXPECT_TRUE(traversal.status == 404 || traversal.status == 400) << traversal.body;
  EXPECT_EQ(traversal.body.find("root:"), std::string::npos);
  // Oversized body.
  auto huge = send("POST", "/rpc/telekern.broker.v1.Broker/Produce", std::string(5 << 20, 'x'), op);
  EXPECT_EQ(huge.status, 413) << huge.body.substr(0, 200);
  EXPECT_EQ(send("POST", "/topics", "{}", op).status, 400);
  EXPECT_EQ(daemon_->http_get("/health").first, 200);
}

TEST_F(GatewayTest, EveryRouteNeedsCredentialsAndItsRole) {
  int routes = 0;
  for (const std::string name : {"telekern.kernel.v1.Kernel", "telekern.broker.v1.Broker"}) {
    const auto* descriptor = service(name);
    ASSERT_NE(descriptor, nullptr);
    for (int i = 0; i < descriptor->method_count(); ++i) {
      const auto* method = descriptor->method(i);
      auto role = method->options().GetExtension(options::v1::min_role);
      if (role == options::v1::ROLE_PUBLIC) continue;
      std::vector<std::pair<std::string, std::string>> targets = {
          {"POST", "/rpc/" + name + "/" + method->name()}};
      if (method->options().HasExtension(options::v1::http)) {
        const auto& rule = method->options().GetExtension(options::v1::http);
        std::string path = !rule.get().empty()       ? rule.get()
                           : !rule.post().empty()    ? rule.post()
                           : !rule.delete_().empty() ? rule.delete_()
                                                     : rule.put();
        std::string verb = !rule.get().empty()       ? "GET"
                           : !rule.post().empty()    ? "POST"
                           : !rule.delete_().empty() ? "DELETE"
                                                     : "PUT";
        auto brace = path.find('{');
        if (brace != std::string::npos) path = path.substr(0, brace) + "some-topic";
        // Query parameters only where the request has such fields.
        std::string query;
        const auto* input = method->input_type();
        if (input->FindFieldByName("topic") && brace == std::string::npos) query += "&topic=t";
        if (input->FindFieldByName("group")) query += "&group=g";
        if (!query.empty()) query[0] = '?';
        targets.emplace_back(verb, path + query);
      }
      for (const auto& [verb, path] : targets) {
        ++routes;
        SCOPED_TRACE(verb + " " + path);
        std::string body = method->client_streaming() ? "" : "{}";
        if (!path.starts_with("/rpc/") &&
            method->options().GetExtension(options::v1::http).body().empty()) {
          body = "";
        }
        if (verb == "POST" && path.starts_with("/produce")) body = "\"text\"";
        expect_error_shape(send(verb, path, verb == "GET" ? "" : body), 401, "UNAUTHENTICATED",
                           "credentials");
        expect_error_shape(
            send(verb, path, verb == "GET" ? "" : body, {{"X-API-Key", "not-a-key"}}), 401,
            "UNAUTHENTICATED", "API key");
        if (role > options::v1::ROLE_VIEWER) {
          expect_error_shape(send(verb, path, verb == "GET" ? "" : body, viewer_key()), 403,
                             "PERMISSION_DENIED", "viewer");
        }
        // Credentials are checked before the body is read: a caller without
        // the right learns that, not what is wrong with the body.
        if (verb != "GET") {
          expect_error_shape(send(verb, path, "{not json"), 401, "UNAUTHENTICATED", "credentials");
          if (role > options::v1::ROLE_VIEWER) {
            expect_error_shape(send(verb, path, "{not json", viewer_key()), 403,
                               "PERMISSION_DENIED", "viewer");
          }
        }
      }
    }
  }
  EXPECT_GT(routes, 20);
}

// Every "$ref" in `node` names a schema under components.schemas.
void expect_refs_resolve(const json& node, const json& schemas, int* refs) {
  if (node.is_object()) {
    for (const auto& [key, value] : node.items()) {
      if (key == "$ref") {
        ++*refs;
        std::string name =
            value.get<std::string>().substr(std::string("#/components/schemas/").size());
        EXPECT_TRUE(schemas.contains(name)) << "dangling $ref " << value;
      } else {
        expect_refs_resolve(value, schemas, refs);
      }
    }
  } else if (node.is_array()) {
    for (const auto& value : node) expect_refs_resolve(value, schemas, refs);
  }
}

TEST_F(GatewayTest, OpenApiListsEveryLoadedMethodAndTheDocsPageWorksOffline) {
  auto reply = send("GET", "/api/openapi.json", "");
  ASSERT_EQ(reply.status, 200) << reply.body;
  json document = reply.parsed();
  ASSERT_TRUE(document.is_object());
  EXPECT_EQ(document.value("openapi", ""), "3.0.3");
  ASSERT_TRUE(document["info"].contains("title"));
  ASSERT_TRUE(document["info"].contains("version"));
  const json& paths = document["paths"];
  for (const std::string name : {"telekern.kernel.v1.Kernel", "telekern.broker.v1.Broker"}) {
    const auto* descriptor = service(name);
    ASSERT_NE(descriptor, nullptr);
    for (int i = 0; i < descriptor->method_count(); ++i) {
      std::string path = "/rpc/" + name + "/" + descriptor->method(i)->name();
      ASSERT_TRUE(paths.contains(path)) << path;
      const json& op = paths[path]["post"];
      EXPECT_TRUE(op.contains("x-min-role")) << path;
      EXPECT_TRUE(op["responses"].contains("200")) << path;
      EXPECT_TRUE(op["responses"].contains("401")) << path;
    }
  }
  for (const auto& [path, verb] :
       std::vector<std::pair<std::string, std::string>>{{"/topics", "get"},
                                                        {"/produce", "post"},
                                                        {"/consume", "get"},
                                                        {"/ack", "post"},
                                                        {"/topics/{topic}", "get"},
                                                        {"/api/v1/modules", "get"}}) {
    EXPECT_TRUE(paths.contains(path) && paths[path].contains(verb)) << verb << " " << path;
  }
  EXPECT_EQ(paths["/consume"]["get"].value("x-min-role", ""), "operator");
  // Structural validity: unique operationIds, path parameters declared, refs resolve.
  std::set<std::string> operation_ids;
  for (const auto& [path, operations] : paths.items()) {
    for (const auto& [verb, op] : operations.items()) {
      EXPECT_TRUE(operation_ids.insert(op.value("operationId", "")).second)
          << "duplicate operationId at " << verb << " " << path;
      if (path.find('{') != std::string::npos) {
        ASSERT_TRUE(op.contains("parameters")) << path;
        bool declared = false;
        for (const auto& parameter : op["parameters"]) declared |= parameter["in"] == "path";
        EXPECT_TRUE(declared) << path;
      }
    }
  }
  int refs = 0;
  expect_refs_resolve(document, document["components"]["schemas"], &refs);
  EXPECT_GT(refs, 20);

  for (const std::string page : {"/api/docs", "/swagger/"}) {
    auto docs = send("GET", page, "");
    EXPECT_EQ(docs.status, 200) << page;
    EXPECT_NE(docs.body.find("/api/openapi.json"), std::string::npos) << page;
    EXPECT_EQ(docs.body.find("<script src="), std::string::npos) << "no external scripts";
    EXPECT_EQ(docs.body.find("https://"), std::string::npos) << "works offline";
  }
}

// A daemon of its own: it unloads and loads the broker.
TEST(GatewayModulesTest, RoutesFollowModulesLoadedAndUnloadedAtRuntime) {
  Telekernd daemon({.config_yaml = auth_config_yaml(),
                    .modules_dir = std::string(TELEKERN_BUILD_DIR) + "/modules",
                    .load = {"broker"}});
  ASSERT_TRUE(daemon.ready()) << daemon.log();
  httplib::Client http("127.0.0.1", http_port(daemon));
  http.set_read_timeout(30, 0);
  auto login =
      http.Post("/api/auth/login", json{{"user", kAdminUser}, {"password", kAdminPassword}}.dump(),
                "application/json");
  ASSERT_TRUE(login);
  ASSERT_EQ(login->status, 200) << login->body;
  httplib::Headers admin{
      {"Authorization", "Bearer " + json::parse(login->body).value("token", "")}};
  auto get_topics = [&] {
    auto result = http.Get("/topics", admin);
    return result ? std::make_pair(result->status, result->body)
                  : std::make_pair(-1, std::string());
  };
  ASSERT_EQ(get_topics().first, 200);

  auto unloaded = http.Post("/rpc/telekern.kernel.v1.Kernel/UnloadModule", admin,
                            R"({"name":"broker"})", "application/json");
  ASSERT_TRUE(unloaded);
  ASSERT_EQ(unloaded->status, 200) << unloaded->body;
  auto [status, body] = get_topics();
  EXPECT_EQ(status, 404) << body;
  EXPECT_NE(body.find("telekern.broker.v1.Broker"), std::string::npos) << body;
  auto rpc =
      http.Post("/rpc/telekern.broker.v1.Broker/ListTopics", admin, "{}", "application/json");
  ASSERT_TRUE(rpc);
  EXPECT_EQ(rpc->status, 404) << rpc->body;
  EXPECT_NE(rpc->body.find("telekern.broker.v1.Broker"), std::string::npos) << rpc->body;

  auto loaded = http.Post("/api/v1/modules", admin, "", "application/json");  // not a route
  ASSERT_TRUE(loaded);
  EXPECT_EQ(loaded->status, 405) << loaded->body;
  loaded = http.Post("/rpc/telekern.kernel.v1.Kernel/LoadModule", admin, R"({"name":"broker"})",
                     "application/json");
  ASSERT_TRUE(loaded);
  ASSERT_EQ(loaded->status, 200) << loaded->body;
  EXPECT_EQ(get_topics().first, 200);
  auto modules = http.Get("/api/v1/modules", admin);
  ASSERT_TRUE(modules);
  EXPECT_NE(modules->body.find("\"broker\""), std::string::npos) << modules->body;
}

}  // namespace
}  // namespace telekern::testing

namespace telekern::testing {
namespace {

// A daemon of its own with a tiny per-credential limit and one CORS origin.
TEST(GatewayLimitsTest, ABurstPastTheLimitGets429WhileOthersAreServed) {
  Telekernd daemon({.config_yaml = auth_config_yaml() +
                                   "http_gateway:\n"
                                   "  rate_per_credential: 0.1\n"
                                   "  cors_origins: [\"http://console.example\"]\n",
                    .modules_dir = std::string(TELEKERN_BUILD_DIR) + "/modules",
                    .load = {"broker"}});
  ASSERT_TRUE(daemon.ready()) << daemon.log();
  httplib::Client http("127.0.0.1", http_port(daemon));
  httplib::Headers viewer{{"X-API-Key", kViewerKey}};
  int limited = 0;
  std::string retry_after;
  for (int i = 0; i < 5; ++i) {
    auto result = http.Get("/topics", viewer);
    ASSERT_TRUE(result);
    if (result->status == 429) {
      ++limited;
      retry_after = result->get_header_value("Retry-After");
      EXPECT_NE(result->body.find("RESOURCE_EXHAUSTED"), std::string::npos) << result->body;
      EXPECT_NE(result->body.find("rate_per_credential"), std::string::npos) << result->body;
    }
  }
  // Burst 1 at 0.1/s: at most one more token can come in while 5 calls run.
  EXPECT_GE(limited, 3);
  EXPECT_FALSE(retry_after.empty());
  EXPECT_GE(std::stoi(retry_after.empty() ? "0" : retry_after), 1);
  // Another credential is served; the daemon stays healthy and counts it.
  auto other = http.Get("/topics", {{"X-API-Key", kOperatorKey}});
  ASSERT_TRUE(other);
  EXPECT_EQ(other->status, 200) << other->body;
  EXPECT_EQ(daemon.http_get("/health").first, 200);
  auto metrics = daemon.http_get("/metrics", {{"X-API-Key", kOperatorKey}}).second;
  EXPECT_NE(metrics.find("telekern_http_rate_limited_total{limit=\"credential\"}"),
            std::string::npos);

  // CORS: an allowed origin gets the headers, another none; security headers always.
  auto allowed = http.Get("/api/openapi.json", {{"Origin", "http://console.example"}});
  ASSERT_TRUE(allowed);
  EXPECT_EQ(allowed->get_header_value("Access-Control-Allow-Origin"), "http://console.example");
  EXPECT_EQ(allowed->get_header_value("X-Content-Type-Options"), "nosniff");
  auto foreign = http.Get("/api/openapi.json", {{"Origin", "http://evil.example"}});
  ASSERT_TRUE(foreign);
  EXPECT_FALSE(foreign->has_header("Access-Control-Allow-Origin"));
  EXPECT_EQ(foreign->get_header_value("X-Frame-Options"), "DENY");
}

// gRPC callers are limited per credential in the call gate too.
TEST(GatewayLimitsTest, GrpcCallsPastTheLimitGetResourceExhausted) {
  Telekernd daemon({.config_yaml = auth_config_yaml() + "grpc_rate_per_credential: 0.1\n",
                    .modules_dir = std::string(TELEKERN_BUILD_DIR) + "/modules",
                    .load = {"broker"}});
  ASSERT_TRUE(daemon.ready()) << daemon.log();
  auto kernel = telekern::kernel::v1::Kernel::NewStub(daemon.channel());
  auto call = [&](const char* key) {
    grpc::ClientContext context;
    context.AddMetadata("x-api-key", key);
    telekern::kernel::v1::ListModulesResponse response;
    return kernel->ListModules(&context, {}, &response);
  };
  int exhausted = 0;
  std::string message;
  for (int i = 0; i < 5; ++i) {
    auto status = call(kViewerKey);
    if (status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED) {
      ++exhausted;
      message = status.error_message();
    }
  }
  EXPECT_GE(exhausted, 3);
  EXPECT_NE(message.find("grpc_rate_per_credential"), std::string::npos) << message;
  EXPECT_TRUE(call(kOperatorKey).ok()) << "another credential is served";
  // The gateway's calls count against the same credential: 429 over HTTP.
  httplib::Client http("127.0.0.1", http_port(daemon));
  auto result = http.Get("/api/v1/modules", {{"X-API-Key", kViewerKey}});
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, 429) << result->body;
  EXPECT_TRUE(result->has_header("Retry-After"));
}

// rate_limits: a route family has its own buckets on HTTP; a service or
// method rule holds for gRPC and gateway calls alike; other families,
// methods and credentials are not affected.
TEST(GatewayLimitsTest, RouteFamiliesAndMethodsHaveTheirOwnLimits) {
  Telekernd daemon({.config_yaml = auth_config_yaml() +
                                   "rate_limits:\n"
                                   "  /topics: 0.1\n"
                                   "  telekern.kernel.v1.Kernel/ListModules: 0.1\n",
                    .modules_dir = std::string(TELEKERN_BUILD_DIR) + "/modules",
                    .load = {"broker"}});
  ASSERT_TRUE(daemon.ready()) << daemon.log();
  httplib::Client http("127.0.0.1", http_port(daemon));
  const httplib::Headers viewer{{"X-API-Key", kViewerKey}};
  int limited = 0;
  for (int i = 0; i < 5; ++i) {
    auto result = http.Get("/topics", viewer);
    ASSERT_TRUE(result);
    if (result->status == 429) {
      ++limited;
      EXPECT_NE(result->body.find("rate_limits./topics"), std::string::npos) << result->body;
      EXPECT_TRUE(result->has_header("Retry-After"));
    }
  }
  EXPECT_GE(limited, 3);
  auto groups = http.Get("/groups", viewer);  // another family, same credential
  ASSERT_TRUE(groups);
  EXPECT_EQ(groups->status, 200) << groups->body;
  auto metrics = daemon.http_get("/metrics", {{"X-API-Key", kOperatorKey}}).second;
  EXPECT_NE(metrics.find("telekern_http_rate_limited_total{limit=\"route:/topics\"}"),
            std::string::npos);

  auto kernel = telekern::kernel::v1::Kernel::NewStub(daemon.channel());
  auto list_modules = [&](const char* key) {
    grpc::ClientContext context;
    context.AddMetadata("x-api-key", key);
    telekern::kernel::v1::ListModulesResponse response;
    return kernel->ListModules(&context, {}, &response);
  };
  int exhausted = 0;
  std::string message;
  for (int i = 0; i < 5; ++i) {
    auto status = list_modules(kViewerKey);
    if (status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED) {
      ++exhausted;
      message = status.error_message();
    }
  }
  EXPECT_GE(exhausted, 3);
  EXPECT_NE(message.find("rate_limits.telekern.kernel.v1.Kernel/ListModules"), std::string::npos)
      << message;
  EXPECT_TRUE(list_modules(kOperatorKey).ok()) << "another credential is served";
  {
    grpc::ClientContext context;
    context.AddMetadata("x-api-key", kViewerKey);
    telekern::kernel::v1::GetInfoResponse info;
    EXPECT_TRUE(kernel->GetInfo(&context, {}, &info).ok()) << "another method is served";
  }
  // The gateway's call to that method counts against the same rule.
  auto modules = http.Get("/api/v1/modules", viewer);
  ASSERT_TRUE(modules);
  EXPECT_EQ(modules->status, 429) << modules->body;
}

// A route with response_body sends that field as the HTTP body (CSV exports,
// HTML reports): the echo fixture's Say as a CSV download.
TEST(GatewayRawBodyTest, AResponseBodyFieldIsSentAsTheWholeBodyWithItsType) {
  Telekernd daemon({.config_yaml = auth_config_yaml(),
                    .modules_dir = std::string(TELEKERN_BUILD_DIR) + "/test-modules",
                    .load = {"echo"}});
  ASSERT_TRUE(daemon.ready()) << daemon.log();
  httplib::Client http("127.0.0.1", http_port(daemon));
  http.set_read_timeout(30, 0);
  const std::string csv = "node,cpu\nn1,\"12,5\"\n";
  auto result = http.Get("/test/v1/say.csv?message=" + httplib::detail::encode_query_param(csv),
                         {{"X-API-Key", kViewerKey}});
  ASSERT_TRUE(result);
  ASSERT_EQ(result->status, 200) << result->body;
  EXPECT_EQ(result->body, csv);
  EXPECT_EQ(result->get_header_value("Content-Type"), "text/csv; charset=utf-8");
  EXPECT_EQ(result->get_header_value("Content-Disposition"), "attachment; filename=\"say.csv\"");

  // Errors stay JSON, and the RPC path still answers JSON.
  auto refused = http.Get("/test/v1/say.csv?message=x");
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 401) << refused->body;
  EXPECT_NE(refused->get_header_value("Content-Type").find("application/json"), std::string::npos);
  auto rpc = http.Post("/rpc/telekern.testing.v1.Echo/Say", {{"X-API-Key", kViewerKey}},
                       R"({"message":"hi"})", "application/json");
  ASSERT_TRUE(rpc);
  EXPECT_EQ(json::parse(rpc->body).value("message", ""), "hi") << rpc->body;

  // A server stream's field of every message, back to back, as one body.
  auto lines = http.Get("/test/v1/count.txt?count=5", {{"X-API-Key", kViewerKey}});
  ASSERT_TRUE(lines);
  ASSERT_EQ(lines->status, 200) << lines->body;
  EXPECT_EQ(lines->body, "0\n1\n2\n3\n4\n");
  EXPECT_EQ(lines->get_header_value("Content-Type"), "text/plain; charset=utf-8");

  auto openapi = http.Get("/api/openapi.json", {{"X-API-Key", kViewerKey}});
  ASSERT_TRUE(openapi);
  json content =
      json::parse(openapi->body)["paths"]["/test/v1/say.csv"]["get"]["responses"]["200"]["content"];
  EXPECT_TRUE(content.contains("text/csv; charset=utf-8")) << content.dump();
}

// Each open stream holds an HTTP worker: past http_gateway.max_streams a new
// stream gets 503 while other calls are still served, and a slot frees when
// a stream ends.
TEST(GatewayLimitsTest, StreamsPastMaxStreamsGet503WhileOtherCallsAreServed) {
  Telekernd daemon({.config_yaml = auth_config_yaml() + "http_gateway:\n"
                                                        "  workers: 4\n"
                                                        "  max_streams: 1\n",
                    .modules_dir = std::string(TELEKERN_BUILD_DIR) + "/test-modules",
                    .load = {"echo"}});
  ASSERT_TRUE(daemon.ready()) << daemon.log();
  const httplib::Headers viewer{{"X-API-Key", kViewerKey}, {"Accept", "text/event-stream"}};
  const std::string stream_path = "/rpc/telekern.testing.v1.Echo/Count";
  const std::string long_stream = R"({"count":600,"interval_ms":50})";

  std::mutex mutex;
  std::condition_variable changed;
  bool receiving = false;
  std::atomic<bool> leave{false};
  std::thread holder([&] {
    httplib::Client http("127.0.0.1", http_port(daemon));
    httplib::Request request;
    request.method = "POST";
    request.path = stream_path;
    request.headers = viewer;
    request.body = long_stream;
    request.set_header("Content-Type", "application/json");
    request.content_receiver = [&](const char*, size_t, uint64_t, uint64_t) {
      {
        std::lock_guard lock(mutex);
        receiving = true;
      }
      changed.notify_all();
      return !leave.load();
    };
    (void)http.send(request);
  });
  {
    std::unique_lock lock(mutex);
    ASSERT_TRUE(changed.wait_for(lock, std::chrono::seconds(20), [&] { return receiving; }));
  }

  httplib::Client http("127.0.0.1", http_port(daemon));
  http.set_read_timeout(30, 0);
  auto refused = http.Post(stream_path, viewer, R"({"count":1})", "application/json");
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 503) << refused->body;
  EXPECT_NE(refused->body.find("max_streams"), std::string::npos) << refused->body;
  EXPECT_FALSE(refused->get_header_value("Retry-After").empty());
  auto unary = http.Post("/rpc/telekern.testing.v1.Echo/Say", {{"X-API-Key", kViewerKey}},
                         R"({"message":"still served"})", "application/json");
  ASSERT_TRUE(unary);
  EXPECT_EQ(unary->status, 200) << unary->body;

  leave = true;
  holder.join();
  // The server notices the closed stream at its next write; then a new one fits.
  int status = 0;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (status != 200 && std::chrono::steady_clock::now() < deadline) {
    auto again = http.Post(stream_path, viewer, R"({"count":1})", "application/json");
    ASSERT_TRUE(again);
    status = again->status;
    if (status != 200) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(status, 200) << "the slot of the closed stream was never freed";
}

// The value of the series `name{labels}` on /metrics, 0 when absent.
double metric(const std::string& metrics, const std::string& series) {
  auto at = metrics.find("\n" + series + " ");
  if (at == std::string::npos) return 0;
  return std::stod(metrics.substr(at + series.size() + 2));
}

// The echo fixture serves Say and Poke as LocalUnary methods: the gateway
// runs their handlers without a gRPC call, behind the same gate, counted in
// the same RPC metrics, with the HTTP caller as ModuleContext::caller(), and
// a reload of the module neither loses nor misroutes a call.
TEST(GatewayLocalCallsTest, ModuleHandlersRunWithoutGrpcBehindTheSameGate) {
  Telekernd daemon({.config_yaml = auth_config_yaml() + "rate_limits:\n"
                                                        "  telekern.testing.v1.Echo/Poke: 0.1\n",
                    .modules_dir = std::string(TELEKERN_BUILD_DIR) + "/test-modules",
                    .load = {"echo"}});
  ASSERT_TRUE(daemon.ready()) << daemon.log();
  httplib::Client http("127.0.0.1", http_port(daemon));
  http.set_read_timeout(30, 0);
  const httplib::Headers viewer{{"X-API-Key", kViewerKey}};
  const httplib::Headers operator_{{"X-API-Key", kOperatorKey}};
  auto metrics = [&] { return daemon.http_get("/metrics", {{"X-API-Key", kOperatorKey}}).second; };
  const std::string local_say =
      "telekern_http_gateway_local_calls_total{service=\"telekern.testing.v1.Echo\"}";
  const std::string say_ok =
      "telekern_rpc_requests_total{service=\"telekern.testing.v1.Echo\",method=\"Say\",code="
      "\"OK\"}";
  const std::string poke_limited =
      "telekern_rpc_requests_total{service=\"telekern.testing.v1.Echo\",method=\"Poke\","
      "code=\"RESOURCE_EXHAUSTED\"}";
  auto before = metrics();

  // The caller the module sees is the HTTP caller: an API key, then a user.
  auto say = http.Post("/rpc/telekern.testing.v1.Echo/Say", viewer, R"({"message":"hi"})",
                       "application/json");
  ASSERT_TRUE(say);
  ASSERT_EQ(say->status, 200) << say->body;
  json answer = json::parse(say->body);
  EXPECT_EQ(answer.value("message", ""), "hi");
  EXPECT_EQ(answer.value("caller", ""), "viewer-key") << say->body;
  EXPECT_EQ(answer.value("role", ""), "viewer") << say->body;
  const std::string first_instance = answer.value("instance", "0");
  auto login =
      http.Post("/api/auth/login", json{{"user", kAdminUser}, {"password", kAdminPassword}}.dump(),
                "application/json");
  ASSERT_TRUE(login);
  ASSERT_EQ(login->status, 200) << login->body;
  const httplib::Headers admin{
      {"Authorization", "Bearer " + json::parse(login->body).value("token", "")}};
  say = http.Post("/rpc/telekern.testing.v1.Echo/Say", admin, R"({"message":"hi"})",
                  "application/json");
  ASSERT_TRUE(say);
  ASSERT_EQ(say->status, 200) << say->body;
  EXPECT_EQ(json::parse(say->body).value("caller", ""), kAdminUser) << say->body;
  EXPECT_EQ(json::parse(say->body).value("role", ""), "admin") << say->body;

  // The gate: 401 without credentials, 403 below the method's role, and the
  // method's rate limit (one call, then 429 naming the rule).
  auto anonymous = http.Post("/rpc/telekern.testing.v1.Echo/Say", "{}", "application/json");
  ASSERT_TRUE(anonymous);
  EXPECT_EQ(anonymous->status, 401) << anonymous->body;
  auto denied = http.Post("/rpc/telekern.testing.v1.Echo/Poke", viewer, "{}", "application/json");
  ASSERT_TRUE(denied);
  EXPECT_EQ(denied->status, 403) << denied->body;
  int poked = 0, limited = 0;
  for (int i = 0; i < 4; ++i) {
    auto poke =
        http.Post("/rpc/telekern.testing.v1.Echo/Poke", operator_, "{}", "application/json");
    ASSERT_TRUE(poke);
    if (poke->status == 200) ++poked;
    if (poke->status == 429) {
      ++limited;
      EXPECT_NE(poke->body.find("rate_limits.telekern.testing.v1.Echo/Poke"), std::string::npos)
          << poke->body;
      EXPECT_TRUE(poke->has_header("Retry-After"));
    }
  }
  EXPECT_EQ(poked, 1);
  EXPECT_EQ(limited, 3);

  // The Say and Poke calls past the credentials check (which turns away 401
  // and 403 before the body is read) took the local path, and the RPC
  // metrics count them, the gate's refusals included, as over gRPC. A
  // kernel method through the gateway still travels over gRPC.
  auto modules = http.Get("/api/v1/modules", viewer);
  ASSERT_TRUE(modules);
  EXPECT_EQ(modules->status, 200) << modules->body;
  auto after = metrics();
  EXPECT_EQ(metric(after, local_say) - metric(before, local_say), 2 + 4) << after;
  EXPECT_EQ(metric(after, say_ok) - metric(before, say_ok), 2) << after;
  EXPECT_EQ(metric(after, poke_limited) - metric(before, poke_limited), 3) << after;
  EXPECT_EQ(after.find("telekern_http_gateway_local_calls_total{service=\"telekern.kernel"),
            std::string::npos)
      << after;

  // A reload while calls keep coming: every call is answered by the old or
  // the new instance, or told to retry while neither can take it.
  std::atomic<bool> stop{false};
  std::set<std::string> instances;
  std::map<int, int> statuses;
  std::thread caller([&] {
    httplib::Client client("127.0.0.1", http_port(daemon));
    client.set_read_timeout(30, 0);
    while (!stop) {
      auto result = client.Post("/rpc/telekern.testing.v1.Echo/Say", admin, R"({"message":"x"})",
                                "application/json");
      if (!result) {
        ++statuses[-1];
        continue;
      }
      ++statuses[result->status];
      if (result->status == 200) {
        instances.insert(json::parse(result->body).value("instance", "0"));
      }
    }
  });
  auto reloaded = http.Post("/rpc/telekern.kernel.v1.Kernel/ReloadModule", admin,
                            R"({"name":"echo"})", "application/json");
  ASSERT_TRUE(reloaded);
  EXPECT_EQ(reloaded->status, 200) << reloaded->body;
  // The reload has returned: the new instance serves, locally again.
  auto before_new = metrics();
  auto fresh = http.Post("/rpc/telekern.testing.v1.Echo/Say", admin, "{}", "application/json");
  stop = true;
  caller.join();
  ASSERT_TRUE(fresh);
  ASSERT_EQ(fresh->status, 200) << fresh->body;
  const std::string latest = json::parse(fresh->body).value("instance", "0");
  EXPECT_NE(latest, first_instance);
  EXPECT_GT(metric(metrics(), local_say), metric(before_new, local_say))
      << "the new instance is called locally too";
  for (const auto& [status, count] : statuses) {
    EXPECT_TRUE(status == 200 || status == 503) << count << " calls answered " << status;
  }
  EXPECT_GT(statuses[200], 0);
  for (const auto& instance : instances) {
    EXPECT_TRUE(instance == first_instance || instance == latest) << instance;
  }
}

// A local call whose handler answers after http_gateway.call_timeout gets 504
// at the timeout; the handler's late answer is dropped, the daemon keeps
// serving, and a reload waits for that handler before it stops the module.
TEST(GatewayLocalCallsTest, AHandlerPastTheCallTimeoutGets504AndReloadWaitsForIt) {
  Telekernd daemon({.config_yaml = auth_config_yaml() + "http_gateway:\n"
                                                        "  call_timeout: 300ms\n",
                    .modules_dir = std::string(TELEKERN_BUILD_DIR) + "/test-modules",
                    .load = {"echo"}});
  ASSERT_TRUE(daemon.ready()) << daemon.log();
  httplib::Client http("127.0.0.1", http_port(daemon));
  http.set_read_timeout(30, 0);
  const httplib::Headers operator_{{"X-API-Key", kOperatorKey}};
  auto first = http.Post("/rpc/telekern.testing.v1.Echo/Say", operator_, "{}", "application/json");
  ASSERT_TRUE(first);
  ASSERT_EQ(first->status, 200) << first->body;
  const std::string first_instance = json::parse(first->body).value("instance", "0");

  auto poked_at = std::chrono::steady_clock::now();
  auto late = http.Post("/rpc/telekern.testing.v1.Echo/Poke", operator_, R"({"delayMs":1500})",
                        "application/json");
  ASSERT_TRUE(late);
  EXPECT_EQ(late->status, 504) << late->body;
  EXPECT_NE(late->body.find("did not answer within 300 ms"), std::string::npos) << late->body;
  auto say = http.Post("/rpc/telekern.testing.v1.Echo/Say", operator_, "{}", "application/json");
  ASSERT_TRUE(say);
  EXPECT_EQ(say->status, 200) << say->body;

  // Over gRPC: the gateway's 300 ms would not cover the reload's wait.
  auto login =
      http.Post("/api/auth/login", json{{"user", kAdminUser}, {"password", kAdminPassword}}.dump(),
                "application/json");
  ASSERT_TRUE(login);
  ASSERT_EQ(login->status, 200) << login->body;
  auto kernel = telekern::kernel::v1::Kernel::NewStub(daemon.channel());
  grpc::ClientContext context;
  context.AddMetadata("authorization", "Bearer " + json::parse(login->body).value("token", ""));
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  telekern::kernel::v1::ReloadModuleRequest request;
  request.set_name("echo");
  telekern::kernel::v1::ReloadModuleResponse response;
  auto reloaded = kernel->ReloadModule(&context, request, &response);
  ASSERT_TRUE(reloaded.ok()) << reloaded.error_message();
  EXPECT_GE(std::chrono::steady_clock::now() - poked_at, std::chrono::milliseconds(1500))
      << "the reload stopped the module while its handler was still out";
  auto after = http.Post("/rpc/telekern.testing.v1.Echo/Say", operator_, "{}", "application/json");
  ASSERT_TRUE(after);
  ASSERT_EQ(after->status, 200) << after->body;
  EXPECT_NE(json::parse(after->body).value("instance", "0"), first_instance);
  EXPECT_TRUE(daemon.ready()) << daemon.log();
}

}  // namespace
}  // namespace telekern::testing
