// Topic and group administration in a real telekernd: DeleteTopic,
// AddPartitions with a rebalance, start positions of a new group and
// ResetOffsets of an existing one.
#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <set>

#include "tests/integration/broker/broker_client.h"

namespace telekern::testing {
namespace {

// Every path under `root` whose name contains `needle`.
std::vector<std::string> paths_naming(const std::filesystem::path& root,
                                      const std::string& needle) {
  std::vector<std::string> out;
  std::error_code error;
  for (auto it = std::filesystem::recursive_directory_iterator(root, error);
       it != std::filesystem::recursive_directory_iterator(); it.increment(error)) {
    if (error) break;
    if (it->path().filename().string().find(needle) != std::string::npos)
      out.push_back(it->path().string());
  }
  return out;
}

TEST(BrokerTopicAdminTest, DeleteTopicRemovesDataAndGroups) {
  Telekernd daemon(broker_options());
  ASSERT_TRUE(daemon.ready()) << daemon.log();
  Client client(daemon);
  ASSERT_TRUE(client.create("doomed", 2).ok());
  client.produce_ok("doomed", {"a", "b", "c", "d"}, 0);
  client.produce_ok("doomed", {"e", "f"}, 1);
  {
    auto request = consume_request("doomed", "readers");
    request.set_auto_commit(true);
    request.set_max(6);
    Consumer consumer(client, request);
    ASSERT_EQ(consumer.read(6).size(), 6u);
    EXPECT_TRUE(consumer.finish().ok());
  }
  EXPECT_EQ(client.describe_group("doomed", "readers").group().lag(), 0u);
  ASSERT_FALSE(paths_naming(daemon.dir() / "data", "doomed").empty())
      << "the test must see the topic's files";

  // A member streaming when the topic goes away is ended, not left hanging.
  auto live_request = consume_request("doomed", "live");
  Consumer live(client, live_request, 15s);
  ASSERT_FALSE(live.member().empty());

  auto status = client.delete_topic("doomed");
  ASSERT_TRUE(status.ok()) << status.error_message();
  // A stream that outlived its topic would end with DEADLINE_EXCEEDED (15 s).
  auto live_status = live.finish();
  EXPECT_EQ(live_status.error_code(), grpc::StatusCode::NOT_FOUND) << live_status.error_message();

  bv1::DescribeTopicRequest describe;
  describe.set_topic("doomed");
  bv1::DescribeTopicResponse description;
  EXPECT_EQ(client.call(&bv1::Broker::Stub::DescribeTopic, describe, &description).error_code(),
            grpc::StatusCode::NOT_FOUND);
  bv1::ListTopicsResponse topics;
  ASSERT_TRUE(client.call(&bv1::Broker::Stub::ListTopics, bv1::ListTopicsRequest(), &topics).ok());
  for (const auto& topic : topics.topics()) EXPECT_NE(topic.topic(), "doomed");
  bv1::DescribeGroupRequest group_request;
  group_request.set_topic("doomed");
  group_request.set_group("readers");
  bv1::DescribeGroupResponse group;
  EXPECT_EQ(client.call(&bv1::Broker::Stub::DescribeGroup, group_request, &group).error_code(),
            grpc::StatusCode::NOT_FOUND);
  EXPECT_TRUE(wait_for([&] { return paths_naming(daemon.dir() / "data", "doomed").empty(); }, 5s))
      << "left on disk: "
      << ::testing::PrintToString(paths_naming(daemon.dir() / "data", "doomed"));
  EXPECT_EQ(client.delete_topic("doomed").error_code(), grpc::StatusCode::NOT_FOUND);

  // A topic created again under the name starts empty, and so does the group.
  ASSERT_TRUE(client.create("doomed", 2).ok());
  auto recreated = client.describe("doomed");
  for (const auto& partition : recreated.partitions()) EXPECT_EQ(partition.end_offset(), 0u);
  client.produce_ok("doomed", {"fresh"}, 0);
  auto request = consume_request("doomed", "readers");
  request.set_max(1);
  Consumer consumer(client, request);
  auto records = consumer.read(1);
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0].value(), "fresh");
  EXPECT_EQ(records[0].offset(), 0u);
}

