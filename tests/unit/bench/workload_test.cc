// OMB workload and driver YAML parsing.
#include "workload.h"

#include <gtest/gtest.h>

#include <filesystem>

namespace telekern::bench {
namespace {

const std::filesystem::path kWorkloads = TELEKERN_BENCH_TESTDATA "/workloads";

TEST(Workload, OmbPublishedWorkloadsParseUnchanged) {
  auto w = load_workload(kWorkloads / "1-topic-16-partitions-1kb.yaml");
  ASSERT_TRUE(w.ok()) << w.status();
  EXPECT_EQ(w->name, "1 topic / 16 partitions / 1Kb");
  EXPECT_EQ(w->topics, 1u);
  EXPECT_EQ(w->partitions_per_topic, 16u);
  EXPECT_EQ(w->message_size, 1024u);
  EXPECT_EQ(w->payload_file, "payload/payload-1Kb.data");
  EXPECT_EQ(w->producer_rate, 50000);
  EXPECT_EQ(w->test_duration, std::chrono::minutes(15));
  EXPECT_EQ(w->key_distributor, KeyDistributor::kNoKey);
  for (const auto& entry : std::filesystem::directory_iterator(kWorkloads)) {
    auto parsed = load_workload(entry.path());
    EXPECT_TRUE(parsed.ok()) << entry.path() << ": " << parsed.status();
  }
}

TEST(Workload, DurationsAcceptSecondsAndFractionsOfMinutes) {
  auto w = parse_workload(
      "name: short\ntopics: 2\npartitionsPerTopic: 4\nmessageSize: 100\n"
      "producerRate: 1000\ntestDurationMinutes: 5s\nwarmupDurationMinutes: 0.5\n"
      "keyDistributor: KEY_ROUND_ROBIN\nsubscriptionsPerTopic: 2\nconsumerPerSubscription: 3\n");
  ASSERT_TRUE(w.ok()) << w.status();
  EXPECT_EQ(w->test_duration, std::chrono::seconds(5));
  EXPECT_EQ(w->warmup_duration, std::chrono::seconds(30));
  EXPECT_EQ(w->key_distributor, KeyDistributor::kKeyRoundRobin);
  EXPECT_EQ(w->subscriptions_per_topic, 2u);
  EXPECT_EQ(w->consumer_per_subscription, 3u);
}

TEST(Workload, ErrorsNameTheField) {
  auto unknown = parse_workload("name: x\ntopicz: 1\n");
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.status().message().find("topicz"), std::string::npos);
  auto distributor = parse_workload("name: x\nkeyDistributor: SOMETIMES\n");
  ASSERT_FALSE(distributor.ok());
  EXPECT_NE(distributor.status().message().find("keyDistributor"), std::string::npos);
  auto duration = parse_workload("name: x\ntestDurationMinutes: soon\n");
  ASSERT_FALSE(duration.ok());
  EXPECT_NE(duration.status().message().find("testDurationMinutes"), std::string::npos);
  EXPECT_FALSE(parse_workload("name: x\nmessageSize: 4\n").ok());
  EXPECT_FALSE(load_workload("/nonexistent/w.yaml").ok());
}

TEST(Driver, OmbStyleYamlAndShortForms) {
  auto kafka = parse_driver(
      "name: Kafka\ndriverClass: io.openmessaging.benchmark.driver.kafka.KafkaBenchmarkDriver\n"
      "replicationFactor: 1\ncommonConfig: |\n  bootstrap.servers=127.0.0.1:9092\n"
      "  request.timeout.ms=30000\n");
  ASSERT_TRUE(kafka.ok()) << kafka.status();
  EXPECT_EQ(kafka->kind, DriverKind::kKafka);
  EXPECT_EQ(kafka->transport, "kafka://127.0.0.1:9092");
  auto redis = parse_driver(
      "name: Redis\ndriverClass: io.openmessaging.benchmark.driver.redis."
      "RedisBenchmarkDriver\nredisHost: 10.0.0.1\nredisPort: 6380\n");
  ASSERT_TRUE(redis.ok()) << redis.status();
  EXPECT_EQ(redis->kind, DriverKind::kRedis);
  EXPECT_EQ(redis->redis_port, 6380);
  auto nats = parse_driver("nats://127.0.0.1:4333");
  ASSERT_TRUE(nats.ok());
  EXPECT_EQ(nats->kind, DriverKind::kNats);
  auto short_redis = parse_driver("redis://127.0.0.1:7000");
  ASSERT_TRUE(short_redis.ok());
  EXPECT_EQ(short_redis->redis_port, 7000);
  EXPECT_EQ(parse_driver("telekern")->kind, DriverKind::kTelekern);
  EXPECT_EQ(parse_driver("sink")->kind, DriverKind::kSink);
  auto bad = parse_driver("pulsar://x");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("pulsar://x"), std::string::npos);
}

}  // namespace
}  // namespace telekern::bench
