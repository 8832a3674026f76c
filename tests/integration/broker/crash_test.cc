// Durability of the broker under kill -9 during concurrent FSYNC produce, and
// under a full disk (RLIMIT_FSIZE): acknowledged records are never lost.
#include <grpcpp/create_channel.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <filesystem>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "telekern/broker/v1/broker.grpc.pb.h"
#include "tests/support/telekernd.h"

namespace telekern::testing {
namespace {

namespace bv1 = telekern::broker::v1;
using namespace std::chrono_literals;

TelekerndOptions options_for(const std::string& data_dir,
                             std::optional<uint64_t> file_size_limit = std::nullopt) {
  TelekerndOptions options;
  options.modules_dir = std::string(TELEKERN_BUILD_DIR) + "/modules";
  options.load = {"broker"};
  options.data_dir = data_dir;
  options.file_size_limit = file_size_limit;
  return options;
}

std::unique_ptr<grpc::ClientContext> context(std::chrono::milliseconds deadline = 10s) {
  auto out = std::make_unique<grpc::ClientContext>();
  out->set_deadline(std::chrono::system_clock::now() + deadline);
  return out;
}

// Every record of every partition, read with a fresh LOG group from the start.
std::map<uint32_t, std::vector<bv1::ConsumedRecord>> read_all(bv1::Broker::Stub& stub,
                                                              const std::string& topic,
                                                              const std::string& group) {
  bv1::DescribeTopicRequest describe;
  describe.set_topic(topic);
  bv1::DescribeTopicResponse description;
  EXPECT_TRUE(stub.DescribeTopic(context().get(), describe, &description).ok());
  uint64_t total = 0;
  for (const auto& partition : description.partitions())
    total += partition.end_offset() - partition.start_offset();
  std::map<uint32_t, std::vector<bv1::ConsumedRecord>> out;
  if (total == 0) return out;
  bv1::ConsumeRequest request;
  request.set_topic(topic);
  request.set_group(group);
  request.set_start(bv1::START_POSITION_EARLIEST);
  request.set_max(total);
  request.set_max_batch(1000);
  auto ctx = context(60s);
  auto reader = stub.Consume(ctx.get(), request);
  bv1::ConsumeResponse response;
  while (reader->Read(&response)) {
    for (const auto& record : response.records()) out[record.partition()].push_back(record);
  }
  auto status = reader->Finish();
  EXPECT_TRUE(status.ok()) << status.error_message();
  return out;
}

struct Acknowledged {
  uint32_t partition;
  uint64_t offset;
  std::string value;
};

TEST(BrokerCrashTest, KillNineDuringFsyncProduceLosesNoAcknowledgedRecord) {
  constexpr int kCycles = 20;
  constexpr int kProducers = 4;
  TempDir data("broker-crash");
  std::vector<Acknowledged> acknowledged;
  std::mutex acknowledged_mutex;
  uint64_t committed = 0;
  for (int cycle = 0; cycle < kCycles; ++cycle) {
    Telekernd daemon(options_for(data.path().string()));
    ASSERT_TRUE(daemon.ready()) << "cycle " << cycle << ": " << daemon.log();
    auto stub = bv1::Broker::NewStub(daemon.channel());
    if (cycle == 0) {
      bv1::CreateTopicRequest create;
      create.set_topic("durable");
      create.set_partitions(3);
      create.set_segment_bytes(16 * 1024);  // several segment rolls over the run
      bv1::CreateTopicResponse created;
      ASSERT_TRUE(stub->CreateTopic(context().get(), create, &created).ok());
    }

    // After the restart: every acknowledged record is where it was
    // acknowledged, once, and offsets are dense.
    auto stored = read_all(*stub, "durable", "verify-" + std::to_string(cycle));
    for (const auto& [partition, records] : stored) {
      for (size_t i = 0; i < records.size(); ++i)
        ASSERT_EQ(records[i].offset(), i) << "partition " << partition;
    }
    std::set<std::string> seen;
    for (const auto& [partition, records] : stored) {
      for (const auto& record : records) {
        EXPECT_TRUE(seen.insert(record.value()).second) << "duplicate " << record.value();
      }
    }
    for (const auto& ack : acknowledged) {
      auto& records = stored[ack.partition];
      ASSERT_LT(ack.offset, records.size())
          << "cycle " << cycle << ": acknowledged offset lost: " << ack.value;
      ASSERT_EQ(records[ack.offset].value(), ack.value) << "cycle " << cycle;
    }
    // The consumer group resumes from its committed offset.
    bv1::DescribeGroupRequest describe;
    describe.set_topic("durable");
    describe.set_group("resume");
    bv1::DescribeGroupResponse group;
    if (cycle > 0) {
      ASSERT_TRUE(stub->DescribeGroup(context().get(), describe, &group).ok());
      EXPECT_EQ(group.group().partitions(0).committed_offset(), committed) << "cycle " << cycle;
    }

    // Concurrent FSYNC producers, killed with SIGKILL mid-flight.
    std::atomic<bool> stop{false};
    std::atomic<int> answered{0};
    std::vector<std::thread> producers;
    for (int p = 0; p < kProducers; ++p) {
      producers.emplace_back([&, p] {
        auto channel =
            grpc::CreateChannel(daemon.grpc_address(), grpc::InsecureChannelCredentials());
        auto producer = bv1::Broker::NewStub(channel);
        for (int n = 0; !stop.load(); ++n) {
          bv1::ProduceRequest request;
          request.set_topic("durable");
          request.set_durability(bv1::DURABILITY_FSYNC);
          std::vector<std::string> values;
          for (int r = 0; r < 5; ++r) {
            values.push_back("c" + std::to_string(cycle) + "-p" + std::to_string(p) + "-n" +
                             std::to_string(n) + "-r" + std::to_string(r));
            request.add_records()->set_value(values.back());
          }
          request.set_partition(static_cast<uint32_t>((p + n) % 3));
          bv1::ProduceResponse response;
          auto status = producer->Produce(context(5s).get(), request, &response);
          if (!status.ok()) break;  // the daemon died
          ++answered;
          std::lock_guard lock(acknowledged_mutex);
          for (int r = 0; r < 5; ++r) {
            acknowledged.push_back({response.appends(0).partition(),
                                    response.appends(0).first_offset() + r, values[r]});
          }
        }
      });
    }
    // A commit acknowledged before the kill must survive it.
    committed = stored[0].size();
    bv1::CommitRequest commit;
    commit.set_topic("durable");
    commit.set_group("resume");
    commit.set_partition(0);
    commit.set_offset(committed);
    bv1::CommitResponse commit_response;
    ASSERT_TRUE(stub->Commit(context().get(), commit, &commit_response).ok());
    ASSERT_TRUE(wait_for([&] { return answered.load() >= 20 + cycle % 7 * 5; }, 20s))
        << daemon.log();
    daemon.process().signal(SIGKILL);
    daemon.process().wait(10s);
    stop = true;
    for (auto& producer : producers) producer.join();
  }
  EXPECT_GT(acknowledged.size(), static_cast<size_t>(kCycles * 20));
}

TEST(BrokerCrashTest, FullDiskFailsProduceClearlyAndKeepsAcknowledgedData) {
  TempDir data("broker-full");
  std::vector<std::pair<uint64_t, std::string>> acknowledged;
  // The kernel copies the module before loading it, so the limit must let
  // that copy through; the segment then hits it a few MiB later.
  auto module = std::filesystem::path(TELEKERN_BUILD_DIR) / "modules" / "telekern_broker.so";
  uint64_t limit = std::filesystem::file_size(module) + (4u << 20);
  {
    Telekernd daemon(options_for(data.path().string(), limit));
    ASSERT_TRUE(daemon.ready()) << daemon.log();
    auto stub = bv1::Broker::NewStub(daemon.channel());
    bv1::CreateTopicRequest create;
    create.set_topic("full");
    create.set_partitions(1);
    create.set_segment_bytes(1u << 30);  // one segment that hits the file size limit
    bv1::CreateTopicResponse created;
    ASSERT_TRUE(stub->CreateTopic(context().get(), create, &created).ok());
    grpc::Status failure;
    for (int n = 0; n < 1000; ++n) {
      bv1::ProduceRequest request;
      request.set_topic("full");
      request.set_durability(bv1::DURABILITY_FSYNC);
      std::string value = "n" + std::to_string(n) + std::string(256 * 1024, 'x');
      request.add_records()->set_value(value);
      bv1::ProduceResponse response;
      auto status = stub->Produce(context().get(), request, &response);
      if (!status.ok()) {
        failure = status;
        break;
      }
      acknowledged.emplace_back(response.appends(0).first_offset(), value);
    }
    ASSERT_EQ(failure.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED)
        << failure.error_message();
    EXPECT_NE(failure.error_message().find("disk full"), std::string::npos)
        << failure.error_message();
    EXPECT_GT(acknowledged.size(), 10u);
    EXPECT_TRUE(daemon.process().running());
    // Still serving: reads work, and the acknowledged data is intact.
    auto stored = read_all(*stub, "full", "after-failure");
    ASSERT_EQ(stored[0].size(), acknowledged.size());
    for (const auto& [offset, value] : acknowledged) EXPECT_EQ(stored[0][offset].value(), value);
  }
  // After a restart without the limit, the data is intact and produce works again.
  Telekernd daemon(options_for(data.path().string()));
  ASSERT_TRUE(daemon.ready()) << daemon.log();
  auto stub = bv1::Broker::NewStub(daemon.channel());
  auto stored = read_all(*stub, "full", "after-restart");
  ASSERT_EQ(stored[0].size(), acknowledged.size());
  for (const auto& [offset, value] : acknowledged) EXPECT_EQ(stored[0][offset].value(), value);
  bv1::ProduceRequest request;
  request.set_topic("full");
  request.add_records()->set_value("more");
  bv1::ProduceResponse response;
  auto status = stub->Produce(context().get(), request, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.appends(0).first_offset(), acknowledged.size());
}

}  // namespace
}  // namespace telekern::testing
