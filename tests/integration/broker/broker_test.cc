// The broker module in a real telekernd over gRPC: ordering, LOG and QUEUE
// groups, visibility timeouts and dead letters, rebalancing, limits,
// auto-create, metrics, crash recovery under kill -9 and a full disk.
#include <google/protobuf/util/time_util.h>
#include <grpcpp/create_channel.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <fstream>
#include <map>
#include <set>
#include <thread>

#include "tests/integration/broker/broker_client.h"

namespace telekern::testing {
namespace {

TEST(BrokerIntegrationTest, AutoCreatesAndKeepsOrderPerPartitionAndKey) {
  Telekernd daemon(broker_options());
  ASSERT_TRUE(daemon.ready()) << daemon.log();
  Client client(daemon);
  // 5 keys x 60 records, produced in batches of 10 with keys, plus unkeyed round-robin.
  for (int batch = 0; batch < 30; ++batch) {
    std::string key = "device-" + std::to_string(batch % 5);
    std::vector<std::string> values;
    for (int i = 0; i < 10; ++i) values.push_back(key + ":" + std::to_string(batch / 5 * 10 + i));
    auto response = client.produce_ok("telemetry", values, std::nullopt, key);
    ASSERT_EQ(response.appends_size(), 1);  // one key -> one partition
    EXPECT_EQ(response.appends(0).count(), 10u);
  }
  auto unkeyed = client.produce_ok("telemetry", {"a", "b", "c", "d"});
  EXPECT_EQ(unkeyed.appends_size(), 4);  // round-robin over the 4 auto-created partitions
  auto description = client.describe("telemetry");
  ASSERT_EQ(description.partitions_size(), 4);  // default_partitions
  uint64_t total = 0;
  for (const auto& partition : description.partitions()) total += partition.end_offset();
  EXPECT_EQ(total, 304u);

  auto request = consume_request("telemetry", "readers");
  request.set_max(304);
  request.set_max_batch(50);
  Consumer consumer(client, request);
  auto records = consumer.read(304);
  ASSERT_EQ(records.size(), 304u);
  std::map<uint32_t, int64_t> last_offset;
  std::map<std::string, int> last_sequence;
  std::map<std::string, uint32_t> key_partition;
  for (const auto& record : records) {
    auto& last = last_offset.try_emplace(record.partition(), -1).first->second;
    EXPECT_EQ(static_cast<int64_t>(record.offset()), last + 1)
        << "partition " << record.partition();
    last = static_cast<int64_t>(record.offset());
    if (record.key().empty()) continue;
    auto [it, fresh] = key_partition.try_emplace(record.key(), record.partition());
    EXPECT_EQ(it->second, record.partition()) << "key " << record.key() << " moved";
    int sequence = std::stoi(record.value().substr(record.value().find(':') + 1));
    auto& previous = last_sequence.try_emplace(record.key(), -1).first->second;
    EXPECT_EQ(sequence, previous + 1) << record.key();
    previous = sequence;
  }
  EXPECT_TRUE(consumer.finish().ok());
}

TEST(BrokerIntegrationTest, LogModeResumesFromCommittedOffsets) {
  Telekernd daemon(broker_options());
  ASSERT_TRUE(daemon.ready()) << daemon.log();
  Client client(daemon);
  ASSERT_TRUE(client.create("events", 1).ok());
  std::vector<std::string> values;
  for (int i = 0; i < 30; ++i) values.push_back("e" + std::to_string(i));
  client.produce_ok("events", values);
  {
    auto request = consume_request("events", "g");
    request.set_auto_commit(true);
    request.set_max(10);
    Consumer consumer(client, request);
    EXPECT_EQ(consumer.read(10).back().value(), "e9");
    EXPECT_TRUE(consumer.finish().ok());
  }
  {
    auto request = consume_request("events", "g");
    request.set_max(5);
    Consumer consumer(client, request);
    auto records = consumer.read(5);
    EXPECT_EQ(records.front().value(), "e10");
    EXPECT_TRUE(consumer.finish().ok());
  }
  // Nothing was committed by the second consumer: explicit commit, then describe.
  bv1::CommitRequest commit;
  commit.set_topic("events");
  commit.set_group("g");
  commit.set_partition(0);
  commit.set_offset(25);
  bv1::CommitResponse committed;
  ASSERT_TRUE(client.call(&bv1::Broker::Stub::Commit, commit, &committed).ok());
  bv1::DescribeGroupRequest describe;
  describe.set_topic("events");
  describe.set_group("g");
  bv1::DescribeGroupResponse group;
  ASSERT_TRUE(client.call(&bv1::Broker::Stub::DescribeGroup, describe, &group).ok());
  EXPECT_EQ(group.group().partitions(0).committed_offset(), 25u);
  EXPECT_EQ(group.group().lag(), 5u);
  // Reset to earliest: the group reads from 0 again.
  bv1::ResetOffsetsRequest reset;
  reset.set_topic("events");
  reset.set_group("g");
  reset.set_start(bv1::START_POSITION_EARLIEST);
  bv1::ResetOffsetsResponse reset_response;
  ASSERT_TRUE(client.call(&bv1::Broker::Stub::ResetOffsets, reset, &reset_response).ok());
  auto request = consume_request("events", "g");
  request.set_max(1);
  Consumer consumer(client, request);
  EXPECT_EQ(consumer.read(1).front().value(), "e0");
}

TEST(BrokerIntegrationTest, QueueModeRedeliversAfterVisibilityTimeoutThenDeadLetters) {
  Telekernd daemon(broker_options("    max_deliveries: 2\n"));
  ASSERT_TRUE(daemon.ready()) << daemon.log();
  Client client(daemon);
  ASSERT_TRUE(client.create("jobs", 1).ok());
  client.produce_ok("jobs", {"job-1"});
  auto request = consume_request("jobs", "workers", bv1::GROUP_MODE_QUEUE);
  request.set_member("worker-a");
  *request.mutable_visibility_timeout() = TimeUtil::MillisecondsToDuration(300);
  Consumer consumer(client, request);
  auto first = consumer.read(1);
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(first[0].delivery_attempt(), 1u);
  auto second = consumer.read(1);  // not acked: comes back after ~300 ms
  ASSERT_EQ(second.size(), 1u);
  EXPECT_EQ(second[0].offset(), first[0].offset());
  EXPECT_EQ(second[0].delivery_attempt(), 2u);

  // Not acked again: the second timeout dead-letters it to jobs.dlq.
  auto dlq_request = consume_request("jobs.dlq", "inspect");
  dlq_request.set_max(1);
  Consumer dead(client, dlq_request);
  auto letters = dead.read(1);
  ASSERT_EQ(letters.size(), 1u);
  EXPECT_EQ(letters[0].value(), "job-1");
  auto headers = headers_of(letters[0]);
  EXPECT_EQ(headers["x-dlq-attempts"], "2");
  EXPECT_EQ(headers["x-dlq-consumer"], "worker-a");
  EXPECT_EQ(headers["x-dlq-source-topic"], "jobs");
  EXPECT_NE(headers["x-dlq-reason"].find("max_deliveries=2"), std::string::npos)
      << headers["x-dlq-reason"];
  EXPECT_NE(headers["x-dlq-history"].find("visibility timeout"), std::string::npos);

  bv1::DescribeGroupRequest describe;
  describe.set_topic("jobs");
  describe.set_group("workers");
  bv1::DescribeGroupResponse group;
  ASSERT_TRUE(client.call(&bv1::Broker::Stub::DescribeGroup, describe, &group).ok());
  EXPECT_EQ(group.group().dead_lettered(), 1u);
  EXPECT_EQ(group.group().in_flight(), 0u);
  EXPECT_EQ(group.group().mode(), bv1::GROUP_MODE_QUEUE);
}

TEST(BrokerIntegrationTest, QueueModeAcksNacksAndReleasesOnStreamEnd) {
  Telekernd daemon(broker_options());
  ASSERT_TRUE(daemon.ready()) << daemon.log();
  Client client(daemon);
  ASSERT_TRUE(client.create("tasks", 1).ok());
  client.produce_ok("tasks", {"t0", "t1", "t2", "t3", "t4"});
  auto request = consume_request("tasks", "pool", bv1::GROUP_MODE_QUEUE);
  auto consumer = std::make_unique<Consumer>(client, request);
  auto records = consumer->read(5);
  ASSERT_EQ(records.size(), 5u);
  bv1::AckRequest ack;
  ack.set_topic("tasks");
  ack.set_group("pool");
  for (uint64_t offset : {0, 2}) {
    auto* ref = ack.add_deliveries();
    ref->set_partition(0);
    ref->set_offset(offset);
  }
  bv1::AckResponse acked;
  ASSERT_TRUE(client.call(&bv1::Broker::Stub::Ack, ack, &acked).ok());
  EXPECT_EQ(acked.acked(), 2u);
  bv1::NackRequest nack;
  nack.set_topic("tasks");
  nack.set_group("pool");
  nack.set_partition(0);
  nack.set_offset(1);
  nack.set_error("parse error");
  *nack.mutable_delay() = TimeUtil::MillisecondsToDuration(0);
  bv1::NackResponse nacked;
  ASSERT_TRUE(client.call(&bv1::Broker::Stub::Nack, nack, &nacked).ok());
  EXPECT_EQ(nacked.requeued(), 1u);
  auto again = consumer->read(1);
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].offset(), 1u);
  EXPECT_EQ(again[0].delivery_attempt(), 2u);
  // The stream ends with 1, 3, 4 unacked: they are released at once, long
  // before the 30 s default visibility timeout.
  consumer.reset();
  // A stream deadline well below the 30 s visibility timeout: only a release
  // when the member left delivers them in time.
  Consumer next(client, request, 10s);
  auto released = next.read(3);
  ASSERT_EQ(released.size(), 3u) << "unacked deliveries were not released when the member left";
  std::set<uint64_t> offsets;
  for (const auto& record : released) offsets.insert(record.offset());
  EXPECT_EQ(offsets, (std::set<uint64_t>{1, 3, 4}));
  // Acking something not in flight is reported, not an error.
  ack.clear_deliveries();
  ack.set_partition(0);
  ack.set_offset(0);
  ASSERT_TRUE(client.call(&bv1::Broker::Stub::Ack, ack, &acked).ok());
  EXPECT_EQ(acked.unknown(), 1u);
}

