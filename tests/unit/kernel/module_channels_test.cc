#include "kernel/routing/module_channels.h"

#include <grpcpp/create_channel.h>
#include <gtest/gtest.h>

namespace telekern::kernel {
namespace {

TEST(ModuleChannelsTest, LocalUnlessTheServiceIsRemote) {
  ModuleChannels channels({}, {{"telekern.broker.v1.Broker", "127.0.0.1:7999"}});
  auto local = grpc::CreateChannel("127.0.0.1:1", grpc::InsecureChannelCredentials());
  channels.set_local(local);
  EXPECT_EQ(channels.for_service("telekern.proxy.v1.Proxy"), local);
  auto remote = channels.for_service("telekern.broker.v1.Broker");
  ASSERT_NE(remote, nullptr);
  EXPECT_NE(remote, local);
  EXPECT_EQ(channels.to_address("127.0.0.1:7999"), remote) << "one channel per address";
}

TEST(ModuleChannelsTest, OneChannelPerAddress) {
  ModuleChannels channels({}, {});
  auto first = channels.to_address("127.0.0.1:7001");
  auto again = channels.to_address("127.0.0.1:7001");
  auto other = channels.to_address("127.0.0.1:7002");
  EXPECT_EQ(first, again);
  EXPECT_NE(first, other);
}

TEST(ModuleChannelsTest, RetiredChannelsAreKeptUntilTheirTime) {
  ModuleChannels channels({}, {});
  auto channel = grpc::CreateChannel("127.0.0.1:1", grpc::InsecureChannelCredentials());
  std::weak_ptr<grpc::Channel> watch = channel;
  auto now = std::chrono::steady_clock::now();
  channels.retire(std::move(channel), now + std::chrono::seconds(10));
  channels.drop_retired(now);
  EXPECT_FALSE(watch.expired()) << "released before its time";
  channels.drop_retired(now + std::chrono::seconds(11));
  EXPECT_TRUE(watch.expired());
}

}  // namespace
}  // namespace telekern::kernel
