// The proxy from telesh, through the commands generated from proxy.proto's
// cli options (proxy upstreams, ring, locate, upstream add/drain/remove), and
// the broker commands answered by a proxy in front of a broker.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "tests/support/telekernd.h"
#include "tests/support/telesh.h"

namespace telekern::testing {
namespace {

TEST(ProxyShellTest, UpstreamsRingLocateAndMembershipFromTelesh) {
  const std::string modules = std::string(TELEKERN_BUILD_DIR) + "/modules";
  Telekernd broker({.modules_dir = modules, .load = {"broker"}});
  ASSERT_TRUE(broker.ready()) << broker.log();
  Telekernd proxy(
      {.config_yaml = "modules:\n  proxy:\n    upstreams: [" + broker.grpc_address() + "]\n",
       .modules_dir = modules,
       .load = {"proxy"}});
  ASSERT_TRUE(proxy.ready()) << proxy.log();

  auto listed = telesh_commands(proxy, "proxy upstreams -o json");
  ASSERT_EQ(listed.exit_code, 0) << listed.output;
  auto upstreams = nlohmann::json::parse(listed.output, nullptr, false);
  ASSERT_FALSE(upstreams.is_discarded()) << listed.output;
  ASSERT_EQ(upstreams["upstreams"].size(), 1u) << listed.output;
  EXPECT_EQ(upstreams["upstreams"][0].value("address", ""), broker.grpc_address());

  auto located = telesh_commands(proxy, "proxy locate orders 3 -o json");
  ASSERT_EQ(located.exit_code, 0) << located.output;
  auto where = nlohmann::json::parse(located.output, nullptr, false);
  ASSERT_FALSE(where.is_discarded()) << located.output;
  EXPECT_EQ(where.value("upstream", ""), broker.grpc_address()) << located.output;

  auto ring = telesh_commands(proxy, "proxy ring");
  ASSERT_EQ(ring.exit_code, 0) << ring.output;
  EXPECT_NE(ring.output.find(broker.grpc_address()), std::string::npos) << ring.output;

  // Produce through the proxy from the shell; the broker stores it.
  auto produced = telesh_commands(proxy, "broker produce orders hello --partition 1");
  ASSERT_EQ(produced.exit_code, 0) << produced.output;
  auto described = telesh_commands(broker, "broker topic describe orders -o json");
  ASSERT_EQ(described.exit_code, 0) << described.output;
  EXPECT_NE(described.output.find("\"partition\":1,\"start_offset\":\"0\",\"end_offset\":\"1\""),
            std::string::npos)
      << described.output;

  // An unreachable upstream: added, drained, removed, each with its report.
  auto added = telesh_commands(proxy, "proxy upstream add 127.0.0.1:1 -o json");
  ASSERT_EQ(added.exit_code, 0) << added.output;
  EXPECT_NE(added.output.find("moved"), std::string::npos) << added.output;
  auto drained = telesh_commands(proxy, "proxy upstream drain 127.0.0.1:1");
  ASSERT_EQ(drained.exit_code, 0) << drained.output;
  auto after_drain = telesh_commands(proxy, "proxy upstreams -o json");
  EXPECT_NE(after_drain.output.find("UPSTREAM_HEALTH_DRAINING"), std::string::npos)
      << after_drain.output;
  auto removed = telesh_commands(proxy, "proxy upstream remove 127.0.0.1:1");
  ASSERT_EQ(removed.exit_code, 0) << removed.output;
  auto again = telesh_commands(proxy, "proxy upstream remove 127.0.0.1:1");
  EXPECT_NE(again.exit_code, 0);
  EXPECT_NE(again.output.find("not a member"), std::string::npos) << again.output;
}

}  // namespace
}  // namespace telekern::testing