TEST(BrokerIntegrationTest, DeadLetterKeepsRecordAndDeliveryHistory) {
  Telekernd daemon(broker_options("    max_deliveries: 3\n"));
  ASSERT_TRUE(daemon.ready()) << daemon.log();
  Client client(daemon);
  ASSERT_TRUE(client.create("orders", 2).ok());
  bv1::ProduceRequest produce;
  produce.set_topic("orders");
  produce.set_partition(1);
  auto* original = produce.add_records();
  original->set_key("order-17");
  original->set_value(std::string("payload\0with-nul", 16));
  *original->mutable_timestamp() = TimeUtil::MillisecondsToTimestamp(1'700'000'123'456);
  for (auto [key, value] :
       {std::pair{"trace-id", "abc123"}, std::pair{"content-type", "application/json"}}) {
    auto* header = original->add_headers();
    header->set_key(key);
    header->set_value(value);
  }
  bv1::ProduceResponse produced;
  ASSERT_TRUE(client.call(&bv1::Broker::Stub::Produce, produce, &produced).ok());

  auto request = consume_request("orders", "billing", bv1::GROUP_MODE_QUEUE);
  request.set_member("worker-x");
  Consumer consumer(client, request);
  bv1::NackResponse nacked;
  for (uint32_t attempt = 1; attempt <= 3; ++attempt) {
    auto records = consumer.read(1);
    ASSERT_EQ(records.size(), 1u) << "attempt " << attempt;
    EXPECT_EQ(records[0].delivery_attempt(), attempt);
    bv1::NackRequest nack;
    nack.set_topic("orders");
    nack.set_group("billing");
    nack.set_partition(1);
    nack.set_offset(0);
    nack.set_error("boom-" + std::to_string(attempt));
    *nack.mutable_delay() = TimeUtil::MillisecondsToDuration(0);
    ASSERT_TRUE(client.call(&bv1::Broker::Stub::Nack, nack, &nacked).ok());
  }
  EXPECT_EQ(nacked.dead_lettered(), 1u);

  auto dlq_request = consume_request("orders.dlq", "inspect");
  dlq_request.set_max(1);
  Consumer dead(client, dlq_request);
  auto letters = dead.read(1);
  ASSERT_EQ(letters.size(), 1u);
  const auto& letter = letters[0];
  EXPECT_EQ(letter.partition(), 1u) << "dead letters keep the source partition";
  EXPECT_EQ(letter.key(), "order-17");
  EXPECT_EQ(letter.value(), std::string("payload\0with-nul", 16));
  EXPECT_EQ(TimeUtil::TimestampToMilliseconds(letter.timestamp()), 1'700'000'123'456);
  auto headers = headers_of(letter);
  EXPECT_EQ(headers["trace-id"], "abc123");
  EXPECT_EQ(headers["content-type"], "application/json");
  EXPECT_EQ(headers["x-dlq-source-topic"], "orders");
  EXPECT_EQ(headers["x-dlq-source-partition"], "1");
  EXPECT_EQ(headers["x-dlq-source-offset"], "0");
  EXPECT_EQ(headers["x-dlq-group"], "billing");
  EXPECT_EQ(headers["x-dlq-attempts"], "3");
  EXPECT_EQ(headers["x-dlq-consumer"], "worker-x");
  EXPECT_NE(headers["x-dlq-last-error"].find("boom-3"), std::string::npos)
      << headers["x-dlq-last-error"];
  EXPECT_NE(headers["x-dlq-reason"].find("max_deliveries=3"), std::string::npos)
      << headers["x-dlq-reason"];
  const auto& history = headers["x-dlq-history"];
  for (std::string step :
       {"attempt 1 by worker-x: nack: boom-1", "attempt 2 by worker-x: nack: boom-2",
        "attempt 3 by worker-x: nack: boom-3"}) {
    EXPECT_NE(history.find(step), std::string::npos) << step << " missing from: " << history;
  }
  EXPECT_EQ(client.describe_group("orders", "billing").group().dead_lettered(), 1u);
}

