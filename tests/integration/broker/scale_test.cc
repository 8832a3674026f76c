// A real telekernd under a low open-file limit (RLIMIT_NOFILE set in the
// fixture): the soft limit is raised to the hard one at start, many
// partitions with sealed segments are served under max_open_files, and a
// limit that cannot hold a topic's files fails its creation with
// RESOURCE_EXHAUSTED and leaves nothing of it behind.
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>

#include "broker_client.h"
#include "tests/support/consume_stream_reader.h"
#include "tests/support/process.h"
#include "tests/support/process_resources.h"

namespace telekern::testing {
namespace {

// "Max open files  <soft>  <hard>  files" from /proc/<pid>/limits.
std::pair<std::string, std::string> open_files_limits(pid_t pid) {
  std::ifstream limits("/proc/" + std::to_string(pid) + "/limits");
  std::string line;
  std::smatch match;
  static const std::regex pattern(R"(Max open files\s+(\S+)\s+(\S+))");
  while (std::getline(limits, line)) {
    if (std::regex_search(line, match, pattern)) return {match[1], match[2]};
  }
  return {};
}

double metric(const Telekernd& daemon, const std::string& name) {
  auto [code, body] = daemon.http_get("/metrics");
  EXPECT_EQ(code, 200);
  std::smatch match;
  std::regex pattern("\\n" + name + " ([0-9.e+]+)");
  if (!std::regex_search(body, match, pattern)) return -1;
  return std::stod(match[1]);
}

bool any_path_named(const std::filesystem::path& root, const std::string& name) {
  std::error_code error;
  for (auto it = std::filesystem::recursive_directory_iterator(root, error);
       it != std::filesystem::recursive_directory_iterator(); it.increment(error)) {
    if (error) break;
    if (it->path().filename() == name) return true;
  }
  return false;
}

std::vector<bv1::ConsumedRecord> drain(Client& client, const std::string& topic, size_t count) {
  auto request = consume_request(topic, "all");
  request.set_start(bv1::START_POSITION_EARLIEST);
  request.set_max_batch(100);
  Consumer consumer(client, request);
  return consumer.read(count);
}

TEST(BrokerScaleTest, RaisesTheSoftOpenFileLimitToTheHardOneAndLogsBoth) {
  auto options = broker_options();
  options.open_files_limit = 256;
  options.open_files_hard_limit = 1024;
  Telekernd daemon(options);
  ASSERT_TRUE(daemon.ready()) << daemon.log();
  auto [soft, hard] = open_files_limits(daemon.process().pid());
  EXPECT_EQ(soft, "1024");
  EXPECT_EQ(hard, "1024");
  EXPECT_NE(daemon.log().find("soft limit raised from 256 to 1024 (hard limit 1024)"),
            std::string::npos)
      << daemon.log();
  // The broker's default cap is half the raised limit.
  EXPECT_EQ(metric(daemon, "telekern_broker_open_files_cap"), 512);
}

// 160 partitions of 3+ segments each need well over 1,000 files at three a
// segment; the daemon has 256 descriptors and serves them all.
TEST(BrokerScaleTest, ServesMorePartitionsAndSegmentsThanTheDescriptorLimitHolds) {
  auto options = broker_options("    max_open_files: 100\n");
  options.open_files_limit = 256;
  Telekernd daemon(options);
  ASSERT_TRUE(daemon.ready()) << daemon.log();
  Client client(daemon);
  constexpr int kTopics = 10;
  constexpr uint32_t kPartitions = 16;
  constexpr int kBatches = 3;
  const std::string value(700, 'v');
  for (int t = 0; t < kTopics; ++t) {
    auto status = client.create("scale-" + std::to_string(t), kPartitions, 1024);
    ASSERT_TRUE(status.ok()) << status.error_message();
  }
  // One batch of two records overflows a 1 KiB segment: every batch seals one.
  for (int batch = 0; batch < kBatches; ++batch) {
    for (int t = 0; t < kTopics; ++t) {
      for (uint32_t p = 0; p < kPartitions; ++p) {
        bv1::ProduceResponse response;
        auto status = client.produce("scale-" + std::to_string(t), {value, value}, &response, p, "",
                                     bv1::DURABILITY_NONE);
        ASSERT_TRUE(status.ok()) << status.error_message();
      }
    }
  }
  auto described = client.describe("scale-0");
  ASSERT_EQ(described.partitions_size(), static_cast<int>(kPartitions));
  uint64_t segments = 0;
  for (const auto& partition : described.partitions()) segments += partition.segments();
  EXPECT_GE(segments, kPartitions * kBatches);
  EXPECT_LE(metric(daemon, "telekern_broker_open_files"), 100);
  EXPECT_EQ(metric(daemon, "telekern_broker_open_files_cap"), 100);
  for (int t = 0; t < kTopics; ++t) {
    auto records = drain(client, "scale-" + std::to_string(t), kPartitions * kBatches * 2);
    ASSERT_EQ(records.size(), kPartitions * kBatches * 2) << "topic scale-" << t;
    std::set<std::pair<uint32_t, uint64_t>> seen;
    for (const auto& record : records) {
      EXPECT_EQ(record.value(), value);
      seen.insert({record.partition(), record.offset()});
    }
    EXPECT_EQ(seen.size(), records.size());
  }
  EXPECT_LE(metric(daemon, "telekern_broker_open_files"), 100);
  EXPECT_GT(metric(daemon, "telekern_broker_file_reopens_total"), 0);
}

// max_open_files above what the process may open: creating a topic whose
// files do not fit fails cleanly, auto-created or not, and others keep working.
TEST(BrokerScaleTest, ALimitThatCannotHoldATopicFailsItsCreationAndLeavesNothing) {
  auto options = broker_options("    max_open_files: 100000\n    default_partitions: 60\n");
  options.open_files_limit = 64;
  Telekernd daemon(options);
  ASSERT_TRUE(daemon.ready()) << daemon.log();
  Client client(daemon);
  ASSERT_TRUE(client.create("kept", 1).ok());
  client.produce_ok("kept", {"before"});

  auto status = client.create("big", 60);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << status.error_message();
  EXPECT_NE(status.error_message().find("RLIMIT_NOFILE=64"), std::string::npos)
      << status.error_message();
  EXPECT_NE(status.error_message().find("modules.broker.max_open_files=100000"), std::string::npos)
      << status.error_message();
  EXPECT_NE(status.error_message().find("file(s) open"), std::string::npos)
      << status.error_message();
  bv1::ProduceResponse response;
  auto produced = client.produce("auto", {"x"}, &response);
  EXPECT_EQ(produced.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED)
      << produced.error_message();

  bv1::ListTopicsRequest list;
  bv1::ListTopicsResponse topics;
  ASSERT_TRUE(client.call(&bv1::Broker::Stub::ListTopics, list, &topics).ok());
  ASSERT_EQ(topics.topics_size(), 1);
  EXPECT_EQ(topics.topics(0).topic(), "kept");
  EXPECT_FALSE(any_path_named(daemon.dir(), "big"));
  EXPECT_FALSE(any_path_named(daemon.dir(), "auto"));

  client.produce_ok("kept", {"after"});
  auto records = drain(client, "kept", 2);
  ASSERT_EQ(records.size(), 2u);
  EXPECT_EQ(records[0].value(), "before");
  EXPECT_EQ(records[1].value(), "after");
}

// A topic directory without its spec (the daemon died inside a creation) is
// removed at start instead of keeping the broker from starting.
TEST(BrokerScaleTest, AHalfCreatedTopicFromACrashIsRemovedAtStart) {
  TempDir data("broker-half-created");
  auto options = broker_options();
  options.data_dir = data.path().string();
  std::filesystem::path topics;
  {
    Telekernd daemon(options);
    ASSERT_TRUE(daemon.ready()) << daemon.log();
    Client client(daemon);
    ASSERT_TRUE(client.create("kept", 1).ok());
    client.produce_ok("kept", {"stays"});
    topics = std::filesystem::exists(data.path() / "broker" / "topics")
                 ? data.path() / "broker" / "topics"
                 : data.path() / "topics";
  }
  ASSERT_TRUE(std::filesystem::exists(topics / "kept" / "topic.conf"));
  std::filesystem::create_directories(topics / "ghost" / "partition-0");
  std::ofstream(topics / "ghost" / "partition-0" / "00000000000000000000.log") << "";
  Telekernd daemon(options);
  ASSERT_TRUE(daemon.ready()) << daemon.log();
  Client client(daemon);
  EXPECT_FALSE(std::filesystem::exists(topics / "ghost"));
  EXPECT_NE(daemon.log().find("a topic creation that never finished"), std::string::npos)
      << daemon.log();
  auto records = drain(client, "kept", 1);
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0].value(), "stays");
  EXPECT_TRUE(client.create("ghost", 2).ok());
}

