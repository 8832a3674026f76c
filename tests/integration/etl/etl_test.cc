// The etl engine against real servers: clickhouse-server (Debian's 18.16),
// redis-server, the embedded broker in a real telekernd and a Kafka mock
// cluster, with the sample messages of deploy/samples/.
#include <grpcpp/create_channel.h>
#include <gtest/gtest.h>
#include <hiredis/hiredis.h>

#include <fstream>

#include "etl_engine.h"
#include "telekern/broker/v1/broker.grpc.pb.h"
#include "telekern/log.h"
#include "telekern/stream.h"
#include "tests/support/clickhouse_server.h"
#include "tests/support/kafka_mock_cluster.h"
#include "tests/support/redis_server.h"
#include "tests/support/telekernd.h"

namespace telekern::etl {
namespace {

using namespace std::chrono_literals;

// Servers started once per test binary.
struct Servers {
  testing::ClickHouseServer clickhouse;
  testing::RedisServer redis;
  testing::Telekernd daemon{
      {.modules_dir = std::string(TELEKERN_BUILD_DIR) + "/modules", .load = {"broker"}}};
  testing::KafkaMockCluster kafka{1};
};

Servers& servers() {
  static auto* instance = new Servers();
  return *instance;
}

std::vector<std::string> sample(const std::string& name) {
  std::ifstream file(std::string(TELEKERN_SOURCE_DIR) + "/deploy/samples/" + name);
  std::vector<std::string> lines;
  for (std::string line; std::getline(file, line);)
    if (!line.empty()) lines.push_back(line);
  return lines;
}

class EtlTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto& s = servers();
    ASSERT_TRUE(s.clickhouse.ready()) << "clickhouse-server did not start: " << s.clickhouse.log();
    ASSERT_TRUE(s.redis.ready()) << "redis-server did not start";
    ASSERT_TRUE(s.daemon.ready()) << "telekernd did not start: " << s.daemon.log();
    ASSERT_TRUE(s.kafka.ok());
    database_ = std::string("t_") + ::testing::UnitTest::GetInstance()->current_test_info()->name();
    ASSERT_EQ(s.clickhouse.query("CREATE DATABASE IF NOT EXISTS " + database_), "");
  }

  EtlOptions options() {
    auto& s = servers();
    EtlOptions o;
    o.clickhouse_host = "127.0.0.1";
    o.clickhouse_port = s.clickhouse.http_port();
    o.clickhouse_database = database_;
    o.redis_host = "127.0.0.1";
    o.redis_port = s.redis.port();
    o.kafka_bootstrap_servers = s.kafka.bootstraps();
    o.kafka_auto_offset_reset = "earliest";
    o.kafka_session_timeout_ms = 6000;
    o.kafka_heartbeat_interval_ms = 500;
    o.kafka_auto_commit_interval_ms = 0;
    o.clickhouse_batch_timeout = 0.2;
    o.clickhouse_flush_interval = 0.05;
    o.stream.transport = "telekern://" + s.daemon.grpc_address();
    o.consumer = "broker";
    return o;
  }

  void create_broker_topic(const std::string& topic) {
    broker::v1::CreateTopicRequest request;
    request.set_topic(topic);
    request.set_partitions(2);
    broker::v1::CreateTopicResponse response;
    grpc::ClientContext context;
    auto status = broker::v1::Broker::NewStub(servers().daemon.channel())
                      ->CreateTopic(&context, request, &response);
    ASSERT_TRUE(status.ok()) << status.error_message();
  }

  void produce(const stream::StreamConfig& config, const std::string& topic,
               const std::vector<std::string>& values) {
    auto producer = stream::make_producer(config);
    ASSERT_TRUE(producer.ok()) << producer.status();
    for (const auto& value : values) {
      stream::Record record;
      record.topic = topic;
      record.value = value;
      ASSERT_TRUE((*producer)->send(record).ok());
    }
    ASSERT_TRUE((*producer)->flush(10s).ok());
  }

