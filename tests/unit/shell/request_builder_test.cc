// Requests from command-line words, checked on compiled-in kernel messages
// (the builder only sees descriptors, so any message type works).
#include "shell/request_builder.h"

#include <gtest/gtest.h>

#include "telekern/kernel/v1/kernel.pb.h"

namespace telekern::shell {
namespace {

namespace kv1 = telekern::kernel::v1;

template <typename T>
T build(const std::vector<std::string>& positionals, const std::vector<std::string>& args) {
  auto call = build_request(T::default_instance(), positionals, args, false);
  EXPECT_TRUE(call.ok()) << call.status().message();
  T out;
  if (call.ok()) out.CopyFrom(*call->messages.front());
  return out;
}

TEST(RequestBuilderTest, PositionalsAndFlags) {
  auto login = build<kv1::LoginRequest>({"user"}, {"alice", "--password", "secret"});
  EXPECT_EQ(login.user(), "alice");
  EXPECT_EQ(login.password(), "secret");
  auto equals = build<kv1::LoginRequest>({"user"}, {"--user=bob"});
  EXPECT_EQ(equals.user(), "bob");
}

TEST(RequestBuilderTest, NestedRepeatedEnumDurationAndTimestampFlags) {
  auto module = build<kv1::ListModulesResponse>(
      {}, {"--generation", "7", "--modules", R"({"name": "echo", "state": "MODULE_STATE_RUNNING"})",
           "--modules", R"({"name": "ping"})"});
  EXPECT_EQ(module.generation(), 7u);
  ASSERT_EQ(module.modules_size(), 2);
  EXPECT_EQ(module.modules(0).state(), kv1::MODULE_STATE_RUNNING);
  EXPECT_EQ(module.modules(1).name(), "ping");

  auto info =
      build<kv1::GetInfoResponse>({}, {"--uptime", "1h30m", "--start-time", "2024-05-01T12:00:00Z",
                                       "--auth_enabled", "--tls_enabled", "false"});
  EXPECT_EQ(info.uptime().seconds(), 5400);
  EXPECT_EQ(info.start_time().seconds(), 1714564800);
  EXPECT_TRUE(info.auth_enabled());
  EXPECT_FALSE(info.tls_enabled());

  auto nested = build<kv1::LoadModuleResponse>(
      {}, {"--result.module.name", "echo", "--result.module.state", "failed",
           "--result.module.services", "a", "--result.module.services", "b"});
  EXPECT_EQ(nested.result().module().name(), "echo");
  EXPECT_EQ(nested.result().module().state(), kv1::MODULE_STATE_FAILED);
  EXPECT_EQ(nested.result().module().services_size(), 2);
}

TEST(RequestBuilderTest, JsonMergesWithFlagsAndTimeoutIsACallOption) {
  auto call = build_request(kv1::LoginRequest::default_instance(), {"user"},
                            {"alice", "--json", R"({"password": "pw"})", "--timeout", "2s"}, false);
  ASSERT_TRUE(call.ok()) << call.status().message();
  kv1::LoginRequest request;
  request.CopyFrom(*call->messages.front());
  EXPECT_EQ(request.user(), "alice");
  EXPECT_EQ(request.password(), "pw");
  EXPECT_EQ(call->timeout, std::chrono::seconds(2));

  auto streaming =
      build_request(kv1::LoginRequest::default_instance(), {},
                    {"--json", R"({"user": "a"})", "--json", R"({"user": "b"})"}, true);
  ASSERT_TRUE(streaming.ok());
  EXPECT_EQ(streaming->messages.size(), 2u) << "each --json is one message of a client stream";
}

TEST(RequestBuilderTest, ErrorsNameTheProblem) {
  auto unknown = build_request(kv1::LoginRequest::default_instance(), {}, {"--usr", "x"}, false);
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.status().message().find("unknown flag --usr"), std::string::npos)
      << unknown.status().message();
  EXPECT_NE(unknown.status().message().find("--user"), std::string::npos);
  auto bad_number = build_request(kv1::ListModulesResponse::default_instance(), {},
                                  {"--generation", "many"}, false);
  ASSERT_FALSE(bad_number.ok());
  EXPECT_NE(bad_number.status().message().find("'many' is not an unsigned integer"),
            std::string::npos);
  auto bad_enum = build_request(kv1::Module::default_instance(), {}, {"--state", "sleepy"}, false);
  ASSERT_FALSE(bad_enum.ok());
  EXPECT_NE(bad_enum.status().message().find("RUNNING"), std::string::npos)
      << bad_enum.status().message();
  auto extra = build_request(kv1::LoginRequest::default_instance(), {"user"}, {"a", "b"}, false);
  EXPECT_FALSE(extra.ok());
  auto missing = build_request(kv1::LoginRequest::default_instance(), {}, {"--user"}, false);
  EXPECT_FALSE(missing.ok());
}

TEST(RequestBuilderTest, FlagNamesCoverNestedFields) {
  auto names = flag_names(kv1::LoadModuleResponse::descriptor());
  EXPECT_NE(std::find(names.begin(), names.end(), "result.module.name"), names.end());
  EXPECT_NE(std::find(names.begin(), names.end(), "result.generation"), names.end());
}

}  // namespace
}  // namespace telekern::shell