grpc::Status join(Client& client, const std::string& topic, const std::string& group) {
  auto request = consume_request(topic, group);
  *request.mutable_wait() = TimeUtil::MillisecondsToDuration(10);
  request.set_max_batch(1);
  Consumer consumer(client, request, 10s);
  return consumer.finish();
}

// Consume streams are served without a thread each: a thousand idle streams
// add a few threads to the daemon, not a thousand, and the records produced
// meanwhile still reach their consumers.
TEST(BrokerScaleTest, IdleConsumeStreamsCostNoThreadEach) {
  Telekernd daemon(broker_options("    max_groups_per_topic: 2000\n"));
  ASSERT_TRUE(daemon.ready()) << daemon.log();
  Client client(daemon);
  ASSERT_TRUE(client.create("many-readers", 4).ok());
  const pid_t pid = daemon.process().pid();
  auto stub = bv1::Broker::NewStub(daemon.channel());
  // One stream first, so the daemon's pools are there before the baseline.
  std::atomic<uint64_t> records{0};
  std::atomic<int> open{0};
  std::vector<std::unique_ptr<ConsumeStreamReader>> streams;
  auto ended = [&open](const grpc::Status&) { --open; };
  ++open;
  streams.push_back(
      counting_reader(*stub, consume_request("many-readers", "warm-up"), records, ended));
  ASSERT_TRUE(wait_for([&] { return process_resources(pid).threads > 0; }, 5s));
  const double baseline = process_resources(pid).threads;
  constexpr int kStreams = 1000;
  for (int i = 0; i < kStreams; ++i) {
    // Each its own group: every stream is assigned partitions and waits on them.
    ++open;
    streams.push_back(counting_reader(
        *stub, consume_request("many-readers", "reader-" + std::to_string(i)), records, ended));
  }
  // Every stream has joined its group (the broker lists the groups).
  ASSERT_TRUE(wait_for(
      [&] {
        bv1::ListGroupsRequest request;
        request.set_topic("many-readers");
        bv1::ListGroupsResponse response;
        return stub->ListGroups(context().get(), request, &response).ok() &&
               response.groups_size() >= kStreams + 1;
      },
      60s))
      << daemon.log();
  auto held = process_resources(pid);
  std::cout << "  threads: " << baseline << " with one stream, " << held.threads << " with "
            << kStreams + 1 << "; RSS " << held.rss_mib << " MiB" << std::endl;
  EXPECT_LE(held.threads, baseline + 16) << "a thread per Consume stream";
  EXPECT_EQ(open.load(), kStreams + 1) << "streams ended early";

  // Records still flow: each of the 1,001 groups gets the 8 records.
  std::vector<std::string> values;
  for (int i = 0; i < 8; ++i) values.push_back("v" + std::to_string(i));
  client.produce_ok("many-readers", values);
  EXPECT_TRUE(wait_for([&] { return records.load() >= 8u * (kStreams + 1); }, 60s))
      << records.load() << " of " << 8 * (kStreams + 1) << " deliveries";
  for (auto& stream : streams) stream->cancel();
  for (auto& stream : streams) EXPECT_EQ(stream->wait().error_code(), grpc::StatusCode::CANCELLED);
}