TEST(BrokerIntegrationTest, RebalancesAsThreeConsumersJoinAndLeave) {
  Telekernd daemon(broker_options());
  ASSERT_TRUE(daemon.ready()) << daemon.log();
  Client client(daemon);
  ASSERT_TRUE(client.create("metrics", 6).ok());
  auto request = consume_request("metrics", "dash");
  auto covers = [](std::vector<const Consumer*> consumers) {
    std::multiset<uint32_t> all;
    for (const auto* consumer : consumers)
      all.insert(consumer->assignment().begin(), consumer->assignment().end());
    return all == std::multiset<uint32_t>{0, 1, 2, 3, 4, 5};
  };
  auto a = std::make_unique<Consumer>(client, request);
  EXPECT_EQ(a->assignment().size(), 6u);
  auto b = std::make_unique<Consumer>(client, request);
  auto c = std::make_unique<Consumer>(client, request);
  auto two_each = [](const std::vector<uint32_t>& partitions) { return partitions.size() == 2; };
  ASSERT_TRUE(a->await_assignment(two_each));
  ASSERT_TRUE(b->await_assignment(two_each));
  ASSERT_TRUE(c->await_assignment(two_each));
  EXPECT_TRUE(covers({a.get(), b.get(), c.get()}));
  // Records go to whoever owns the partition.
  for (uint32_t partition = 0; partition < 6; ++partition) {
    client.produce_ok("metrics", {"m" + std::to_string(partition)}, partition);
  }
  for (auto* consumer : {a.get(), b.get(), c.get()}) {
    auto records = consumer->read(2);
    ASSERT_EQ(records.size(), 2u);
    for (const auto& record : records) {
      EXPECT_NE(std::find(consumer->assignment().begin(), consumer->assignment().end(),
                          record.partition()),
                consumer->assignment().end());
    }
  }
  c.reset();  // leaves
  auto three_each = [](const std::vector<uint32_t>& partitions) { return partitions.size() == 3; };
  ASSERT_TRUE(a->await_assignment(three_each));
  ASSERT_TRUE(b->await_assignment(three_each));
  EXPECT_TRUE(covers({a.get(), b.get()}));
  bv1::DescribeGroupRequest describe;
  describe.set_topic("metrics");
  describe.set_group("dash");
  bv1::DescribeGroupResponse group;
  ASSERT_TRUE(client.call(&bv1::Broker::Stub::DescribeGroup, describe, &group).ok());
  EXPECT_EQ(group.group().members_size(), 2);
}

