// The monitor over Kafka (`kafka://`, librdkafka's mock cluster on loopback):
// an agent publishes, the engine consumes in its group, stores and tracks
// the node, as over the embedded broker.
#include <gtest/gtest.h>
#include <spdlog/sinks/null_sink.h>

#include "agent.h"
#include "monitor_engine.h"
#include "tests/support/kafka_mock_cluster.h"
#include "tests/support/process.h"

namespace telekern::monitor {
namespace {

using namespace std::chrono_literals;

TEST(KafkaTransportTest, AgentToBackendOverKafka) {
  testing::KafkaMockCluster cluster(3);
  ASSERT_TRUE(cluster.ok());
  cluster.create_topic("metrics", 2);
  MonitorOptions options;
  options.node_id = "kafka-node";
  options.agent_interval = 100ms;
  options.stream.transport = "kafka://" + cluster.bootstraps();
  options.retention = 0ms;
  auto logger =
      std::make_shared<spdlog::logger>("monitor", std::make_shared<spdlog::sinks::null_sink_mt>());
  MetricsRegistry metrics;
  testing::TempDir dir("monitor-kafka");
  auto store = open_sqlite_store((dir.path() / "m.db").string());
  ASSERT_TRUE(store.ok());
  MonitorEngine engine(options, std::move(*store), logger, &metrics);
  ASSERT_TRUE(engine.load().ok());
  auto consumer = stream::make_consumer(
      options.stream, {options.group, {options.topic}, stream::StartFrom::kEarliest});
  ASSERT_TRUE(consumer.ok()) << consumer.status();
  engine.start(std::move(*consumer));
  Agent agent(
      options, [&] { return stream::make_producer(options.stream); }, logger, metrics);
  agent.start();
  EXPECT_TRUE(testing::wait_for(
      [&] {
        auto nodes = engine.list_nodes(v1::NODE_STATUS_ACTIVE);
        return nodes.size() == 1 && nodes[0].node_id() == "kafka-node" && nodes[0].samples() >= 3;
      },
      30s))
      << engine.ingest_error() << " / " << agent.last_error();
  agent.stop();
  engine.shutdown();
}

}  // namespace
}  // namespace telekern::monitor
