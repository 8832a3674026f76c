// Consumer::lag() against both transports: the embedded broker in a real
// telekernd (telekern://) and a real-protocol Kafka cluster (rdkafka_mock).
#include <grpcpp/create_channel.h>
#include <gtest/gtest.h>

#include <map>

#include "telekern/broker/v1/broker.grpc.pb.h"
#include "telekern/stream.h"
#include "tests/support/kafka_mock_cluster.h"
#include "tests/support/telekernd.h"

namespace telekern::stream {
namespace {

using namespace std::chrono_literals;

class LagTest : public ::testing::TestWithParam<std::string> {
 protected:
  static void SetUpTestSuite() {
    kafka_ = new testing::KafkaMockCluster(1);
    daemon_ = new testing::Telekernd(
        {.modules_dir = std::string(TELEKERN_BUILD_DIR) + "/modules", .load = {"broker"}});
  }
  static void TearDownTestSuite() {
    delete kafka_;
    delete daemon_;
  }
  void SetUp() override {
    if (GetParam() == "kafka") {
      ASSERT_TRUE(kafka_->ok()) << "kafka mock cluster did not start";
    } else {
      ASSERT_TRUE(daemon_->ready()) << "telekernd did not start";
    }
  }
  StreamConfig config() const {
    StreamConfig config;
    config.client_id = "lag-test";
    if (GetParam() == "kafka") {
      config.transport = "kafka://" + kafka_->bootstraps();
      config.session_timeout_ms = 6000;
      config.heartbeat_interval_ms = 500;
    } else {
      config.transport = "telekern://" + daemon_->grpc_address();
    }
    return config;
  }
  void create_topic(const std::string& topic, int partitions) {
    if (GetParam() == "kafka") return kafka_->create_topic(topic, partitions);
    broker::v1::CreateTopicRequest request;
    request.set_topic(topic);
    request.set_partitions(static_cast<uint32_t>(partitions));
    broker::v1::CreateTopicResponse response;
    grpc::ClientContext context;
    auto status =
        broker::v1::Broker::NewStub(daemon_->channel())->CreateTopic(&context, request, &response);
    ASSERT_TRUE(status.ok()) << status.error_message();
  }

  static testing::KafkaMockCluster* kafka_;
  static testing::Telekernd* daemon_;
};
testing::KafkaMockCluster* LagTest::kafka_ = nullptr;
testing::Telekernd* LagTest::daemon_ = nullptr;

std::map<int32_t, PartitionLag> by_partition(const std::vector<PartitionLag>& lags) {
  std::map<int32_t, PartitionLag> out;
  for (const auto& lag : lags) out[lag.partition] = lag;
  return out;
}

TEST_P(LagTest, ReportsCommittedOffsetAndHighWatermarkPerPartition) {
  const std::string topic = "lag-" + GetParam();
  create_topic(topic, 3);
  auto producer = make_producer(config());
  ASSERT_TRUE(producer.ok()) << producer.status();
  // 10, 20 and 30 records on partitions 0, 1 and 2.
  for (int32_t partition = 0; partition < 3; ++partition)
    for (int i = 0; i < 10 * (partition + 1); ++i)
      ASSERT_TRUE((*producer)->send({.topic = topic, .partition = partition, .value = "x"}).ok());
  ASSERT_TRUE((*producer)->flush(20s).ok());

  auto consumer = make_consumer(config(), {"lagging", {topic}, StartFrom::kEarliest});
  ASSERT_TRUE(consumer.ok()) << consumer.status();
  auto before = (*consumer)->lag(10s);
  ASSERT_TRUE(before.ok()) << before.status();
  auto lags = by_partition(*before);
  ASSERT_EQ(lags.size(), 3u);
  for (int32_t partition = 0; partition < 3; ++partition) {
    EXPECT_EQ(lags[partition].topic, topic);
    // Nothing committed yet: Kafka says -1, the broker the log start.
    EXPECT_LE(lags[partition].committed, 0);
    EXPECT_EQ(lags[partition].high_watermark, 10 * (partition + 1));
    EXPECT_EQ(lags[partition].lag(), 10 * (partition + 1));
  }

  // Consume everything, commit all of partition 1 and the first 5 of
  // partition 2 in one commit (several partitions at once).
  std::vector<Record> all;
  auto deadline = std::chrono::steady_clock::now() + 30s;
  while (all.size() < 60 && std::chrono::steady_clock::now() < deadline) {
    auto batch = (*consumer)->poll(60 - all.size(), 500ms);
    ASSERT_TRUE(batch.ok()) << batch.status();
    all.insert(all.end(), batch->begin(), batch->end());
  }
  ASSERT_EQ(all.size(), 60u);
  std::vector<Record> processed;
  for (const auto& record : all)
    if (record.partition == 1 || (record.partition == 2 && record.offset < 5))
      processed.push_back(record);
  ASSERT_TRUE((*consumer)->commit(processed).ok());

  auto after = (*consumer)->lag(10s);
  ASSERT_TRUE(after.ok()) << after.status();
  lags = by_partition(*after);
  ASSERT_EQ(lags.size(), 3u);
  EXPECT_EQ(lags[0].lag(), 10);
  EXPECT_EQ(lags[1].committed, 20);
  EXPECT_EQ(lags[1].lag(), 0);
  EXPECT_EQ(lags[2].committed, 5);
  EXPECT_EQ(lags[2].high_watermark, 30);
  EXPECT_EQ(lags[2].lag(), 25);
}

INSTANTIATE_TEST_SUITE_P(Transports, LagTest, ::testing::Values("telekern", "kafka"));

}  // namespace
}  // namespace telekern::stream
