// Users the monitor keeps sign in through the kernel's Login (gRPC and
// POST /api/auth/login): the token carries the user's role and works for the
// broker's calls as for the monitor's; unloading the monitor withdraws its
// users from Login, loading it again brings them back.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <httplib.h>

#include <nlohmann/json.hpp>

#include "telekern/broker/v1/broker.grpc.pb.h"
#include "telekern/kernel/v1/kernel.grpc.pb.h"
#include "telekern/monitor/v1/monitor.grpc.pb.h"
#include "tests/support/auth_config.h"
#include "tests/support/telekernd.h"

namespace telekern::testing {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
namespace mv1 = telekern::monitor::v1;
namespace kv1 = telekern::kernel::v1;
namespace bv1 = telekern::broker::v1;

constexpr const char* kAdminKey = "monitor-login-admin-key";

class MonitorLoginTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    TelekerndOptions options;
    options.modules_dir = std::string(TELEKERN_BUILD_DIR) + "/modules";
    options.load = {"broker", "monitor"};
    std::string auth = auth_config_yaml();
    auto pos = auth.find("  api_keys:\n");
    auth.insert(pos + 12, "    - {name: test-admin, sha256: \"" + sha256_hex(kAdminKey) +
                              "\", role: admin}\n");
    options.config_yaml = auth;
    daemon_ = new Telekernd(options);
    ASSERT_TRUE(daemon_->ready()) << daemon_->log();
  }
  static void TearDownTestSuite() {
    delete daemon_;
    daemon_ = nullptr;
  }

  static std::unique_ptr<grpc::ClientContext> with_key(const std::string& key = kAdminKey) {
    auto context = std::make_unique<grpc::ClientContext>();
    context->AddMetadata("x-api-key", key);
    context->set_deadline(std::chrono::system_clock::now() + 20s);
    return context;
  }
  static std::unique_ptr<grpc::ClientContext> with_token(const std::string& token) {
    auto context = std::make_unique<grpc::ClientContext>();
    context->AddMetadata("authorization", "Bearer " + token);
    context->set_deadline(std::chrono::system_clock::now() + 20s);
    return context;
  }
  static void create_user(const std::string& name, const std::string& password,
                          options::v1::Role role) {
    mv1::CreateUserRequest request;
    request.set_name(name);
    request.set_password(password);
    request.set_role(role);
    mv1::CreateUserResponse response;
    auto status =
        mv1::Monitor::NewStub(daemon_->channel())->CreateUser(with_key().get(), request, &response);
    ASSERT_TRUE(status.ok()) << status.error_message();
  }
  static grpc::Status login(const std::string& user, const std::string& password,
                            kv1::LoginResponse* response) {
    kv1::LoginRequest request;
    request.set_user(user);
    request.set_password(password);
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + 20s);
    return kv1::Kernel::NewStub(daemon_->channel())->Login(&context, request, response);
  }
  static httplib::Client http() {
    const auto& address = daemon_->http_address();
    httplib::Client client("127.0.0.1", std::stoi(address.substr(address.rfind(':') + 1)));
    client.set_read_timeout(20, 0);
    return client;
  }
  static grpc::Status module_operation(bool load) {
    auto kernel = kv1::Kernel::NewStub(daemon_->channel());
    if (load) {
      kv1::LoadModuleRequest request;
      request.set_name("monitor");
      kv1::LoadModuleResponse response;
      return kernel->LoadModule(with_key().get(), request, &response);
    }
    kv1::UnloadModuleRequest request;
    request.set_name("monitor");
    kv1::UnloadModuleResponse response;
    return kernel->UnloadModule(with_key().get(), request, &response);
  }

  static Telekernd* daemon_;
};

Telekernd* MonitorLoginTest::daemon_ = nullptr;