  long long count(const std::string& sql) {
    return servers().clickhouse.count(sql + " SETTINGS max_threads=1");
  }
  bool wait_count(const std::string& sql, long long wanted, std::chrono::seconds bound = 30s) {
    return testing::wait_for([&] { return count(sql) == wanted; }, bound);
  }

  std::unique_ptr<EtlEngine> engine(EtlOptions o) {
    auto e = std::make_unique<EtlEngine>(std::move(o), &metrics_, make_logger("etl-test"));
    e->start();
    return e;
  }

  std::string database_;
  MetricsRegistry metrics_;
};

TEST_F(EtlTest, InterfacePipelineOverEmbeddedBrokerWritesEveryTable) {
  create_broker_topic("metranova_interface");
  auto o = options();
  o.pipeline_type = "clickhouse";
  o.kafka_topic = "metranova_interface";
  o.clickhouse_processors =
      "metranova.processors.clickhouse.interface.InterfaceTrafficProcessor,"
      "InterfaceSAPQueueProcessor,InterfacePortQueueProcessor";
  o.redis_hash_processors = "metranova.processors.redis.interface.InterfaceMetadataProcessor";
  auto messages = sample("interface.jsonl");
  messages.push_back("{not json");
  messages.push_back(R"({"start": 1, "meta": {"unrelated": true}})");
  produce(o.stream, "metranova_interface", messages);
  auto e = engine(o);

  const std::string db = database_;
  ASSERT_TRUE(wait_count("SELECT count() FROM " + db + ".if_traffic", 4))
      << e->problems() << " " << count("SELECT count() FROM " + db + ".if_traffic");
  ASSERT_TRUE(wait_count("SELECT count() FROM " + db + ".if_port_queue", 2));
  ASSERT_TRUE(wait_count("SELECT count() FROM " + db + ".if_sap_queue", 1));
  // Bad messages are counted and kept in the dead-letter table, with the reason.
  ASSERT_TRUE(wait_count("SELECT count() FROM " + db + ".etl_dead_letter", 2));
  EXPECT_EQ(servers()
                .clickhouse
                .query("SELECT reason FROM " + db +
                       ".etl_dead_letter WHERE reason LIKE 'invalid JSON%' FORMAT TSV")
                .substr(0, 12),
            "invalid JSON");
  EXPECT_EQ(
      servers().clickhouse.query("SELECT id, name, device, collector_id, in_bits, out_errors, "
                                 "policy_scopes, toUnixTimestamp(start_ts) FROM " +
                                 db + ".if_traffic WHERE name = 'xe-0/0/2' FORMAT TSV"),
      "rtr0::xe-0/0/2\txe-0/0/2\trtr0\tsnmp-1\t3000\t1\t['esnet']\t1733050060\n");
  EXPECT_EQ(servers().clickhouse.query("SELECT queue_num, name, in_inprof_fwd_bits FROM " + db +
                                       ".if_port_queue ORDER BY queue_num FORMAT TSV"),
            "1\txe-0/0/0\t5\n3\txe-0/0/0\t7\n");
  // Interface metadata went to Redis hashes with expiry.
  redisContext* redis = servers().redis.connect();
  ASSERT_NE(redis, nullptr);
  auto* reply =
      static_cast<redisReply*>(redisCommand(redis, "HGET meta_if_cache:rtr1::xe-0/0/1 speed"));
  ASSERT_NE(reply, nullptr);
  ASSERT_EQ(reply->type, REDIS_REPLY_STRING);
  EXPECT_STREQ(reply->str, "100000");
  freeReplyObject(reply);
  reply = static_cast<redisReply*>(redisCommand(redis, "TTL meta_if_cache:rtr1::xe-0/0/1"));
  EXPECT_GT(reply->integer, 86000);
  freeReplyObject(reply);
  redisFree(redis);

  auto view = e->view("default");
  ASSERT_TRUE(view.ok());
  EXPECT_EQ(view->counters.messages, messages.size());
  EXPECT_EQ(view->counters.errors_by_reason["invalid_json"], 1u);
  EXPECT_EQ(view->counters.errors_by_reason["no_processor_matched"], 1u);
  EXPECT_NE(metrics_.expose().find(
                "telekern_etl_rows_written_total{pipeline=\"default\",table=\"if_traffic\"} 4"),
            std::string::npos);
}

