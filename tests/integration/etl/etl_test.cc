// The etl engine against real servers: clickhouse-server (Debian's 18.16),
// redis-server, the embedded broker in a real telekernd and a Kafka mock
// cluster, with the sample messages of deploy/samples/.
#include <grpcpp/create_channel.h>
#include <gtest/gtest.h>
#include <hiredis/hiredis.h>

#include <algorithm>
#include <fstream>

#include "clickhouse.h"
#include "etl_engine.h"
#include "row_binary.h"
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

// The streamed INSERT: batches go into one open request and nothing is
// written or committed before it ends; ClickHouse dying mid-stream makes the
// writer send those batches again, and nothing is lost or skipped.
TEST_F(EtlTest, StreamedInsertSpansBatchesAndCommitsOnlyAfterIt) {
  create_broker_topic("streamed");
  auto o = options();
  o.pipeline_type = "clickhouse";
  o.kafka_topic = "streamed";
  o.kafka_consumer_group = "streamed-group";
  o.clickhouse_processors = "InterfaceTrafficProcessor";
  o.clickhouse_batch_size = 100;  // polls of up to 100: built on two threads
  // Two full batches and a partial one that waits for its timeout: the
  // consumer is not drained meanwhile, so the INSERT stays open.
  o.clickhouse_batch_timeout = 5;
  o.clickhouse_insert_max_age = 120;
  auto make = [](int from, int to) {
    std::vector<std::string> out;
    for (int i = from; i < to; ++i)
      out.push_back(R"({"start": )" + std::to_string(1733050000 + i) +
                    R"(, "meta": {"id": "s::if)" + std::to_string(i) +
                    R"(", "device": "s"}, "values": {"in_bits": {"val": )" + std::to_string(i) +
                    "}}}");
    return out;
  };
  const std::string db = database_;
  const std::string committed = "telekern_etl_committed_offset{pipeline=\"default\"";
  auto& s = servers();
  produce(o.stream, "streamed", make(0, 250));
  {
    auto e = engine(o);
    ASSERT_TRUE(testing::wait_for(
        [&] {
          auto view = e->view("default");
          return view.ok() && view->counters.messages == 250 && view->counters.batches >= 2;
        },
        20s))
        << e->problems();
    // 200 rows handed to the open INSERT: none written, none committed.
    auto view = e->view("default");
    ASSERT_TRUE(view.ok());
    EXPECT_EQ(view->counters.rows_written, 0u);
    EXPECT_EQ(view->counters.pending, 250u);
    EXPECT_EQ(count("SELECT count() FROM " + db + ".if_traffic"), 0);
    EXPECT_EQ(metrics_.expose().find(committed), std::string::npos);
    // The server dies mid-stream: the writer retries, commits nothing meanwhile.
    s.clickhouse.kill();
    ASSERT_TRUE(testing::wait_for(
        [&] { return e->problems().find("retrying") != std::string::npos; }, 20s));
    EXPECT_EQ(metrics_.expose().find(committed), std::string::npos);
    ASSERT_TRUE(s.clickhouse.restart()) << s.clickhouse.log();
    ASSERT_TRUE(wait_count("SELECT uniqExact(id, start_ts) FROM " + db + ".if_traffic", 250, 60s))
        << e->problems();
    ASSERT_TRUE(testing::wait_for(
        [&] { return metrics_.expose().find(committed) != std::string::npos; }, 20s));
  }
  // The group's next instance starts after the committed offsets: no gap.
  produce(o.stream, "streamed", make(250, 300));
  o.clickhouse_batch_timeout = 0.2;
  auto e = engine(o);
  ASSERT_TRUE(wait_count("SELECT uniqExact(id, start_ts) FROM " + db + ".if_traffic", 300, 60s))
      << e->problems();
  EXPECT_LE(count("SELECT count() FROM " + db + ".if_traffic"), 300 + 250);
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

