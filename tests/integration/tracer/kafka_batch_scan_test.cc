// The kafka source's batch scan against a Kafka cluster speaking the real
// protocol (librdkafka's mock cluster): topics produced with every codec are
// read record for record (offset, timestamp, key, value, header) as they were
// produced; gzip, lz4, zstd and uncompressed batches by the batch scan itself,
// snappy batches by librdkafka's consumer from where the batch scan stopped;
// with kafka.batch_scan off everything goes through librdkafka; a sink that
// refuses stops its topic's partitions only.
#include <gtest/gtest.h>
#include <librdkafka/rdkafka.h>

#include <map>
#include <set>

#include "kafka_source.h"
#include "tests/integration/tracer/tracer_data.h"
#include "tests/support/kafka_mock_cluster.h"

namespace telekern::tracer {
namespace {

using Seen = std::tuple<int32_t, int64_t, int64_t, std::string, std::string, std::string>;

class CollectSink final : public UnitSink {
 public:
  explicit CollectSink(uint64_t limit = 0) : limit_(limit) {}
  bool record(const RecordView& record) override {
    if (limit_ > 0 && seen.size() >= limit_) return false;
    std::string header;
    for (const auto& [key, value] : record.headers)
      if (key == "device") header = std::string(value);
    seen.insert({record.partition, record.offset, record.timestamp_ms, std::string(record.key),
                 std::string(record.value), header});
    return true;
  }
  void reached_end(int32_t partition, int64_t stop) override { ends[partition] = stop; }
  void failed(int32_t partition, std::string error) override { errors[partition] = error; }
  void position(int32_t, int64_t) override {}

  std::set<Seen> seen;
  std::map<int32_t, int64_t> ends;
  std::map<int32_t, std::string> errors;

 private:
  uint64_t limit_;
};

class KafkaBatchScanTest : public ::testing::Test {
 protected:
  static constexpr const char* kCodecs[] = {"none", "gzip", "lz4", "zstd", "snappy"};

  static void SetUpTestSuite() {
    cluster_ = new telekern::testing::KafkaMockCluster(3);
    ASSERT_TRUE(cluster_->ok());
    records_ = new std::map<std::string, std::vector<testing::ProducedRecord>>();
    for (const char* codec : kCodecs) {
      std::string topic = std::string("codec-") + codec;
      cluster_->create_topic(topic, 3);
      // "telemetry"-shaped records (keys, a header on every other one), renamed.
      auto records = testing::make_records({{"telemetry", 3, 900}}, std::chrono::hours(24));
      for (auto& record : records) record.topic = topic;
      ASSERT_TRUE(testing::produce(cluster_->bootstraps(), records, codec)) << codec;
      (*records_)[topic] = std::move(records);
    }
  }
  static void TearDownTestSuite() {
    delete records_;
    delete cluster_;
  }

  static std::set<Seen> expected(const std::string& topic) {
    std::set<Seen> out;
    for (const auto& r : records_->at(topic))
      out.insert({r.partition, r.offset, r.timestamp_ms, r.key, r.value, r.header});
    return out;
  }

  static std::unique_ptr<KafkaSource> source(
      bool batch_scan, std::vector<std::pair<std::string, std::string>> properties = {}) {
    KafkaSourceOptions options;
    options.brokers = cluster_->bootstraps();
    options.fetch.batch_scan = batch_scan;
    options.properties = std::move(properties);
    auto created = KafkaSource::create(options);
    EXPECT_TRUE(created.ok()) << created.status();
    return created.ok() ? std::move(*created) : nullptr;
  }

  // The partition's leader as the cluster's metadata gives it.
  static int32_t leader_of(const std::string& topic, int32_t partition) {
    char error[512];
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", cluster_->bootstraps().c_str(), error,
                      sizeof error);
    rd_kafka_t* client = rd_kafka_new(RD_KAFKA_PRODUCER, conf, error, sizeof error);
    if (client == nullptr) return -1;
    const rd_kafka_metadata_t* metadata = nullptr;
    int32_t leader = -1;
    if (rd_kafka_metadata(client, 1, nullptr, &metadata, 10000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
      for (int t = 0; t < metadata->topic_cnt; ++t) {
        if (topic != metadata->topics[t].topic) continue;
        for (int p = 0; p < metadata->topics[t].partition_cnt; ++p) {
          if (metadata->topics[t].partitions[p].id == partition)
            leader = metadata->topics[t].partitions[p].leader;
        }
      }
      rd_kafka_metadata_destroy(metadata);
    }
    rd_kafka_destroy(client);
    return leader;
  }

  static ScanLimits limits() {
    ScanLimits limits;
    limits.inactivity = std::chrono::seconds(30);
    return limits;
  }