TEST_F(EtlTest, FlowPipelineOverKafkaFallsBackToOldTypes) {
  auto& s = servers();
  s.kafka.create_topic("metranova_flow", 2);
  auto o = options();
  o.consumer = "kafka";
  o.pipeline_type = "clickhouse";
  o.clickhouse_processors = "metranova.processors.clickhouse.flow.FlowProcessor";
  stream::StreamConfig kafka;
  kafka.transport = "kafka://" + s.kafka.bootstraps();
  auto flows = sample("flow.jsonl");
  produce(kafka, "metranova_flow", flows);
  auto e = engine(o);
  const std::string db = database_;
  ASSERT_TRUE(wait_count("SELECT count() FROM " + db + ".flow_edge", 5)) << e->problems();
  // 18.16 has no IPv6 type: addresses are kept as text (documented fallback).
  EXPECT_EQ(
      s.clickhouse.query(
          "SELECT type FROM system.columns WHERE database='" + db +
          "' AND table='flow_edge' AND name IN ('dst_ip','start_ts') ORDER BY name FORMAT TSV"),
      "String\nDateTime(\\'UTC\\')\n");
  EXPECT_EQ(s.clickhouse.query("SELECT src_ip, dst_ip, bgp_as_path, bgp_as_path_padding, mpls_exp, "
                               "src_as_name, num_pkts, src_loc_lat FROM " +
                               db + ".flow_edge WHERE src_port = 40000 FORMAT TSV"),
            "198.51.100.1\t2001:db8::1\t[64496,64500,64511]\t[1,2]\t[0,5]\tunknown\t1000\t37.87\n");
}

TEST_F(EtlTest, ClickHouseOutageLosesNothingAndCommitsOnlyWrittenData) {
  create_broker_topic("outage");
  auto o = options();
  o.pipeline_type = "clickhouse";
  o.kafka_topic = "outage";
  o.kafka_consumer_group = "outage-group";
  o.clickhouse_processors = "InterfaceTrafficProcessor";
  o.clickhouse_batch_size = 50;
  auto make = [](int from, int to) {
    std::vector<std::string> out;
    for (int i = from; i < to; ++i)
      out.push_back(R"({"start": )" + std::to_string(1733050000 + i) +
                    R"(, "meta": {"id": "r::if)" + std::to_string(i) +
                    R"(", "device": "r"}, "values": {"in_bits": {"val": )" + std::to_string(i) +
                    "}}}");
    return out;
  };
  const std::string db = database_;
  auto& s = servers();
  {
    auto e = engine(o);
    produce(o.stream, "outage", make(0, 200));
    ASSERT_TRUE(wait_count("SELECT count() FROM " + db + ".if_traffic", 200)) << e->problems();
    s.clickhouse.kill();
    produce(o.stream, "outage", make(200, 400));
    // The pipeline retries and says so; nothing is committed past the written data.
    ASSERT_TRUE(testing::wait_for([&] { return !e->problems().empty(); }, 20s));
    EXPECT_NE(e->problems().find("retrying"), std::string::npos) << e->problems();
    ASSERT_TRUE(s.clickhouse.restart()) << s.clickhouse.log();
    ASSERT_TRUE(wait_count("SELECT uniqExact(id, start_ts) FROM " + db + ".if_traffic", 400, 60s))
        << e->problems();
    EXPECT_GE(count("SELECT count() FROM " + db + ".if_traffic"), 400);
    ASSERT_TRUE(testing::wait_for([&] { return e->problems().empty(); }, 20s));
  }
  // A new instance of the group starts after the committed offsets: no gap
  // and nothing beyond a redelivered tail written twice.
  produce(o.stream, "outage", make(400, 450));
  auto e = engine(o);
  ASSERT_TRUE(wait_count("SELECT uniqExact(id, start_ts) FROM " + db + ".if_traffic", 450, 60s))
      << e->problems();
}