// The same rows inserted as RowBinary and as JSONEachRow read back identical,
// for every built-in table, on the server's (18.16) types.
TEST(EtlRowBinary, RowsReadBackIdenticalToJsonEachRow) {
  auto& s = servers();
  ASSERT_TRUE(s.clickhouse.ready()) << s.clickhouse.log();
  const std::string db = "t_row_binary";
  ASSERT_EQ(s.clickhouse.query("CREATE DATABASE IF NOT EXISTS " + db), "");
  ClickHouse clickhouse(ClickHouseOptions{"127.0.0.1", s.clickhouse.http_port(), db});
  auto profile = clickhouse.profile();
  ASSERT_TRUE(profile.ok()) << profile.status();
  std::vector<std::string> messages = sample("flow.jsonl");
  for (const auto& line : sample("interface.jsonl")) messages.push_back(line);
  // Values RowBinary must carry exactly: escapes, non-ASCII, nulls, empty lists, big numbers.
  messages.push_back(
      R"({"start": 1733050000.5, "end": "2024-12-01T10:00:30Z", "meta": {"src_ip": "198.51.100.9",)"
      R"( "dst_ip": "::1", "src_port": 1, "dst_port": 2, "src_asn": 4294967295, "dst_asn": 0,)"
      R"( "protocol": "tab\there \"quoted\" \u00e9\u4e2d\ud83d\ude00", "bgp": {"as_path": []}},)"
      R"( "values": {"num_bits": 18446744073709551615, "num_packets": "12", "duration": 1.5e-3}})");
  simdjson::dom::parser parser;
  BuildContext context;
  context.profile = *profile;
  for (const auto& name : {"FlowProcessor", "InterfaceTrafficProcessor",
                           "InterfacePortQueueProcessor", "InterfaceSAPQueueProcessor"}) {
    auto processor = make_builtin_processor(name, BuiltinSettings{});
    ASSERT_TRUE(processor.ok()) << processor.status();
    std::vector<Row> rows;
    for (const auto& message : messages) {
      auto document = parser.parse(message);
      ASSERT_FALSE(document.error()) << message;
      if (!(*processor)->match(document.value_unsafe())) continue;
      ASSERT_TRUE((*processor)->build(document.value_unsafe(), Message{}, context, rows).ok());
    }
    ASSERT_FALSE(rows.empty()) << name;
    TableSchema json_table = *(*processor)->schema();
    TableSchema binary_table = json_table;
    json_table.name += "_json";
    binary_table.name += "_binary";
    ASSERT_TRUE(clickhouse.ensure_table(json_table).ok());
    ASSERT_TRUE(clickhouse.ensure_table(binary_table).ok());
    std::vector<const Row*> pointers;
    std::string json;
    for (const auto& row : rows) {
      pointers.push_back(&row);
      row.append_json(json);
      json += '\n';
    }
    ASSERT_TRUE(clickhouse.insert_json(json_table.name, json).ok());
    auto encoder = RowBinaryEncoder::create(binary_table, *profile);
    ASSERT_TRUE(encoder.ok()) << encoder.status();
    std::string body;
    auto columns = encoder->encode(pointers, body);
    ASSERT_TRUE(columns.ok()) << columns.status();
    auto inserted = clickhouse.insert_row_binary(binary_table.name, *columns, body);
    ASSERT_TRUE(inserted.ok()) << inserted;
    EXPECT_LT(body.size(), json.size() / 2) << name;
    std::string select;
    for (const auto& column : json_table.columns) {
      if (!column.default_expr.empty()) continue;  // insert_ts: the insert's own time
      if (!select.empty()) select += ", ";
      select += "`" + column.name + "`";
    }
    auto read = [&](const std::string& table) {
      return s.clickhouse.query("SELECT " + select + " FROM " + db + "." + table + " ORDER BY " +
                                select + " FORMAT TSV");
    };
    std::string from_json = read(json_table.name);
    EXPECT_EQ(std::count(from_json.begin(), from_json.end(), '\n'), static_cast<long>(rows.size()));
    EXPECT_EQ(read(binary_table.name), from_json) << name;
  }
}

// Records that fail parsing or match no processor go to the dead-letter topic
// with their original payload and the reason in headers; good ones to ClickHouse.
TEST_F(EtlTest, DeadLetterTopicKeepsPayloadAndReason) {
  auto& s = servers();
  s.kafka.create_topic("dl_in", 1);
  s.kafka.create_topic("dl_out", 1);
  auto o = options();
  o.consumer = "kafka";
  o.pipeline_type = "clickhouse";
  o.kafka_topic = "dl_in";
  o.kafka_consumer_group = "dl-group";
  o.clickhouse_processors = "InterfaceTrafficProcessor";
  o.dead_letter_topic = "dl_out";
  stream::StreamConfig kafka;
  kafka.transport = "kafka://" + s.kafka.bootstraps();
  std::vector<std::string> good;  // the samples with traffic (the rest: metadata, queues)
  for (const auto& line : sample("interface.jsonl"))
    if (line.find("in_bits") != std::string::npos) good.push_back(line);
  std::vector<std::string> values = good;
  values.push_back("not json {");
  values.push_back(R"({"unrelated": true})");
  produce(kafka, "dl_in", values);
  auto e = engine(o);
  const std::string db = database_;
  ASSERT_TRUE(
      wait_count("SELECT count() FROM " + db + ".if_traffic", static_cast<long long>(good.size())))
      << e->problems();
  auto consumer =
      stream::make_consumer(kafka, {"dl-reader", {"dl_out"}, stream::StartFrom::kEarliest});
  ASSERT_TRUE(consumer.ok()) << consumer.status();
  std::vector<stream::Record> dead;
  testing::wait_for(
      [&] {
        auto records = (*consumer)->poll(10, 200ms);
        if (records.ok()) dead.insert(dead.end(), records->begin(), records->end());
        return dead.size() >= 2;
      },
      30s);
  ASSERT_EQ(dead.size(), 2u);
  auto header = [](const stream::Record& record, const std::string& name) {
    for (const auto& [key, value] : record.headers)
      if (key == name) return value;
    return std::string("<missing>");
  };
  std::sort(dead.begin(), dead.end(),
            [](const auto& a, const auto& b) { return a.value < b.value; });
  EXPECT_EQ(dead[0].value, "not json {");
  EXPECT_NE(header(dead[0], "etl-reason").find("invalid JSON"), std::string::npos);
  EXPECT_EQ(dead[1].value, R"({"unrelated": true})");
  EXPECT_EQ(header(dead[1], "etl-reason"), "no processor matched");
  EXPECT_EQ(header(dead[1], "etl-pipeline"), "default");
  EXPECT_EQ(header(dead[1], "etl-topic"), "dl_in");
  EXPECT_EQ(header(dead[1], "etl-offset"), std::to_string(good.size() + 1));
  // The topic replaces the dead-letter table.
  EXPECT_EQ(count("SELECT count() FROM system.tables WHERE database='" + db +
                  "' AND name='etl_dead_letter'"),
            0);
}