  static telekern::testing::KafkaMockCluster* cluster_;
  static std::map<std::string, std::vector<testing::ProducedRecord>>* records_;
};

telekern::testing::KafkaMockCluster* KafkaBatchScanTest::cluster_ = nullptr;
std::map<std::string, std::vector<testing::ProducedRecord>>* KafkaBatchScanTest::records_ = nullptr;

TEST_F(KafkaBatchScanTest, EveryCodecReadsEveryRecordAsProduced) {
  for (const char* codec : kCodecs) {
    std::string topic = std::string("codec-") + codec;
    for (bool batch_scan : {true, false}) {
      SCOPED_TRACE(topic + (batch_scan ? " batch scan" : " librdkafka"));
      auto kafka = source(batch_scan);
      ASSERT_NE(kafka, nullptr);
      auto plans = kafka->plan_topics({topic}, limits());
      ASSERT_EQ(plans.size(), 1u);
      ASSERT_TRUE(plans[0].ok()) << plans[0].status();
      CollectSink sink;
      ASSERT_TRUE(kafka->scan(*plans[0], limits(), sink, {}).ok());
      EXPECT_EQ(sink.seen, expected(topic));
      EXPECT_TRUE(sink.errors.empty());
      ASSERT_EQ(sink.ends.size(), 3u);
      for (const auto& plan : plans[0]->partitions) EXPECT_EQ(sink.ends[plan.partition], plan.stop);
      if (!batch_scan) {
        EXPECT_EQ(kafka->batch_scanned_records(), 0u);
      } else if (std::string(codec) == "snappy") {
        // librdkafka sends a batch that does not shrink (one record) uncompressed: the batch
        // scan may read a few records before the first snappy batch hands the rest over.
        EXPECT_LT(kafka->batch_scanned_records(), records_->at(topic).size() / 10);
      } else {
        EXPECT_EQ(kafka->batch_scanned_records(), records_->at(topic).size());
      }
    }
  }
}

TEST_F(KafkaBatchScanTest, OnlyPlaintextReadUncommittedConnectionsAreBatchScanned) {
  struct Case {
    std::vector<std::pair<std::string, std::string>> properties;
    bool read_committed;
    bool batch_scanned;
  };
  std::vector<Case> cases = {
      {{{"security.protocol", "PLAINTEXT"}}, false, true},
      {{{"isolation.level", "read_committed"}}, false, false},
      {{}, true, false},
  };
  for (const auto& c : cases) {
    auto kafka = source(true, c.properties);
    ASSERT_NE(kafka, nullptr);
    ScanLimits scan_limits = limits();
    scan_limits.read_committed = c.read_committed;
    auto plans = kafka->plan_topics({"codec-gzip"}, scan_limits);
    ASSERT_TRUE(plans[0].ok()) << plans[0].status();
    CollectSink sink;
    ASSERT_TRUE(kafka->scan(*plans[0], scan_limits, sink, {}).ok());
    EXPECT_EQ(sink.seen, expected("codec-gzip"));
    EXPECT_EQ(kafka->batch_scanned_records() > 0, c.batch_scanned)
        << (c.properties.empty() ? "read_committed" : c.properties[0].second);
  }
}

TEST_F(KafkaBatchScanTest, APartitionWhoseLeaderMovedContinuesInLibrdkafka) {
  auto kafka = source(true);
  auto plans = kafka->plan_topics({"codec-zstd"}, limits());  // leaders as they are now
  ASSERT_TRUE(plans[0].ok()) << plans[0].status();
  // Partition 1 moves to another broker after the plan: the batch scan asks
  // the old leader, gets NOT_LEADER, and librdkafka follows the new one.
  int32_t leader = leader_of("codec-zstd", 1);
  ASSERT_GT(leader, 0);
  cluster_->set_partition_leader("codec-zstd", 1, leader % 3 + 1);
  CollectSink sink;
  ASSERT_TRUE(kafka->scan(*plans[0], limits(), sink, {}).ok());
  EXPECT_EQ(sink.seen, expected("codec-zstd"));
  EXPECT_TRUE(sink.errors.empty());
  EXPECT_EQ(sink.ends.size(), 3u);
  size_t moved = 0;
  for (const auto& r : records_->at("codec-zstd")) moved += r.partition == 1 ? 1 : 0;
  EXPECT_GT(kafka->batch_scanned_records(), 0u);
  EXPECT_LE(kafka->batch_scanned_records(), records_->at("codec-zstd").size() - moved);
}

TEST_F(KafkaBatchScanTest, AScanStartingInsideABatchAndStoppingInsideOne) {
  auto kafka = source(true);
  auto plans = kafka->plan_topics({"codec-lz4"}, limits());
  ASSERT_TRUE(plans[0].ok()) << plans[0].status();
  ScanUnit unit = *plans[0];
  for (auto& plan : unit.partitions) {  // the middle third of each partition
    int64_t third = (plan.stop - plan.low) / 3;
    plan.start = plan.low + third;
    plan.stop = plan.low + 2 * third;
  }
  CollectSink sink;
  ASSERT_TRUE(kafka->scan(unit, limits(), sink, {}).ok());
  std::set<Seen> wanted;
  for (const auto& seen : expected("codec-lz4")) {
    for (const auto& plan : unit.partitions) {
      if (std::get<0>(seen) == plan.partition && std::get<1>(seen) >= plan.start &&
          std::get<1>(seen) < plan.stop)
        wanted.insert(seen);
    }
  }
  EXPECT_EQ(sink.seen, wanted);
  for (const auto& plan : unit.partitions) EXPECT_EQ(sink.ends[plan.partition], plan.stop);
}

TEST_F(KafkaBatchScanTest, ARefusingSinkStopsOnlyItsOwnTopic) {
  auto kafka = source(true);
  auto plans = kafka->plan_topics({"codec-none", "codec-zstd"}, limits());
  ASSERT_TRUE(plans[0].ok() && plans[1].ok());
  CollectSink limited(100), full;
  std::vector<UnitSink*> sinks = {&limited, &full};
  ASSERT_TRUE(kafka->scan_together({*plans[0], *plans[1]}, limits(), sinks, {}).ok());
  EXPECT_EQ(limited.seen.size(), 100u);
  EXPECT_TRUE(limited.ends.empty());  // refused: no partition reached its end
  EXPECT_EQ(full.seen, expected("codec-zstd"));
  EXPECT_EQ(full.ends.size(), 3u);
}

}  // namespace
}  // namespace telekern::tracer