TEST(BrokerTopicAdminTest, AddPartitionsGrowsRebalancesAndRefusesToShrink) {
  Telekernd daemon(broker_options("    max_partitions: 8\n"));
  ASSERT_TRUE(daemon.ready()) << daemon.log();
  Client client(daemon);
  ASSERT_TRUE(client.create("growing", 2).ok());
  auto request = consume_request("growing", "grp");
  Consumer a(client, request);
  Consumer b(client, request);
  auto one = [](const std::vector<uint32_t>& partitions) { return partitions.size() == 1; };
  ASSERT_TRUE(a.await_assignment(one));
  ASSERT_TRUE(b.await_assignment(one));

  bv1::AddPartitionsResponse added;
  auto status = client.add_partitions("growing", 4, &added);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(added.partitions(), 4u);
  auto description = client.describe("growing");
  EXPECT_EQ(description.config().partitions(), 4u);
  ASSERT_EQ(description.partitions_size(), 4);
  for (const auto& partition : description.partitions()) EXPECT_EQ(partition.end_offset(), 0u);

  // Both members of the group get their share of the new partitions.
  auto two = [](const std::vector<uint32_t>& partitions) { return partitions.size() == 2; };
  ASSERT_TRUE(a.await_assignment(two));
  ASSERT_TRUE(b.await_assignment(two));
  std::multiset<uint32_t> all(a.assignment().begin(), a.assignment().end());
  all.insert(b.assignment().begin(), b.assignment().end());
  EXPECT_EQ(all, (std::multiset<uint32_t>{0, 1, 2, 3}));
  client.produce_ok("growing", {"on-2"}, 2);
  client.produce_ok("growing", {"on-3"}, 3);
  for (auto* consumer : {&a, &b}) {
    auto records = consumer->read(1);
    ASSERT_EQ(records.size(), 1u);
    EXPECT_GE(records[0].partition(), 2u);
    EXPECT_NE(std::find(consumer->assignment().begin(), consumer->assignment().end(),
                        records[0].partition()),
              consumer->assignment().end());
  }
  auto group = client.describe_group("growing", "grp");
  EXPECT_EQ(group.group().partitions_size(), 4);

  // Asking for the current count is a no-op; shrinking and overflowing are refused.
  status = client.add_partitions("growing", 4, &added);
  EXPECT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(added.partitions(), 4u);
  status = client.add_partitions("growing", 3, &added);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(status.error_message().find("has 4 partitions"), std::string::npos)
      << status.error_message();
  EXPECT_NE(status.error_message().find("cannot shrink to 3"), std::string::npos)
      << status.error_message();
  status = client.add_partitions("growing", 9, &added);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_NE(status.error_message().find("max_partitions=8"), std::string::npos)
      << status.error_message();
  EXPECT_EQ(client.add_partitions("nowhere", 4, &added).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(client.describe("growing").partitions_size(), 4);
}

constexpr int64_t kBaseMs = 1'700'000'000'000;  // records carry kBaseMs + offset * 1000

// Ten records on one partition with timestamps one second apart.
void produce_timed(Client& client, const std::string& topic) {
  bv1::ProduceRequest request;
  request.set_topic(topic);
  request.set_partition(0);
  request.set_durability(bv1::DURABILITY_FSYNC);
  for (int i = 0; i < 10; ++i) {
    auto* record = request.add_records();
    record->set_value("r" + std::to_string(i));
    *record->mutable_timestamp() = TimeUtil::MillisecondsToTimestamp(kBaseMs + i * 1000);
  }
  bv1::ProduceResponse response;
  auto status = client.call(&bv1::Broker::Stub::Produce, request, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
}

// The offsets a consumer of `request` gets, waiting at most `wait` for each record.
std::vector<uint64_t> offsets_read(Client& client, bv1::ConsumeRequest request, size_t count) {
  request.set_max(count);
  *request.mutable_wait() = TimeUtil::MillisecondsToDuration(400);
  Consumer consumer(client, request);
  std::vector<uint64_t> out;
  for (const auto& record : consumer.read(count)) out.push_back(record.offset());
  EXPECT_TRUE(consumer.finish().ok());
  return out;
}

TEST(BrokerTopicAdminTest, NewGroupStartsAtOffsetTimestampOrLatest) {
  Telekernd daemon(broker_options());
  ASSERT_TRUE(daemon.ready()) << daemon.log();
  Client client(daemon);
  ASSERT_TRUE(client.create("timed", 1).ok());
  produce_timed(client, "timed");

  auto by_offset = consume_request("timed", "by-offset");
  by_offset.set_start(bv1::START_POSITION_OFFSET);
  by_offset.set_start_offset(7);
  by_offset.set_auto_commit(true);
  EXPECT_EQ(offsets_read(client, by_offset, 3), (std::vector<uint64_t>{7, 8, 9}));
  // The group has committed offsets now: start no longer applies.
  by_offset.set_start_offset(2);
  EXPECT_TRUE(offsets_read(client, by_offset, 1).empty());
  client.produce_ok("timed", {"r10"});
  EXPECT_EQ(offsets_read(client, by_offset, 1), (std::vector<uint64_t>{10}));

  auto by_time = consume_request("timed", "by-time");
  by_time.set_start(bv1::START_POSITION_TIMESTAMP);
  *by_time.mutable_start_time() = TimeUtil::MillisecondsToTimestamp(kBaseMs + 4500);
  EXPECT_EQ(offsets_read(client, by_time, 2), (std::vector<uint64_t>{5, 6}));
  auto exact_time = consume_request("timed", "exact-time");
  exact_time.set_start(bv1::START_POSITION_TIMESTAMP);
  *exact_time.mutable_start_time() = TimeUtil::MillisecondsToTimestamp(kBaseMs + 3000);
  EXPECT_EQ(offsets_read(client, exact_time, 1), (std::vector<uint64_t>{3}));
  auto before_all = consume_request("timed", "before-all");
  before_all.set_start(bv1::START_POSITION_TIMESTAMP);
  *before_all.mutable_start_time() = TimeUtil::MillisecondsToTimestamp(kBaseMs - 60000);
  EXPECT_EQ(offsets_read(client, before_all, 1), (std::vector<uint64_t>{0}));
  // r10 carries the broker's clock, far after kBaseMs + 9 s.
  auto after_timed = consume_request("timed", "after-timed");
  after_timed.set_start(bv1::START_POSITION_TIMESTAMP);
  *after_timed.mutable_start_time() = TimeUtil::MillisecondsToTimestamp(kBaseMs + 9500);
  EXPECT_EQ(offsets_read(client, after_timed, 1), (std::vector<uint64_t>{10}));

  auto past_end = consume_request("timed", "past-end");
  past_end.set_start(bv1::START_POSITION_OFFSET);
  past_end.set_start_offset(1000);  // clamped to the end
  EXPECT_TRUE(offsets_read(client, past_end, 1).empty());

  auto latest = consume_request("timed", "latest");
  latest.set_start(bv1::START_POSITION_LATEST);
  latest.set_max(1);
  Consumer consumer(client, latest);
  ASSERT_FALSE(consumer.member().empty());
  client.produce_ok("timed", {"r11"});
  auto records = consumer.read(1);
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0].offset(), 11u);
  EXPECT_EQ(records[0].value(), "r11");
}