TEST_F(MonitorLoginTest, MonitorUserLogsInOverGrpcAndHttpAndTheTokenWorksEverywhere) {
  create_user("carol", "carol-password", options::v1::ROLE_VIEWER);
  create_user("otto", "otto-password", options::v1::ROLE_OPERATOR);

  // gRPC Login: a viewer token.
  kv1::LoginResponse carol;
  auto status = login("carol", "carol-password", &carol);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(carol.role(), options::v1::ROLE_VIEWER);
  ASSERT_FALSE(carol.token().empty());

  // It works for the monitor and for another module (the broker) at viewer level...
  mv1::WhoAmIResponse me;
  status =
      mv1::Monitor::NewStub(daemon_->channel())->WhoAmI(with_token(carol.token()).get(), {}, &me);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(me.name(), "carol");
  EXPECT_EQ(me.role(), options::v1::ROLE_VIEWER);
  auto broker = bv1::Broker::NewStub(daemon_->channel());
  bv1::ListTopicsResponse topics;
  status = broker->ListTopics(with_token(carol.token()).get(), {}, &topics);
  EXPECT_TRUE(status.ok()) << status.error_message();
  // ...and is refused where admin (or operator) is needed.
  bv1::DeleteTopicRequest delete_topic;
  delete_topic.set_topic("metrics");
  bv1::DeleteTopicResponse deleted;
  status = broker->DeleteTopic(with_token(carol.token()).get(), delete_topic, &deleted);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED) << status.error_message();
  mv1::ListUsersResponse users;
  status = mv1::Monitor::NewStub(daemon_->channel())
               ->ListUsers(with_token(carol.token()).get(), {}, &users);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED);

  // An operator's token creates a topic on the broker.
  kv1::LoginResponse otto;
  ASSERT_TRUE(login("otto", "otto-password", &otto).ok());
  EXPECT_EQ(otto.role(), options::v1::ROLE_OPERATOR);
  bv1::CreateTopicRequest create_topic;
  create_topic.set_topic("otto-topic");
  bv1::CreateTopicResponse created;
  status = broker->CreateTopic(with_token(otto.token()).get(), create_topic, &created);
  EXPECT_TRUE(status.ok()) << status.error_message();

  // Wrong password: refused like an unknown user.
  kv1::LoginResponse refused;
  status = login("carol", "not-her-password", &refused);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(status.error_message(), "unknown user or wrong password");

  // HTTP: the seed's POST /api/auth/login is the same Login.
  auto client = http();
  auto reply =
      client.Post("/api/auth/login", json{{"user", "carol"}, {"password", "carol-password"}}.dump(),
                  "application/json");
  ASSERT_TRUE(reply);
  ASSERT_EQ(reply->status, 200) << reply->body;
  std::string token = json::parse(reply->body).value("token", "");
  ASSERT_FALSE(token.empty()) << reply->body;
  httplib::Headers bearer{{"Authorization", "Bearer " + token}};
  auto read = client.Get("/api/auth/me", bearer);
  ASSERT_TRUE(read);
  EXPECT_EQ(read->status, 200) << read->body;
  EXPECT_EQ(json::parse(read->body).value("name", ""), "carol") << read->body;
  read = client.Get("/topics", bearer);
  ASSERT_TRUE(read);
  EXPECT_EQ(read->status, 200) << read->body;
  auto removed = client.Delete("/topics/metrics", bearer);
  ASSERT_TRUE(removed);
  EXPECT_EQ(removed->status, 403) << removed->body;
  reply = client.Post("/api/auth/login",
                      json{{"user", "carol"}, {"password", "not-her-password"}}.dump(),
                      "application/json");
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->status, 401) << reply->body;
}

TEST_F(MonitorLoginTest, UnloadingTheMonitorWithdrawsItsUsersFromLogin) {
  create_user("uma", "uma-password", options::v1::ROLE_OPERATOR);
  kv1::LoginResponse response;
  ASSERT_TRUE(login("uma", "uma-password", &response).ok());

  auto status = module_operation(false);
  ASSERT_TRUE(status.ok()) << status.error_message();
  status = login("uma", "uma-password", &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED) << status.error_message();
  // The kernel's own users are unaffected.
  EXPECT_TRUE(login(kAdminUser, kAdminPassword, &response).ok());

  status = module_operation(true);
  ASSERT_TRUE(status.ok()) << status.error_message();
  status = login("uma", "uma-password", &response);
  EXPECT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.role(), options::v1::ROLE_OPERATOR);
}

}  // namespace
}  // namespace telekern::testing
