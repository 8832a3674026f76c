// The gateway's transcoder on hostile input: a query string and a body (JSON,
// raw or NDJSON) for a broker or kernel method never crash it, and a request
// it accepts prints as JSON that parses back to the same message.
#include <google/protobuf/util/message_differencer.h>

#include "kernel/http/transcoder.h"
#include "telekern/broker/v1/broker.pb.h"
#include "telekern/kernel/v1/kernel.pb.h"
#include "tests/fuzz/fuzz_target.h"

namespace {

using namespace telekern::kernel::http;

const google::protobuf::Descriptor* type_for(uint8_t selector) {
  static const std::vector<const google::protobuf::Descriptor*> types = {
      telekern::broker::v1::ProduceRequest::descriptor(),
      telekern::broker::v1::ConsumeRequest::descriptor(),
      telekern::broker::v1::AckRequest::descriptor(),
      telekern::broker::v1::CreateTopicRequest::descriptor(),
      telekern::kernel::v1::LoginRequest::descriptor(),
  };
  return types[selector % types.size()];
}

}  // namespace

std::vector<std::string> telekern_fuzz_seeds() {
  return {std::string("\x00", 1) +
              "topic=t&partition=0\n{\"value\":\"x\",\"records\":[{\"key\":\"AA==\"}]}",
          "\x01topic=t&group=g&mode=GROUP_MODE_QUEUE&wait=5s&auto_commit=true\n",
          "\x02topic=t&partition=1&group=g\n{\"offset\":\"7\",\"deliveries\":[{\"partition\":1}]}",
          "\x03\n{\"topic\":\"t\",\"partitions\":3,\"retention\":\"3600s\"}",
          "\x04\n{\"user\":\"alice\",\"password\":\"\xff\"}",
          "\x05raw=1\nnot json at all",
          "\x06%zz=%41&a.b=1\n{\"topic\":{\"nested\":[1,2,{}]}}\n{}\n"};
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const auto* type = type_for(data[0]);
  std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  size_t newline = rest.find('\n');
  std::string target = "/x?" + std::string(rest.substr(0, newline));
  std::string_view body = newline == std::string_view::npos ? "" : rest.substr(newline + 1);

  HttpRequestParts parts;
  parts.body = body;
  parts.content_type = (data[0] & 0x10) != 0 ? "text/plain" : "application/json";
  parts.query = parse_query(target);
  if ((data[0] & 0x20) != 0)
    parts.path_bindings.emplace_back("topic", std::string(body.substr(0, 8)));
  BodyRule rule;
  rule.body = (data[0] & 0x40) != 0 ? "value" : "*";
  if (type != telekern::broker::v1::ProduceRequest::descriptor() && rule.body == "value") {
    rule.body = "";
  }
  auto message = transcode_request(*type, parts, rule);
  if (message.ok()) {
    std::string json = message_to_json(**message);
    HttpRequestParts again;
    again.body = json;
    auto parsed = transcode_request(*type, again, BodyRule{});
    FUZZ_CHECK(parsed.ok());
    FUZZ_CHECK(google::protobuf::util::MessageDifferencer::Equals(**message, **parsed));
  } else {
    FUZZ_CHECK(!message.status().message().empty());
  }
  (void)transcode_ndjson(*type, parts);
  return 0;
}