TEST_F(EtlTest, MetadataExportAndImportRoundTrip) {
  create_broker_topic("metadata");
  auto o = options();
  o.kafka_topic = "metadata";
  o.redis_if_metadata_table = "meta_if_cache_roundtrip";
  YAML::Node pipelines = YAML::Load(R"(
- {name: meta, type: clickhouse, processors: [InterfaceMetadataProcessor], consumer: {start: earliest}}
- {name: export, type: metadata_export, interval: 200ms}
- {name: import, type: metadata_import, interval: 200ms}
)");
  o.pipelines = pipelines;
  produce(o.stream, "metadata", sample("metadata.jsonl"));
  auto e = engine(o);
  const std::string db = database_;
  ASSERT_TRUE(wait_count("SELECT count() FROM " + db + ".meta_if", 3))
      << e->problems() << count("SELECT count() FROM " + db + ".meta_if");
  EXPECT_EQ(
      servers().clickhouse.query("SELECT id, name, speed, remote_device, remote_loc_lat FROM " +
                                 db + ".meta_if WHERE id = 'rtr9::et-1' FORMAT TSV"),
      "rtr9::et-1\tet-1\t400000\tpeer1\t40.1\n");
  // Unchanged hashes are not exported again.
  std::this_thread::sleep_for(600ms);
  EXPECT_EQ(count("SELECT count() FROM " + db + ".meta_if"), 3);
  // metadata_import put id -> ref into Redis; the traffic processor resolves it.
  redisContext* redis = servers().redis.connect();
  ASSERT_TRUE(testing::wait_for(
      [&] {
        auto* reply = static_cast<redisReply*>(redisCommand(redis, "HGET meta_if rtr9::et-2"));
        bool ok = reply && reply->type == REDIS_REPLY_STRING &&
                  std::string(reply->str).rfind("rtr9::et-2__", 0) == 0;
        if (reply) freeReplyObject(reply);
        return ok;
      },
      20s))
      << e->problems();
  redisFree(redis);
  auto dry = e->dry_run(
      "InterfaceTrafficProcessor",
      R"({"start": 1, "meta": {"id": "rtr9::et-2", "device": "rtr9"}, "values": {"in_bits": {"val": 1}}})",
      "");
  ASSERT_TRUE(dry.ok());
  ASSERT_EQ(dry->rows.size(), 1u);
  EXPECT_NE(dry->rows[0].json.find("\"ref\":\"rtr9::et-2__"), std::string::npos)
      << dry->rows[0].json;
}

TEST_F(EtlTest, OnePipelineFailingLeavesTheOthersRunning) {
  create_broker_topic("healthy");
  auto o = options();
  o.pipelines = YAML::Load(R"(
- {name: broken, type: clickhouse, processors: [NoSuchProcessor]}
- {name: healthy, type: clickhouse, processors: [InterfaceTrafficProcessor], consumer: {topic: healthy, start: earliest}}
)");
  produce(o.stream, "healthy", sample("interface.jsonl"));
  auto e = engine(o);
  ASSERT_TRUE(wait_count("SELECT count() FROM " + database_ + ".if_traffic", 4)) << e->problems();
  EXPECT_NE(e->problems().find("pipeline broken failed: no processor 'NoSuchProcessor'"),
            std::string::npos)
      << e->problems();
  EXPECT_EQ(e->list().size(), 2u);
}

}  // namespace
}  // namespace telekern::etl