bv1::ResetOffsetsResponse reset(Client& client, const std::string& topic, const std::string& group,
                                bv1::StartPosition start, uint64_t offset = 0,
                                int64_t timestamp_ms = 0) {
  bv1::ResetOffsetsRequest request;
  request.set_topic(topic);
  request.set_group(group);
  request.set_start(start);
  request.set_offset(offset);
  *request.mutable_timestamp() = TimeUtil::MillisecondsToTimestamp(timestamp_ms);
  bv1::ResetOffsetsResponse response;
  auto status = client.call(&bv1::Broker::Stub::ResetOffsets, request, &response);
  EXPECT_TRUE(status.ok()) << status.error_message();
  return response;
}

TEST(BrokerTopicAdminTest, ResetOffsetsMovesAnExistingGroup) {
  Telekernd daemon(broker_options());
  ASSERT_TRUE(daemon.ready()) << daemon.log();
  Client client(daemon);
  ASSERT_TRUE(client.create("resettable", 1).ok());
  produce_timed(client, "resettable");
  auto request = consume_request("resettable", "g");
  request.set_auto_commit(true);
  EXPECT_EQ(offsets_read(client, request, 10).size(), 10u);
  EXPECT_EQ(client.describe_group("resettable", "g").group().partitions(0).committed_offset(), 10u);

  auto response = reset(client, "resettable", "g", bv1::START_POSITION_EARLIEST);
  EXPECT_EQ(response.group().partitions(0).committed_offset(), 0u);
  EXPECT_EQ(response.group().lag(), 10u);
  EXPECT_EQ(offsets_read(client, request, 2), (std::vector<uint64_t>{0, 1}));

  response = reset(client, "resettable", "g", bv1::START_POSITION_LATEST);
  EXPECT_EQ(response.group().partitions(0).committed_offset(), 10u);
  EXPECT_TRUE(offsets_read(client, request, 1).empty());

  response = reset(client, "resettable", "g", bv1::START_POSITION_OFFSET, 4);
  EXPECT_EQ(response.group().partitions(0).committed_offset(), 4u);
  EXPECT_EQ(offsets_read(client, request, 1), (std::vector<uint64_t>{4}));

  response = reset(client, "resettable", "g", bv1::START_POSITION_TIMESTAMP, 0, kBaseMs + 6500);
  EXPECT_EQ(response.group().partitions(0).committed_offset(), 7u);
  EXPECT_EQ(offsets_read(client, request, 1), (std::vector<uint64_t>{7}));

  // Auto-commit carries on from the reset offset.
  EXPECT_EQ(client.describe_group("resettable", "g").group().partitions(0).committed_offset(), 8u);

  // A QUEUE group: reset skips what was never acked and forgets in-flight deliveries.
  auto queue = consume_request("resettable", "q", bv1::GROUP_MODE_QUEUE);
  EXPECT_EQ(offsets_read(client, queue, 10).size(), 10u);  // none acked; released on stream end
  reset(client, "resettable", "q", bv1::START_POSITION_OFFSET, 8);
  auto after = offsets_read(client, queue, 10);
  EXPECT_EQ(after, (std::vector<uint64_t>{8, 9}));

  // Errors name what is wrong.
  bv1::ResetOffsetsRequest bad;
  bad.set_topic("resettable");
  bad.set_group("g");
  bad.set_start(bv1::START_POSITION_EARLIEST);
  bad.set_partition(3);
  bv1::ResetOffsetsResponse ignored;
  auto status = client.call(&bv1::Broker::Stub::ResetOffsets, bad, &ignored);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_NE(status.error_message().find("no partition 3"), std::string::npos)
      << status.error_message();
  bad.clear_partition();
  bad.set_group("nobody");
  EXPECT_EQ(client.call(&bv1::Broker::Stub::ResetOffsets, bad, &ignored).error_code(),
            grpc::StatusCode::NOT_FOUND);
  bad.set_group("g");
  bad.set_start(bv1::START_POSITION_UNSPECIFIED);
  status = client.call(&bv1::Broker::Stub::ResetOffsets, bad, &ignored);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(status.error_message().find("earliest"), std::string::npos) << status.error_message();
}

}  // namespace
}  // namespace telekern::testing
