// The gateway's pieces without a daemon: path templates and route matching,
// query decoding, and how bodies, bindings and queries fill a request.
#include "kernel/http/transcoder.h"

#include <gtest/gtest.h>

#include "kernel/http/json_errors.h"
#include "kernel/http/route_table.h"
#include "telekern/kernel/v1/kernel.pb.h"

namespace telekern::kernel::http {
namespace {

namespace kv1 = telekern::kernel::v1;

TEST(PathTemplateTest, ParsesBindingsAndRejectsBadTemplates) {
  auto segments = parse_path_template("/v1/topics/{topic}/groups/{group=*}");
  ASSERT_TRUE(segments.ok()) << segments.status();
  ASSERT_EQ(segments->size(), 5u);
  EXPECT_FALSE((*segments)[0].binding);
  EXPECT_TRUE((*segments)[2].binding);
  EXPECT_EQ((*segments)[4].text, "group");
  for (const char* bad : {"topics", "/a/{b", "/a/x{b}", "/a/{}", "/a/{b c}"}) {
    auto parsed = parse_path_template(bad);
    EXPECT_FALSE(parsed.ok()) << bad;
    EXPECT_NE(std::string(parsed.status().message()).find(bad), std::string::npos) << bad;
  }
}

TEST(RouteTableTest, KernelRoutesMatchByVerbAndPath) {
  (void)kv1::ListModulesRequest::descriptor();  // links the kernel's descriptors
  auto table = RouteTable::build({"telekern.kernel.v1.Kernel", "no.such.Service"});
  EXPECT_TRUE(table.serves("no.such.Service"));
  auto match = table.match("GET", "/api/v1/modules");
  ASSERT_TRUE(match);
  EXPECT_EQ(match->route->method->name(), "ListModules");
  std::vector<std::string> verbs;
  EXPECT_FALSE(table.match("DELETE", "/api/v1/modules", &verbs));
  EXPECT_EQ(verbs, std::vector<std::string>{"GET"});
  EXPECT_FALSE(table.match("GET", "/api/v1/modules/extra"));
  EXPECT_FALSE(table.match("GET", ""));
  EXPECT_TRUE(RouteTable::build({}).routes().empty());
}

TEST(TranscoderTest, QueryIsDecodedAndFillsFields) {
  auto query = parse_query("/x?module=br%6Fker+x&empty&=skip#frag");
  ASSERT_EQ(query.count("module"), 1u);
  EXPECT_EQ(query.find("module")->second, "broker x");
  EXPECT_EQ(query.find("empty")->second, "");
  HttpRequestParts parts;
  parts.query = parse_query("/x?module=broker");
  auto message = transcode_request(*kv1::GetConfigRequest::descriptor(), parts, BodyRule{});
  ASSERT_TRUE(message.ok()) << message.status();
  EXPECT_EQ(static_cast<kv1::GetConfigRequest&>(**message).module(), "broker");
}

TEST(TranscoderTest, BodyRulesAndErrorsNameTheField) {
  const auto& login = *kv1::LoginRequest::descriptor();
  HttpRequestParts parts;
  parts.body = R"({"user":"alice"})";
  parts.query = parse_query("/x?password=secret");
  auto message = transcode_request(login, parts, BodyRule{});
  ASSERT_TRUE(message.ok()) << message.status();
  EXPECT_EQ(static_cast<kv1::LoginRequest&>(**message).password(), "secret");

  // A string body field takes a non-JSON body as sent.
  HttpRequestParts raw;
  raw.body = "plain text";
  raw.content_type = "text/plain";
  message = transcode_request(login, raw, BodyRule{.body = "password"});
  ASSERT_TRUE(message.ok()) << message.status();
  EXPECT_EQ(static_cast<kv1::LoginRequest&>(**message).password(), "plain text");

  struct Case {
    std::string body, query, mentions;
  };
  for (const auto& bad : std::vector<Case>{{R"({"usr":"a"})", "", "usr"},
                                           {R"({"user":5})", "", "user"},
                                           {"{", "", "not valid JSON"},
                                           {"[]", "", "JSON object"},
                                           {"", "/x?bogus=1", "bogus"},
                                           {"", "/x?.=1", "names no field"},
                                           {"{\"user\":\"\xff\"}", "", "UTF-8"}}) {
    HttpRequestParts input;
    input.body = bad.body;
    input.query = parse_query(bad.query);
    auto result = transcode_request(login, input, BodyRule{});
    ASSERT_FALSE(result.ok()) << bad.body << bad.query;
    EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(std::string(result.status().message()).find(bad.mentions), std::string::npos)
        << result.status();
  }
  HttpRequestParts no_body;
  no_body.body = "{}";
  EXPECT_FALSE(transcode_request(login, no_body, BodyRule{.body = ""}).ok());
}

TEST(TranscoderTest, NdjsonBodiesGiveOneMessageALine) {
  HttpRequestParts parts;
  parts.body = "{\"user\":\"a\"}\n\n{\"user\":\"b\"}\n";
  auto messages = transcode_ndjson(*kv1::LoginRequest::descriptor(), parts);
  ASSERT_TRUE(messages.ok()) << messages.status();
  ASSERT_EQ(messages->size(), 2u);
  parts.body = "{\"user\":\"a\"}\n{\"nope\":1}\n";
  messages = transcode_ndjson(*kv1::LoginRequest::descriptor(), parts);
  ASSERT_FALSE(messages.ok());
  EXPECT_NE(std::string(messages.status().message()).find("line 2"), std::string::npos);
}

TEST(JsonErrorsTest, StatusMappingAndShape) {
  EXPECT_EQ(http_status_for(grpc::StatusCode::UNAUTHENTICATED), 401);
  EXPECT_EQ(http_status_for(grpc::StatusCode::PERMISSION_DENIED), 403);
  EXPECT_EQ(http_status_for(grpc::StatusCode::NOT_FOUND), 404);
  EXPECT_EQ(http_status_for(grpc::StatusCode::RESOURCE_EXHAUSTED), 429);
  EXPECT_EQ(http_status_for(grpc::StatusCode::FAILED_PRECONDITION), 400);
  EXPECT_EQ(http_status_for(grpc::StatusCode::UNAVAILABLE), 503);
  EXPECT_EQ(http_status_for(grpc::StatusCode::DEADLINE_EXCEEDED), 504);
  EXPECT_EQ(error_json(grpc::StatusCode::NOT_FOUND, "gone \xff"),
            "{\"code\":5,\"message\":\"gone \xEF\xBF\xBD\",\"status\":\"NOT_FOUND\"}");
}

}  // namespace
}  // namespace telekern::kernel::http
