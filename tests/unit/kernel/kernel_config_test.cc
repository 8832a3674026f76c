#include "kernel/kernel_config.h"

#include <gtest/gtest.h>

#include <fstream>

#include "kernel/auth/crypto.h"
#include "tests/support/process.h"

namespace telekern::kernel {
namespace {

// The daemon refuses to listen off loopback without auth; that check must
// decide on addresses, not on how a host name starts.
TEST(KernelConfigTest, LoopbackIsDecidedOnParsedAddresses) {
  EXPECT_TRUE(is_loopback_address("127.0.0.1:7070"));
  EXPECT_TRUE(is_loopback_address("127.8.9.10:7070"));
  EXPECT_TRUE(is_loopback_address("[::1]:7070"));
  EXPECT_TRUE(is_loopback_address("localhost:7070"));
  EXPECT_TRUE(is_loopback_address("unix:/tmp/telekernd.sock"));
  EXPECT_FALSE(is_loopback_address("127.attacker.invalid:7070")) << "a name, not an address";
  EXPECT_FALSE(is_loopback_address("127.0.0.1.invalid:7070"));
  EXPECT_FALSE(is_loopback_address("0.0.0.0:7070"));
  EXPECT_FALSE(is_loopback_address("[::]:7070"));
  EXPECT_FALSE(is_loopback_address(":7070"));
  EXPECT_FALSE(is_loopback_address("10.1.2.3:7070"));
  EXPECT_FALSE(is_loopback_address("[::ffff:10.1.2.3]:7070"));
  EXPECT_TRUE(is_loopback_address("[::ffff:127.0.0.1]:7070"));
}

// GetConfig (role operator) shows the effective config: an API key's SHA-256
// lets anyone test guesses offline, so it is masked like other secrets.
TEST(KernelConfigTest, ShownConfigMasksApiKeyHashes) {
  testing::TempDir dir;
  std::string hash = auth::sha256_hex("viewer-secret");
  std::ofstream(dir.path() / "c.yaml")
      << "auth:\n  api_keys:\n    - {name: grafana, sha256: " << hash << ", role: viewer}\n";
  auto config = load_kernel_config((dir.path() / "c.yaml").string(), {}, {}, dir.path());
  ASSERT_TRUE(config.ok()) << config.status();
  std::string shown = config->validated.to_yaml();
  EXPECT_EQ(shown.find(hash), std::string::npos) << shown;
  EXPECT_NE(shown.find("grafana"), std::string::npos) << shown;
  EXPECT_NE(shown.find("***"), std::string::npos) << shown;
}

// Channels to other daemons (the proxy's upstreams) ping idle connections so
// a dead peer is seen without waiting for a call's deadline.
TEST(KernelConfigTest, RemoteChannelsKeepAliveByDefaultAndTheIntervalIsConfigurable) {
  testing::TempDir dir;
  std::ofstream(dir.path() / "default.yaml") << "listen: 127.0.0.1:7070\n";
  auto defaults = load_kernel_config((dir.path() / "default.yaml").string(), {}, {}, dir.path());
  ASSERT_TRUE(defaults.ok()) << defaults.status();
  EXPECT_EQ(defaults->remote.keepalive, std::chrono::seconds(30));
  std::ofstream(dir.path() / "set.yaml") << "remote:\n  keepalive: 5s\n";
  auto set = load_kernel_config((dir.path() / "set.yaml").string(), {}, {}, dir.path());
  ASSERT_TRUE(set.ok()) << set.status();
  EXPECT_EQ(set->remote.keepalive, std::chrono::seconds(5));
}

TEST(KernelConfigTest, GatewayStreamsMustLeaveWorkersForOtherRequests) {
  testing::TempDir dir;
  std::ofstream(dir.path() / "c.yaml") << "http_gateway:\n  workers: 8\n  max_streams: 8\n";
  auto config = load_kernel_config((dir.path() / "c.yaml").string(), {}, {}, dir.path());
  ASSERT_FALSE(config.ok());
  EXPECT_NE(config.status().message().find("http_gateway.max_streams"), std::string::npos)
      << config.status();
}

TEST(KernelConfigTest, RateLimitsNameRouteFamiliesOrServices) {
  testing::TempDir dir;
  auto load = [&](const std::string& yaml) {
    std::ofstream(dir.path() / "c.yaml") << yaml;
    return load_kernel_config((dir.path() / "c.yaml").string(), {}, {}, dir.path());
  };
  auto good = load(
      "rate_limits:\n  /api/v1/: 50\n  telekern.broker.v1.Broker: 1000\n"
      "  telekern.broker.v1.Broker/Produce: 2.5\n");
  ASSERT_TRUE(good.ok()) << good.status();
  EXPECT_EQ(good->rate_limits.size(), 3u);
  EXPECT_DOUBLE_EQ(good->rate_limits.at("telekern.broker.v1.Broker/Produce"), 2.5);
  for (const std::string bad :
       {"rate_limits:\n  Broker: 10\n", "rate_limits:\n  /x: 0\n", "rate_limits:\n  /x: many\n",
        "rate_limits: [1, 2]\n", "rate_limits:\n  a.B/C/D: 1\n"}) {
    auto config = load(bad);
    ASSERT_FALSE(config.ok()) << bad;
    EXPECT_NE(config.status().message().find("rate_limits"), std::string::npos) << config.status();
  }
}

}  // namespace
}  // namespace telekern::kernel
