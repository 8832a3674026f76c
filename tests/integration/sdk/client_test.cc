// telekern::Client against a real telekernd: credentials, login, streaming
// helper, readiness; the SDK examples and the Python package drive it too.
#include "telekern/client.h"

#include <gtest/gtest.h>

#include "telekern/kernel/v1/kernel.grpc.pb.h"
#include "telekern/testing/v1/echo.grpc.pb.h"
#include "tests/support/auth_config.h"
#include "tests/support/telekernd.h"

namespace telekern::testing {
namespace {

namespace kv1 = telekern::kernel::v1;
namespace tv1 = telekern::testing::v1;

class ClientTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    daemon_ = new Telekernd({.config_yaml = auth_config_yaml(), .load = {"echo"}});
  }
  static void TearDownTestSuite() {
    delete daemon_;
    daemon_ = nullptr;
  }
  void SetUp() override { ASSERT_TRUE(daemon_->ready()) << daemon_->log(); }
  static Telekernd* daemon_;
};
Telekernd* ClientTest::daemon_ = nullptr;

TEST_F(ClientTest, TypedStubsCarryTheApiKey) {
  Client client({.target = daemon_->grpc_address(), .api_key = "viewer-secret"});
  ASSERT_TRUE(client.wait_until_ready(std::chrono::seconds(10)).ok());
  kv1::GetInfoResponse info;
  auto status = client.stub<kv1::Kernel>()->GetInfo(client.context().get(), {}, &info);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_TRUE(info.auth_enabled());
  // A plain ClientContext gets the credentials too (added by the channel).
  grpc::ClientContext plain;
  kv1::ListModulesResponse modules;
  EXPECT_TRUE(client.stub<kv1::Kernel>()->ListModules(&plain, {}, &modules).ok());

  Client anonymous({.target = daemon_->grpc_address()});
  EXPECT_EQ(
      anonymous.stub<kv1::Kernel>()->GetInfo(anonymous.context().get(), {}, &info).error_code(),
      grpc::StatusCode::UNAUTHENTICATED);
  Client wrong({.target = daemon_->grpc_address(), .api_key = "nope"});
  EXPECT_EQ(wrong.stub<kv1::Kernel>()->GetInfo(wrong.context().get(), {}, &info).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
}

TEST_F(ClientTest, LoginKeepsTheTokenForLaterCalls) {
  Client client({.target = daemon_->grpc_address()});
  auto rejected = client.login("alice", "wrong");
  EXPECT_EQ(rejected.status().code(), absl::StatusCode::kUnauthenticated);
  auto token = client.login("alice", "wonderland");
  ASSERT_TRUE(token.ok()) << token.status().message();
  EXPECT_EQ(client.token(), *token);
  auto kernel = client.stub<kv1::Kernel>();
  kv1::LoadModuleRequest load;
  load.set_name("ping");
  kv1::LoadModuleResponse loaded;
  auto status = kernel->LoadModule(client.context().get(), load, &loaded);
  ASSERT_TRUE(status.ok()) << status.error_message();
  kv1::UnloadModuleRequest unload;
  unload.set_name("ping");
  kv1::UnloadModuleResponse unloaded;
  EXPECT_TRUE(kernel->UnloadModule(client.context().get(), unload, &unloaded).ok());
  // The token works from the environment-style option as well.
  Client with_token({.target = daemon_->grpc_address(), .token = *token});
  kv1::GetConfigResponse config;
  EXPECT_TRUE(
      with_token.stub<kv1::Kernel>()->GetConfig(with_token.context().get(), {}, &config).ok());
}

TEST_F(ClientTest, StreamHelperDeliversEveryMessageAndCancelsOnRequest) {
  Client client({.target = daemon_->grpc_address(), .api_key = "viewer-secret"});
  auto echo = client.stub<tv1::Echo>();
  tv1::CountRequest request;
  request.set_count(5);
  request.set_interval_ms(1);
  std::vector<uint32_t> done;
  auto status = read_server_stream<tv1::Echo::Stub, tv1::CountRequest, tv1::CountResponse>(
      client, *echo, &tv1::Echo::Stub::Count, request, [&](const tv1::CountResponse& response) {
        done.push_back(response.done());
        return true;
      });
  ASSERT_TRUE(status.ok()) << status.message();
  EXPECT_EQ(done, (std::vector<uint32_t>{1, 2, 3, 4, 5}));

  request.set_count(1000);
  request.set_interval_ms(5);
  done.clear();
  status = read_server_stream<tv1::Echo::Stub, tv1::CountRequest, tv1::CountResponse>(
      client, *echo, &tv1::Echo::Stub::Count, request, [&](const tv1::CountResponse& response) {
        done.push_back(response.done());
        return response.done() < 3;
      });
  EXPECT_EQ(status.code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(done.size(), 3u);
}

TEST_F(ClientTest, DeadlinesAndReadinessAreBounded) {
  Client client({.target = daemon_->grpc_address(),
                 .api_key = "viewer-secret",
                 .default_deadline = std::chrono::milliseconds(200)});
  auto echo = client.stub<tv1::Echo>();
  tv1::CountRequest request;
  request.set_count(100);
  request.set_interval_ms(50);
  auto status = read_server_stream<tv1::Echo::Stub, tv1::CountRequest, tv1::CountResponse>(
      client, *echo, &tv1::Echo::Stub::Count, request,
      [](const tv1::CountResponse&) { return true; }, std::chrono::milliseconds(200));
  EXPECT_EQ(status.code(), absl::StatusCode::kDeadlineExceeded) << status.message();

  Client nowhere({.target = "127.0.0.1:1"});
  auto ready = nowhere.wait_until_ready(std::chrono::milliseconds(300));
  EXPECT_EQ(ready.code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(ready.message().find("127.0.0.1:1"), std::string::npos) << ready.message();
}

TEST_F(ClientTest, ExamplesRunAgainstTheDaemon) {
  std::string env = "TELEKERN_ADDR=" + daemon_->grpc_address() + " TELEKERN_API_KEY=viewer-secret ";
  auto info = run_command(env + TELEKERN_BUILD_DIR "/examples/telekern_example_info");
  EXPECT_EQ(info.exit_code, 0) << info.output;
  EXPECT_NE(info.output.find("telekernd "), std::string::npos) << info.output;
  EXPECT_NE(info.output.find("module echo MODULE_STATE_RUNNING"), std::string::npos) << info.output;
  auto login =
      run_command("TELEKERN_ADDR=" + daemon_->grpc_address() +
                  " " TELEKERN_BUILD_DIR "/examples/telekern_example_info alice wonderland");
  EXPECT_EQ(login.exit_code, 0) << login.output;
  auto streamed = run_command(env + TELEKERN_BUILD_DIR "/examples/telekern_example_stream 10 4");
  EXPECT_EQ(streamed.exit_code, 0) << streamed.output;
  EXPECT_NE(streamed.output.find("progress 4/10"), std::string::npos) << streamed.output;
  EXPECT_EQ(streamed.output.find("progress 5/10"), std::string::npos) << streamed.output;
  EXPECT_NE(streamed.output.find("status CANCELLED"), std::string::npos) << streamed.output;
}

TEST_F(ClientTest, PythonPackageDrivesTheDaemon) {
  const std::string python = "/usr/bin/python3";
  if (access(python.c_str(), X_OK) != 0 ||
      run_command(python + " -c 'import grpc, google.protobuf'").exit_code != 0) {
    if (running_in_ci())
      FAIL() << "/usr/bin/python3 with python3-grpcio and python3-protobuf is required";
    GTEST_SKIP() << "Debian's python3-grpcio/python3-protobuf are not installed";
  }
  auto result = run_command("PYTHONPATH=" TELEKERN_BUILD_DIR "/python TELEKERN_ADDR=" +
                            daemon_->grpc_address() + " VIEWER_KEY=viewer-secret " + python +
                            " " TELEKERN_SOURCE_DIR "/sdk/python/tests/client_test.py");
  EXPECT_EQ(result.exit_code, 0) << result.output;
  EXPECT_NE(result.output.find("Ran 4 tests"), std::string::npos) << result.output;
}

}  // namespace
}  // namespace telekern::testing
