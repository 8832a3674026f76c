// A real telekernd restarted over segment files damaged on disk: a cut last
// batch after a group committed past it, a flipped byte inside a sealed
// segment. Offsets are never reused, damage is reported (log, metric,
// DEGRADED health) and everything readable is delivered.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "broker_client.h"
#include "tests/support/process.h"

namespace telekern::testing {
namespace {

using google::protobuf::util::TimeUtil;

TelekerndOptions keeping(const std::string& data_dir, const std::string& yaml = "") {
  auto options = broker_options(yaml);
  options.data_dir = data_dir;
  return options;
}

std::vector<std::filesystem::path> logs_of(const std::filesystem::path& partition_dir) {
  std::vector<std::filesystem::path> out;
  for (const auto& entry : std::filesystem::directory_iterator(partition_dir)) {
    if (entry.path().extension() == ".log") out.push_back(entry.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

// Reads what a consumer of `group` gets until it has been idle for 1 s.
std::vector<bv1::ConsumedRecord> drain(Client& client, const std::string& topic,
                                       const std::string& group) {
  auto request = consume_request(topic, group);
  request.set_start(bv1::START_POSITION_EARLIEST);
  request.set_auto_commit(true);
  request.set_max_batch(50);
  *request.mutable_wait() = TimeUtil::MillisecondsToDuration(1000);
  Consumer consumer(client, request);
  auto records = consumer.read(100000);
  auto status = consumer.finish();
  EXPECT_TRUE(status.ok()) << status.error_message();
  return records;
}

// The repro: commit g-end at 99, SIGTERM, cut the last .log inside its
// last batch, restart.
TEST(BrokerFaultTest, OffsetsAreNeverReusedAfterACutAndCommittedGroupsMissNothing) {
  TempDir data("broker-fault-data");
  {
    Telekernd daemon(keeping(data.path().string()));
    ASSERT_TRUE(daemon.ready()) << daemon.log();
    Client client(daemon);
    ASSERT_TRUE(client.create("cut", 1).ok());
    for (int i = 0; i < 99; i += 3) client.produce_ok("cut", {"a", "b", "c"}, 0);
    bv1::CommitRequest commit;
    commit.set_topic("cut");
    commit.set_group("g-end");
    commit.set_partition(0);
    commit.set_offset(99);
    // The group must exist: a consumer joins it first.
    auto request = consume_request("cut", "g-end");
    request.set_start(bv1::START_POSITION_LATEST);
    *request.mutable_wait() = TimeUtil::MillisecondsToDuration(10);
    {
      Consumer joined(client, request);
      EXPECT_TRUE(joined.finish().ok());
    }
    bv1::CommitResponse committed;
    ASSERT_TRUE(client.call(&bv1::Broker::Stub::Commit, commit, &committed).ok());
  }
  auto partition_dir = data.path() / "broker" / "topics" / "cut" / "partition-0";
  if (!std::filesystem::exists(partition_dir))
    partition_dir = data.path() / "topics" / "cut" / "partition-0";
  auto logs = logs_of(partition_dir);
  ASSERT_FALSE(logs.empty());
  std::filesystem::resize_file(logs.back(), std::filesystem::file_size(logs.back()) - 10);

  Telekernd daemon(keeping(data.path().string()));
  ASSERT_TRUE(daemon.ready()) << daemon.log();
  Client client(daemon);
  auto topic = client.describe("cut");
  EXPECT_EQ(topic.partitions(0).end_offset(), 99u);
  auto group = client.describe_group("cut", "g-end");
  EXPECT_EQ(group.group().partitions(0).committed_offset(), 99u);
  EXPECT_EQ(group.group().partitions(0).lag(), 0u);
  std::vector<std::string> values;
  for (int i = 0; i < 8; ++i) values.push_back("new-" + std::to_string(i));
  auto produced = client.produce_ok("cut", values, 0);
  EXPECT_EQ(produced.appends(0).first_offset(), 99u);
  auto request = consume_request("cut", "g-end");
  Consumer consumer(client, request);
  auto records = consumer.read(8);
  ASSERT_EQ(records.size(), 8u);
  for (size_t i = 0; i < records.size(); ++i) {
    EXPECT_EQ(records[i].offset(), 99u + i);
    EXPECT_EQ(records[i].value(), values[i]);
  }
  auto log = daemon.log();
  EXPECT_NE(log.find("truncated"), std::string::npos) << log;
  EXPECT_NE(log.find("offsets 96..98 stay unused"), std::string::npos) << log;
  auto [code, metrics] = daemon.http_get("/metrics");
  EXPECT_NE(metrics.find("telekern_broker_storage_faults_total{topic=\"cut\",partition=\"0\","
                         "kind=\"offsets_skipped\"} 1"),
            std::string::npos)
      << metrics;
}

// A flipped byte inside a sealed segment: the partition turns DEGRADED with
// file and byte, its readable records are all delivered, and the member's
// other partition is not held up.
TEST(BrokerFaultTest, CorruptSealedBatchIsServedAroundWithoutEndingOtherPartitions) {
  TempDir data("broker-fault-data");
  constexpr int kPerPartition = 71;
  {
    Telekernd daemon(keeping(data.path().string()));
    ASSERT_TRUE(daemon.ready()) << daemon.log();
    Client client(daemon);
    ASSERT_TRUE(client.create("flip", 2, 1024).ok());
    for (int i = 0; i < kPerPartition; ++i) {
      for (uint32_t p = 0; p < 2; ++p) {
        client.produce_ok(
            "flip", {"p" + std::to_string(p) + "-" + std::to_string(i) + std::string(100, 'z')}, p);
      }
    }
  }
  auto partition_dir = data.path() / "broker" / "topics" / "flip" / "partition-0";
  if (!std::filesystem::exists(partition_dir))
    partition_dir = data.path() / "topics" / "flip" / "partition-0";
  auto logs = logs_of(partition_dir);
  ASSERT_GE(logs.size(), 4u);
  auto damaged = logs[1];
  {
    std::fstream file(damaged, std::ios::binary | std::ios::in | std::ios::out);
    file.seekp(60);  // inside the first batch's records
    file.put('\x5a');
  }

  Telekernd daemon(keeping(data.path().string()));
  ASSERT_TRUE(daemon.ready()) << daemon.log();
  Client client(daemon);
  auto records = drain(client, "flip", "reader");
  std::map<uint32_t, std::set<uint64_t>> offsets;
  for (const auto& record : records) offsets[record.partition()].insert(record.offset());
  EXPECT_EQ(offsets[1].size(), static_cast<size_t>(kPerPartition));
  EXPECT_EQ(offsets[0].size(), static_cast<size_t>(kPerPartition - 1));
  auto base = std::stoull(damaged.stem().string());
  EXPECT_FALSE(offsets[0].count(base));
  EXPECT_TRUE(offsets[0].count(base + 1));

  auto [health_code, health] = daemon.http_get("/health");
  EXPECT_NE(health.find(damaged.string()), std::string::npos) << health;
  auto [code, metrics] = daemon.http_get("/metrics");
  EXPECT_NE(metrics.find("telekern_broker_partition_degraded{topic=\"flip\",partition=\"0\"} 1"),
            std::string::npos);
  EXPECT_NE(metrics.find("kind=\"corrupt_batch\"} 1"), std::string::npos);
  auto log = daemon.log();
  EXPECT_NE(log.find("unreadable " + damaged.string() + " bytes 0.."), std::string::npos) << log;
}

}  // namespace
}  // namespace telekern::testing