TEST(BrokerQuotaTest, TopicsAndGroupsBeyondTheirQuotasAreRefusedAndUsageIsShown) {
  Telekernd daemon(
      broker_options("    max_topics: 3\n    max_groups: 3\n    max_groups_per_topic: 2\n"));
  ASSERT_TRUE(daemon.ready()) << daemon.log();
  Client client(daemon);
  ASSERT_TRUE(client.create("a", 1).ok());
  ASSERT_TRUE(client.create("b", 1).ok());
  client.produce_ok("c", {"auto-created"});
  auto refused = client.create("d", 1);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_NE(refused.error_message().find("3 topics exist"), std::string::npos)
      << refused.error_message();
  EXPECT_NE(refused.error_message().find("modules.broker.max_topics"), std::string::npos)
      << refused.error_message();
  bv1::ProduceResponse response;
  auto produced = client.produce("e", {"x"}, &response);
  EXPECT_EQ(produced.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED)
      << produced.error_message();
  EXPECT_FALSE(any_path_named(daemon.dir(), "d"));
  EXPECT_FALSE(any_path_named(daemon.dir(), "e"));

  EXPECT_TRUE(join(client, "a", "g1").ok());
  EXPECT_TRUE(join(client, "a", "g2").ok());
  auto per_topic = join(client, "a", "g3");
  EXPECT_EQ(per_topic.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_NE(per_topic.error_message().find("max_groups_per_topic=2"), std::string::npos)
      << per_topic.error_message();
  EXPECT_TRUE(join(client, "b", "g1").ok());
  auto total = join(client, "c", "g1");
  EXPECT_EQ(total.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_NE(total.error_message().find("max_groups=3"), std::string::npos) << total.error_message();
  // Existing groups keep working.
  EXPECT_TRUE(join(client, "a", "g1").ok());

  auto described = client.describe("a");
  const auto& limits = described.limits();
  EXPECT_EQ(limits.max_topics(), 3u);
  EXPECT_EQ(limits.topics(), 3u);
  EXPECT_EQ(limits.max_groups(), 3u);
  EXPECT_EQ(limits.groups(), 3u);
  EXPECT_EQ(limits.max_groups_per_topic(), 2u);
  EXPECT_EQ(limits.topic_groups(), 2u);
  EXPECT_GT(limits.max_open_files(), 0u);
  EXPECT_GT(limits.open_files(), 0u);
  EXPECT_GT(limits.free_disk_bytes(), 0u);
  bv1::ListTopicsRequest list;
  bv1::ListTopicsResponse topics;
  ASSERT_TRUE(client.call(&bv1::Broker::Stub::ListTopics, list, &topics).ok());
  EXPECT_EQ(topics.limits().topics(), 3u);
  EXPECT_EQ(topics.limits().max_topics(), 3u);

  EXPECT_EQ(metric(daemon, "telekern_broker_quota_used\\{quota=\"topics\"\\}"), 3);
  EXPECT_EQ(metric(daemon, "telekern_broker_quota_limit\\{quota=\"topics\"\\}"), 3);
  EXPECT_EQ(metric(daemon, "telekern_broker_quota_used\\{quota=\"groups_per_topic\"\\}"), 2);
  EXPECT_EQ(metric(daemon, "telekern_broker_quota_used\\{quota=\"groups\"\\}"), 3);
}

// A reserve larger than any disk: writes that grow the data are refused,
// reading, joining and committing go on.
TEST(BrokerQuotaTest, BelowTheFreeDiskReserveProduceAndCreateAreRefusedReadsAndCommitsWork) {
  TempDir data("broker-reserve-data");
  auto options = broker_options("    min_free_disk_bytes: 0\n");
  options.data_dir = data.path().string();
  {
    Telekernd daemon(options);
    ASSERT_TRUE(daemon.ready()) << daemon.log();
    Client client(daemon);
    ASSERT_TRUE(client.create("kept", 1).ok());
    client.produce_ok("kept", {"r0", "r1", "r2"});
  }
  options = broker_options("    min_free_disk_bytes: 1000000000000000000\n");
  options.data_dir = data.path().string();
  Telekernd daemon(options);
  ASSERT_TRUE(daemon.ready()) << daemon.log();
  Client client(daemon);
  bv1::ProduceResponse response;
  auto produced = client.produce("kept", {"r3"}, &response);
  EXPECT_EQ(produced.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_NE(produced.error_message().find("below the reserve of 1000000000000000000 bytes"),
            std::string::npos)
      << produced.error_message();
  EXPECT_NE(produced.error_message().find("modules.broker.min_free_disk_bytes"), std::string::npos)
      << produced.error_message();
  auto created = client.create("new", 1);
  EXPECT_EQ(created.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_FALSE(any_path_named(data.path(), "new"));

  auto records = drain(client, "kept", 3);
  ASSERT_EQ(records.size(), 3u);
  EXPECT_EQ(records[2].value(), "r2");
  bv1::CommitRequest commit;
  commit.set_topic("kept");
  commit.set_group("all");
  commit.set_partition(0);
  commit.set_offset(3);
  bv1::CommitResponse committed;
  auto status = client.call(&bv1::Broker::Stub::Commit, commit, &committed);
  EXPECT_TRUE(status.ok()) << status.error_message();
  auto described = client.describe("kept");
  EXPECT_EQ(described.limits().min_free_disk_bytes(), 1000000000000000000u);
  EXPECT_LT(described.limits().free_disk_bytes(), 1000000000000000000u);
  EXPECT_EQ(metric(daemon, "telekern_broker_free_disk_reserve_bytes"), 1e18);
}

}  // namespace
}  // namespace telekern::testing