TEST(BrokerIntegrationTest, EnforcesLimitsWithClearErrors) {
  Telekernd daemon(
      broker_options("    max_record_bytes: 1000\n    max_partitions: 8\n    max_in_flight: 50\n"));
  ASSERT_TRUE(daemon.ready()) << daemon.log();
  Client client(daemon);
  bv1::ProduceResponse response;
  auto status = client.produce("limits", {std::string(2000, 'x')}, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_NE(status.error_message().find("max_record_bytes=1000"), std::string::npos)
      << status.error_message();

  status = client.create("wide", 9);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_NE(status.error_message().find("max_partitions=8"), std::string::npos)
      << status.error_message();

  // max_record_bytes counts what the producer sent: key + value + headers.
  EXPECT_TRUE(client.produce("limits", {std::string(1000, 'x')}, &response).ok());
  {
    bv1::ProduceRequest request;
    request.set_topic("limits");
    auto* record = request.add_records();
    record->set_key(std::string(10, 'k'));
    record->set_value(std::string(985, 'v'));
    auto* header = record->add_headers();
    header->set_key("abc");
    header->set_value("def");
    status = client.call(&bv1::Broker::Stub::Produce, request, &response);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
    EXPECT_NE(status.error_message().find("is 1001 bytes"), std::string::npos)
        << status.error_message();
    header->set_value("de");
    EXPECT_TRUE(client.call(&bv1::Broker::Stub::Produce, request, &response).ok());
  }

  ASSERT_TRUE(client.create("narrow", 2).ok());
  // Partition 5 does not exist: the produce is refused naming the count, and
  // the topic does not grow.
  status = client.produce("narrow", {"x"}, &response, 5);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(status.error_message().find("has 2 partitions"), std::string::npos)
      << status.error_message();
  EXPECT_EQ(client.describe("narrow").partitions_size(), 2);
  bv1::AddPartitionsRequest grow;
  grow.set_topic("narrow");
  grow.set_partitions(6);
  bv1::AddPartitionsResponse grown;
  ASSERT_TRUE(client.call(&bv1::Broker::Stub::AddPartitions, grow, &grown).ok());
  auto produced = client.produce_ok("narrow", {"x"}, 5);
  ASSERT_EQ(produced.appends_size(), 1);
  EXPECT_EQ(produced.appends(0).partition(), 5u);
  EXPECT_EQ(client.describe("narrow").partitions_size(), 6);

  auto limits = client.describe("narrow").limits();
  EXPECT_EQ(limits.max_partitions(), 8u);
  EXPECT_EQ(limits.max_record_bytes(), 1000u);
  EXPECT_EQ(limits.max_in_flight(), 50u);

  auto request = consume_request("narrow", "q", bv1::GROUP_MODE_QUEUE);
  request.set_max_in_flight(51);
  Consumer too_many(client, request);
  status = too_many.finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_NE(status.error_message().find("max_in_flight=50"), std::string::npos)
      << status.error_message();

  // The in-flight limit holds back deliveries (no error): 50 of the 80 on
  // partition 0 arrive, plus the one record on partition 5.
  std::vector<std::string> values(80, "v");
  client.produce_ok("narrow", values, 0);
  request.set_max_in_flight(0);
  request.set_max_batch(100);
  *request.mutable_wait() = TimeUtil::MillisecondsToDuration(500);
  Consumer limited(client, request);
  auto delivered = limited.read(81);
  EXPECT_EQ(delivered.size(), 51u);
  EXPECT_EQ(std::count_if(delivered.begin(), delivered.end(),
                          [](const auto& r) { return r.partition() == 0; }),
            50);
  EXPECT_TRUE(limited.finish().ok());

  // With produce_grows_partitions a produce to partition p < max_partitions
  // grows the topic; max_partitions still applies.
  Telekernd growing(broker_options("    max_partitions: 8\n    produce_grows_partitions: true\n"));
  ASSERT_TRUE(growing.ready()) << growing.log();
  Client growing_client(growing);
  ASSERT_TRUE(growing_client.create("narrow", 2).ok());
  produced = growing_client.produce_ok("narrow", {"x"}, 5);
  ASSERT_EQ(produced.appends_size(), 1);
  EXPECT_EQ(growing_client.describe("narrow").partitions_size(), 6);
  status = growing_client.produce("narrow", {"x"}, &response, 8);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_NE(status.error_message().find("max_partitions=8"), std::string::npos)
      << status.error_message();

  // With auto-create off an unknown topic is NOT_FOUND.
  Telekernd strict(broker_options("    auto_create_topics: false\n"));
  ASSERT_TRUE(strict.ready()) << strict.log();
  Client strict_client(strict);
  status = strict_client.produce("nowhere", {"x"}, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_NE(status.error_message().find("auto_create_topics"), std::string::npos);
}

TEST(BrokerIntegrationTest, ServesMetricsThatPassPromtool) {
  Telekernd daemon(broker_options());
  ASSERT_TRUE(daemon.ready()) << daemon.log();
  Client client(daemon);
  client.produce_ok("m", {"a", "b"});
  auto request = consume_request("m", "g");
  request.set_max(2);
  Consumer consumer(client, request);
  ASSERT_EQ(consumer.read(2).size(), 2u);
  auto [code, body] = daemon.http_get("/metrics");
  ASSERT_EQ(code, 200);
  for (std::string name :
       {"telekern_broker_messages_produced_total{topic=\"m\"} 2",
        "telekern_broker_messages_consumed_total{topic=\"m\"} 2",
        "telekern_broker_partition_backlog{", "telekern_broker_group_lag{",
        "telekern_broker_disk_usage_bytes{", "telekern_broker_produce_duration_seconds_bucket",
        "telekern_broker_fsync_duration_seconds_count"}) {
    EXPECT_NE(body.find(name), std::string::npos) << name;
  }
  auto promtool = find_executable("promtool");
  if (promtool.empty()) {
    if (running_in_ci()) FAIL() << "promtool is missing";
    GTEST_SKIP() << "promtool not installed";
  }
  TempDir dir;
  std::ofstream(dir.path() / "metrics.txt") << body;
  auto result = run_command(promtool + " check metrics < " + (dir.path() / "metrics.txt").string());
  EXPECT_EQ(result.exit_code, 0) << result.output;
}

}  // namespace
}  // namespace telekern::testing