// Consumer lag per partition: what the group has not committed, in
// PipelineStats and telekern_etl_consumer_lag; zero once committed.
TEST_F(EtlTest, ConsumerLagPerPartition) {
  auto& s = servers();
  s.kafka.create_topic("lag_in", 2);
  auto o = options();
  o.consumer = "kafka";
  o.pipeline_type = "clickhouse";
  o.kafka_topic = "lag_in";
  o.kafka_consumer_group = "lag-group";
  o.clickhouse_processors = "InterfaceTrafficProcessor";
  o.kafka_auto_commit_interval_ms = 600000;  // written but not committed until stop
  stream::StreamConfig kafka;
  kafka.transport = "kafka://" + s.kafka.bootstraps();
  auto values = sample("interface.jsonl");  // 4 with traffic, 2 dead letters
  produce(kafka, "lag_in", values);
  auto e = engine(o);
  const std::string db = database_;
  ASSERT_TRUE(wait_count("SELECT count() FROM " + db + ".if_traffic", 4)) << e->problems();
  uint64_t lag = 0;
  std::map<std::string, uint64_t> by_partition;
  ASSERT_TRUE(testing::wait_for(
      [&] {
        auto view = e->view("default");
        if (!view.ok()) return false;
        lag = view->counters.consumer_lag;
        by_partition = view->counters.lag_by_partition;
        return lag == values.size();
      },
      20s))
      << "lag " << lag;
  EXPECT_EQ(by_partition.size(), 2u);
  uint64_t sum = 0;
  for (const auto& [partition, records] : by_partition) sum += records;
  EXPECT_EQ(sum, values.size());
  std::string text = metrics_.expose();
  EXPECT_NE(text.find("telekern_etl_consumer_lag{pipeline=\"default\",partition=\"0\"}"),
            std::string::npos)
      << text;
  // Stopping commits what was written: nothing is left behind.
  auto stopped = e->stop_pipeline("default");
  ASSERT_TRUE(stopped.ok()) << stopped.status();
  EXPECT_EQ(stopped->counters.consumer_lag, 0u);
}

// The same over the embedded broker: dead letters through telekern::stream to
// a broker topic, and the lag of the broker's partitions once committed.
TEST_F(EtlTest, DeadLetterTopicAndLagOverEmbeddedBroker) {
  create_broker_topic("dlb_in");
  create_broker_topic("dlb_out");
  auto o = options();  // consumer: broker, commits right after each write
  o.pipeline_type = "clickhouse";
  o.kafka_topic = "dlb_in";
  o.kafka_consumer_group = "dlb-group";
  o.clickhouse_processors = "InterfaceTrafficProcessor";
  o.dead_letter_topic = "dlb_out";
  auto values = sample("interface.jsonl");  // 4 with traffic, 2 no processor matches
  values.push_back("{broken");
  produce(o.stream, "dlb_in", values);
  auto e = engine(o);
  const std::string db = database_;
  ASSERT_TRUE(wait_count("SELECT count() FROM " + db + ".if_traffic", 4)) << e->problems();
  auto consumer =
      stream::make_consumer(o.stream, {"dlb-reader", {"dlb_out"}, stream::StartFrom::kEarliest});
  ASSERT_TRUE(consumer.ok()) << consumer.status();
  std::vector<stream::Record> dead;
  testing::wait_for(
      [&] {
        auto records = (*consumer)->poll(10, 200ms);
        if (records.ok()) dead.insert(dead.end(), records->begin(), records->end());
        return dead.size() >= 3;
      },
      30s);
  ASSERT_EQ(dead.size(), 3u);
  int broken = 0;
  for (const auto& record : dead) {
    bool has_reason = false;
    for (const auto& [key, value] : record.headers) has_reason |= key == "etl-reason";
    EXPECT_TRUE(has_reason) << record.value;
    broken += record.value == "{broken";
  }
  EXPECT_EQ(broken, 1);
  std::map<std::string, uint64_t> lag;
  ASSERT_TRUE(testing::wait_for(
      [&] {
        auto view = e->view("default");
        if (!view.ok()) return false;
        lag = view->counters.lag_by_partition;
        return lag.size() == 2 && view->counters.consumer_lag == 0;
      },
      20s))
      << lag.size();
}

}  // namespace
}  // namespace telekern::etl
