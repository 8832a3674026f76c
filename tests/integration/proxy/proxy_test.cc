// The proxy module in a real telekernd in front of three broker telekernds on
// loopback: produce and consume through it, each partition stored on its
// owner; a killed broker's partitions fail over within the health bound and
// nothing acknowledged is lost; a restarted broker takes them back; a fourth
// broker added at runtime takes about a quarter. The daemons start once for
// the whole binary; each test leaves all brokers healthy.
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/server_builder.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include "telekern/kernel/v1/kernel.grpc.pb.h"
#include "telekern/proxy/v1/proxy.grpc.pb.h"
#include "telekern/stream.h"
#include "tests/integration/broker/broker_client.h"
#include "tests/support/consume_stream_reader.h"
#include "tests/support/process_resources.h"

namespace telekern::testing {
namespace {

namespace pv1 = telekern::proxy::v1;

constexpr auto kHealthInterval = 500ms;
// A killed broker fails its check at once (connection refused); the timeout
// only bounds a hung one, and 150 ms flapped healthy brokers under load (it
// may not exceed the interval).
constexpr auto kHealthTimeout = 500ms;
constexpr int kUnhealthyThreshold = 2;
constexpr int kHealthyThreshold = 2;
// Worst case from the last passed check to failover: threshold checks, each
// up to interval + timeout apart; doubled for a loaded 2-core machine.
constexpr auto kDetectionBound =
    2 * (kUnhealthyThreshold + 1) * (kHealthInterval + kHealthTimeout) + 5s;

struct Broker {
  std::unique_ptr<TempDir> data;
  std::unique_ptr<Telekernd> daemon;
  std::string address;

  void start(const std::string& listen = "127.0.0.1:0") {
    if (!data) data = std::make_unique<TempDir>("proxy-broker");
    auto options = broker_options();
    options.data_dir = data->path().string();
    options.listen = listen;
    daemon = std::make_unique<Telekernd>(options);
    address = daemon->grpc_address();
  }
};

class ProxyTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    brokers_ = new std::vector<Broker>(3);  // gtest's suite state lives until TearDownTestSuite
    std::string upstreams;
    for (auto& broker : *brokers_) {
      broker.start();
      ASSERT_TRUE(broker.daemon->ready()) << broker.daemon->log();
      upstreams += (upstreams.empty() ? "" : ", ") + broker.address;
    }
    TelekerndOptions options;
    options.modules_dir = modules_dir();
    options.load = {"proxy"};
    options.config_yaml = "modules:\n  proxy:\n    upstreams: [" + upstreams +
                          "]\n    health_interval: 500ms\n    health_timeout: 500ms\n"
                          "    unhealthy_threshold: 2\n    healthy_threshold: 2\n";
    proxy_ = new Telekernd(options);
    ASSERT_TRUE(proxy_->ready()) << proxy_->log();
  }
  static void TearDownTestSuite() {
    delete proxy_;
    delete brokers_;
  }
  void SetUp() override {
    ASSERT_TRUE(proxy_ && proxy_->ready());
    admin_ = pv1::Proxy::NewStub(proxy_->channel());
  }

  pv1::LocateResponse locate(const std::string& topic, uint32_t partition) {
    pv1::LocateRequest request;
    request.set_topic(topic);
    request.set_partition(partition);
    pv1::LocateResponse response;
    auto status = admin_->Locate(context().get(), request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return response;
  }
  pv1::ListUpstreamsResponse upstreams() {
    pv1::ListUpstreamsResponse response;
    auto status = admin_->ListUpstreams(context().get(), {}, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return response;
  }
  Broker* broker_at(const std::string& address) {
    for (auto& broker : *brokers_) {
      if (broker.address == address) return &broker;
    }
    return nullptr;
  }
  // End offset of `partition` as the broker at `address` stores it (0 when absent).
  uint64_t stored(const std::string& address, const std::string& topic, uint32_t partition) {
    auto stub =
        bv1::Broker::NewStub(grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
    bv1::DescribeTopicRequest request;
    request.set_topic(topic);
    bv1::DescribeTopicResponse response;
    if (!stub->DescribeTopic(context().get(), request, &response).ok()) return 0;
    for (const auto& info : response.partitions()) {
      if (info.partition() == partition) return info.end_offset();
    }
    return 0;
  }

  // What every broker holds of `topic` and of `group` on it (for failure messages).
  std::string group_states(const std::string& topic, const std::string& group) {
    std::ostringstream out;
    for (auto& broker : *brokers_) {
      auto stub = bv1::Broker::NewStub(
          grpc::CreateChannel(broker.address, grpc::InsecureChannelCredentials()));
      bv1::DescribeTopicRequest request;
      request.set_topic(topic);
      bv1::DescribeTopicResponse response;
      auto status = stub->DescribeTopic(context().get(), request, &response);
      out << broker.address << ": " << (status.ok() ? "" : status.error_message());
      for (const auto& partition : response.partitions())
        out << " p" << partition.partition() << "=" << partition.end_offset();
      for (const auto& info : response.groups()) {
        if (info.group() != group) continue;
        out << "\n  group " << info.group() << " members";
        for (const auto& member : info.members()) out << " " << member;
        for (const auto& partition : info.partitions())
          out << " p" << partition.partition() << ":" << partition.member() << "@"
              << partition.committed_offset();
      }
      out << "\n";
    }
    return out.str();
  }

  static std::vector<Broker>* brokers_;
  static Telekernd* proxy_;
  std::unique_ptr<pv1::Proxy::Stub> admin_;
};

std::vector<Broker>* ProxyTest::brokers_ = nullptr;
Telekernd* ProxyTest::proxy_ = nullptr;

TEST_F(ProxyTest, ProducesAndConsumesThroughTheProxyWithEachPartitionOnItsOwner) {
  Client client(*proxy_);
  ASSERT_TRUE(client.create("orders", 8).ok());
  std::set<std::string> owners;
  for (uint32_t p = 0; p < 8; ++p) {
    std::vector<std::string> values;
    for (int i = 0; i < 5; ++i) values.push_back("p" + std::to_string(p) + "-" + std::to_string(i));
    auto response = client.produce_ok("orders", values, p);
    ASSERT_EQ(response.appends_size(), 1);
    EXPECT_EQ(response.appends(0).partition(), p);
    EXPECT_EQ(response.appends(0).first_offset(), 0u);
    auto where = locate("orders", p);
    ASSERT_FALSE(where.upstream().empty());
    EXPECT_FALSE(where.failed_over());
    owners.insert(where.upstream());
    // Stored on the owner, nowhere else.
    for (auto& broker : *brokers_) {
      EXPECT_EQ(stored(broker.address, "orders", p), broker.address == where.upstream() ? 5u : 0u)
          << "partition " << p << " on " << broker.address;
    }
  }
  EXPECT_GE(owners.size(), 2u) << "8 partitions over 3 upstreams all on one";

  // Keyed: the proxy picks the broker's partition for the key, then its owner.
  auto keyed = client.produce_ok("orders", {"k1", "k2", "k3"}, std::nullopt, "device-7");
  ASSERT_EQ(keyed.appends_size(), 1);
  EXPECT_EQ(keyed.appends(0).count(), 3u);

  auto description = client.describe("orders");
  EXPECT_EQ(description.config().partitions(), 8u);
  ASSERT_EQ(description.partitions_size(), 8);
  uint64_t total = 0;
  for (const auto& partition : description.partitions()) total += partition.end_offset();
  EXPECT_EQ(total, 43u);
  bv1::ListTopicsResponse topics;
  ASSERT_TRUE(
      bv1::Broker::NewStub(proxy_->channel())->ListTopics(context().get(), {}, &topics).ok());
  bool listed = false;
  for (const auto& topic : topics.topics()) {
    if (topic.topic() != "orders") continue;
    listed = true;
    EXPECT_EQ(topic.records(), 43u);
    EXPECT_EQ(topic.partitions(), 8u);
  }
  EXPECT_TRUE(listed);

  // One consumer through the proxy reads every partition from its owner, in order.
  auto request = consume_request("orders", "readers");
  request.set_max(43);
  Consumer consumer(client, request);
  auto records = consumer.read(43);
  ASSERT_EQ(records.size(), 43u);
  std::map<uint32_t, int64_t> last;
  for (const auto& record : records) {
    auto& previous = last.try_emplace(record.partition(), -1).first->second;
    EXPECT_EQ(static_cast<int64_t>(record.offset()), previous + 1) << record.partition();
    previous = static_cast<int64_t>(record.offset());
  }
  EXPECT_EQ(last.size(), 8u);
}

// Produces to an explicit partition travel to the owners over the proxy's
// ProduceStream lanes, not as unary calls: each client still gets its own
// sequence back, a broker's refusal of one produce is that client's status
// (the lane stays open), and concurrent produces are all acknowledged once.
TEST_F(ProxyTest, ProducesTravelOverStreamLanesWithTheirOwnSequenceAndErrors) {
  // Unary Produce calls the brokers answered, by the kernel's RPC metrics.
  auto unary_produces = [&] {
    uint64_t total = 0;
    for (auto& broker : *brokers_) {
      auto [code, metrics] = broker.daemon->http_get("/metrics");
      EXPECT_EQ(code, 200);
      std::istringstream lines(metrics);
      for (std::string line; std::getline(lines, line);) {
        if (line.rfind("telekern_rpc_requests_total{", 0) == 0 &&
            line.find("method=\"Produce\"") != std::string::npos) {
          total += std::stoull(line.substr(line.rfind(' ') + 1));
        }
      }
    }
    return total;
  };
  Client client(*proxy_);
  ASSERT_TRUE(client.create("lanes", 6).ok());
  uint64_t unary_before = unary_produces();
  auto stub = bv1::Broker::NewStub(proxy_->channel());
  for (uint32_t p = 0; p < 6; ++p) {
    bv1::ProduceRequest request;
    request.set_topic("lanes");
    request.set_partition(p);
    request.set_sequence(1000 + p);
    request.add_records()->set_value("a");
    request.add_records()->set_value("b");
    bv1::ProduceResponse response;
    auto status = stub->Produce(context().get(), request, &response);
    ASSERT_TRUE(status.ok()) << status.error_message();
    EXPECT_EQ(response.sequence(), 1000u + p);
    EXPECT_EQ(response.error_code(), 0);
    ASSERT_EQ(response.appends_size(), 1);
    EXPECT_EQ(response.appends(0).partition(), p);
    EXPECT_EQ(response.appends(0).first_offset(), 0u);
    EXPECT_EQ(response.appends(0).count(), 2u);
  }

  // The broker refuses a record over max_record_bytes (1 MiB by default) with
  // RESOURCE_EXHAUSTED, as it answers a direct produce.
  bv1::ProduceRequest oversized;
  oversized.set_topic("lanes");
  oversized.set_partition(2);
  oversized.add_records()->set_value(std::string((1 << 20) + 1, 'x'));
  bv1::ProduceResponse refused;
  auto status = stub->Produce(context().get(), oversized, &refused);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << status.error_message();
  EXPECT_NE(status.error_message().find("max_record_bytes"), std::string::npos)
      << status.error_message();

  // Concurrent produces: each acknowledged once, at its own offsets.
  constexpr int kThreads = 8, kEach = 25;
  std::mutex mutex;
  std::map<uint32_t, std::set<uint64_t>> offsets;
  std::atomic<int> failed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      auto own = bv1::Broker::NewStub(proxy_->channel());
      for (int i = 0; i < kEach; ++i) {
        bv1::ProduceRequest request;
        request.set_topic("lanes");
        request.set_partition(static_cast<uint32_t>((t + i) % 6));
        request.set_sequence(static_cast<uint64_t>(t * kEach + i));
        request.add_records()->set_value("c");
        bv1::ProduceResponse response;
        auto status = own->Produce(context().get(), request, &response);
        if (!status.ok() || response.sequence() != request.sequence() ||
            response.appends_size() != 1) {
          ++failed;
          continue;
        }
        std::lock_guard lock(mutex);
        offsets[request.partition()].insert(response.appends(0).first_offset());
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(failed.load(), 0);
  size_t acknowledged = 0;
  for (uint32_t p = 0; p < 6; ++p) {
    acknowledged += offsets[p].size();
    uint64_t stored_end = 0;
    for (auto& broker : *brokers_) stored_end += stored(broker.address, "lanes", p);
    EXPECT_EQ(stored_end, 2 + offsets[p].size()) << "partition " << p;
  }
  EXPECT_EQ(acknowledged, static_cast<size_t>(kThreads * kEach));
  EXPECT_EQ(unary_produces(), unary_before) << "produces went as unary calls, not over lanes";
}

// telekern::stream works unchanged against the proxy (telekern:// transport).
TEST_F(ProxyTest, TelekernStreamProducesAndConsumesThroughTheProxy) {
  using namespace telekern::stream;
  Client client(*proxy_);
  ASSERT_TRUE(client.create("stream-gpu", 6).ok());
  StreamConfig config;
  config.transport = "telekern://" + proxy_->grpc_address();
  config.client_id = "proxy-test";
  auto producer = make_producer(config);
  ASSERT_TRUE(producer.ok()) << producer.status();
  for (int i = 0; i < 120; ++i) {
    Record record;
    record.topic = "stream-gpu";
    record.key = "device-" + std::to_string(i % 6);
    record.value = std::to_string(i);
    ASSERT_TRUE((*producer)->send(record).ok());
  }
  ASSERT_TRUE((*producer)->flush(20s).ok());
  auto consumer = make_consumer(
      config, {.group = "g", .topics = {"stream-gpu"}, .start = StartFrom::kEarliest});
  ASSERT_TRUE(consumer.ok()) << consumer.status();
  std::vector<Record> all;
  ASSERT_TRUE(wait_for(
      [&] {
        auto batch = (*consumer)->poll(120 - all.size(), 200ms);
        EXPECT_TRUE(batch.ok()) << batch.status();
        if (batch.ok()) all.insert(all.end(), batch->begin(), batch->end());
        return !batch.ok() || all.size() >= 120;
      },
      30s));
  ASSERT_EQ(all.size(), 120u);
  std::map<std::string, int> last;  // per key, values arrive in order
  for (const auto& record : all) {
    int value = std::stoi(record.value);
    auto [it, fresh] = last.try_emplace(record.key, value);
    if (!fresh) {
      EXPECT_GT(value, it->second) << record.key;
    }
    it->second = value;
  }
  EXPECT_TRUE((*consumer)->commit(all).ok());
}

TEST_F(ProxyTest, ProduceStreamIsPipelinedThroughTheProxy) {
  auto stub = bv1::Broker::NewStub(proxy_->channel());
  auto ctx = context();
  auto stream = stub->ProduceStream(ctx.get());
  constexpr int kRequests = 200;
  for (int i = 0; i < kRequests; ++i) {
    bv1::ProduceRequest request;
    request.set_topic("stream");
    request.set_partition(i % 4);
    request.set_sequence(i + 1);
    request.add_records()->set_value("v" + std::to_string(i));
    ASSERT_TRUE(stream->Write(request));
  }
  stream->WritesDone();
  std::set<uint64_t> answered;
  bv1::ProduceResponse response;
  while (stream->Read(&response)) {
    EXPECT_EQ(response.error_code(), 0) << response.error_message();
    answered.insert(response.sequence());
  }
  EXPECT_TRUE(stream->Finish().ok());
  EXPECT_EQ(answered.size(), size_t(kRequests));
}

TEST_F(ProxyTest, KilledBrokerFailsOverWithinTheBoundAndFailsBackOnRestart) {
  Client client(*proxy_);
  const std::string topic = "failover";
  ASSERT_TRUE(client.create(topic, 12).ok());
  // The victim: the owner of partition 0.
  std::string victim = locate(topic, 0).upstream();
  Broker* broker = broker_at(victim);
  ASSERT_NE(broker, nullptr);
  std::vector<uint32_t> victims;
  for (uint32_t p = 0; p < 12; ++p) {
    client.produce_ok(topic, {"before"}, p);
    if (locate(topic, p).upstream() == victim) victims.push_back(p);
  }
  // A one-partition topic the victim owns: after failback the broker that
  // took its failover write owns none of it, and must still be read.
  std::string solo;
  for (int i = 0; solo.empty() && i < 1000; ++i) {
    std::string name = "solo-" + std::to_string(i);
    if (locate(name, 0).upstream() == victim) solo = name;
  }
  ASSERT_FALSE(solo.empty());
  ASSERT_TRUE(client.create(solo, 1).ok());
  client.produce_ok(solo, {"before"}, 0);

  std::string listen = broker->address;
  broker->daemon->process().signal(SIGKILL);
  ASSERT_TRUE(broker->daemon->process().wait(10s).has_value());
  bool failed_over = wait_for(
      [&] {
        for (uint32_t p : victims) {
          auto where = locate(topic, p);
          if (!where.failed_over() || where.upstream().empty()) return false;
        }
        return true;
      },
      std::chrono::duration_cast<std::chrono::milliseconds>(kDetectionBound));
  ASSERT_TRUE(failed_over) << "partitions of " << victim << " did not fail over within the bound";
  bool marked = false;
  auto listed = upstreams();
  for (const auto& upstream : listed.upstreams()) {
    if (upstream.address() != victim) continue;
    marked = upstream.health() == pv1::UPSTREAM_HEALTH_UNHEALTHY;
    EXPECT_FALSE(upstream.last_error().empty());
  }
  EXPECT_TRUE(marked);
  // Partitions of the survivors did not move.
  for (uint32_t p = 0; p < 12; ++p) {
    if (std::find(victims.begin(), victims.end(), p) == victims.end()) {
      EXPECT_FALSE(locate(topic, p).failed_over()) << p;
    }
  }

  // Writes during the failover are acknowledged by the fallback owners and
  // stored there (the data written during failover lives on them).
  std::map<uint32_t, std::pair<std::string, uint64_t>> during;  // partition -> (fallback, offset)
  for (uint32_t p : victims) {
    auto response = client.produce_ok(topic, {"during"}, p);
    ASSERT_EQ(response.appends_size(), 1);
    during[p] = {locate(topic, p).upstream(), response.appends(0).first_offset()};
  }
  client.produce_ok(solo, {"during"}, 0);
  const std::string solo_fallback = locate(solo, 0).upstream();
  ASSERT_NE(solo_fallback, victim);
  for (const auto& [p, acked] : during) {
    EXPECT_GT(stored(acked.first, topic, p), acked.second)
        << "acknowledged record of partition " << p << " not on " << acked.first;
  }
  // A consumer through the proxy meanwhile reads what the live brokers hold:
  // the survivors' partitions and the failover writes, not the dead broker's.
  auto count_values = [&](const std::string& group, size_t expected) {
    auto request = consume_request(topic, group);
    request.set_start(bv1::START_POSITION_EARLIEST);
    request.set_max(expected);
    Consumer consumer(client, request);
    std::map<std::string, size_t> values;
    for (const auto& record : consumer.read(expected)) ++values[record.value()];
    return values;
  };
  auto while_down = count_values("while-down", 12);
  EXPECT_EQ(while_down["before"], 12 - victims.size());
  EXPECT_EQ(while_down["during"], victims.size());

  // Restart on the same address with the same data: the partitions move back.
  broker->start(listen);
  ASSERT_TRUE(broker->daemon->ready()) << broker->daemon->log();
  ASSERT_EQ(broker->address, listen);
  bool failed_back = wait_for(
      [&] {
        for (uint32_t p : victims) {
          if (locate(topic, p).upstream() != victim) return false;
        }
        return true;
      },
      std::chrono::duration_cast<std::chrono::milliseconds>(kDetectionBound));
  ASSERT_TRUE(failed_back) << victim << " did not take its partitions back";
  for (uint32_t p : victims) {
    auto response = client.produce_ok(topic, {"after"}, p);
    ASSERT_EQ(response.appends_size(), 1);
    // The owner's log continues after what it had before the kill.
    EXPECT_EQ(response.appends(0).first_offset(), 1u) << p;
    // The failover writes are still on the fallback broker.
    EXPECT_GT(stored(during[p].first, topic, p), during[p].second);
  }
  // Nothing acknowledged is lost: a new group through the proxy reads every
  // record, the failover writes from the broker that took them.
  auto count_solo = [&] {
    auto request = consume_request(solo, "after-failback");
    request.set_start(bv1::START_POSITION_EARLIEST);
    request.set_max(2);
    Consumer consumer(client, request, 10s);
    std::map<std::string, size_t> values;
    for (const auto& record : consumer.read(2)) ++values[record.value()];
    return values;
  };
  ASSERT_EQ(locate(solo, 0).upstream(), victim);
  auto solo_values = count_solo();
  EXPECT_EQ(solo_values["before"], 1u);
  EXPECT_EQ(solo_values["during"], 1u) << "the failover write on " << solo_fallback
                                       << ", which owns no partition of " << solo << " now";
  auto everything = count_values("after-failback", 12 + 2 * victims.size());
  EXPECT_EQ(everything["before"], 12u);
  EXPECT_EQ(everything["during"], victims.size()) << group_states(topic, "after-failback");
  EXPECT_EQ(everything["after"], victims.size());
  auto [code, metrics] = proxy_->http_get("/metrics");
  EXPECT_EQ(code, 200);
  auto sample = metrics.find("\ntelekern_proxy_failovers_total ");
  ASSERT_NE(sample, std::string::npos) << metrics;
  EXPECT_GE(std::stod(metrics.substr(sample + 32)), 1.0) << metrics.substr(sample, 40);
  auto after = upstreams();
  for (const auto& upstream : after.upstreams())
    EXPECT_EQ(upstream.health(), pv1::UPSTREAM_HEALTH_HEALTHY) << upstream.address();
}

TEST_F(ProxyTest, AFourthBrokerAddedAtRuntimeTakesAboutAQuarter) {
  const std::string topic = "growth";
  constexpr uint32_t kPartitions = 64;
  std::map<uint32_t, std::string> before;
  for (uint32_t p = 0; p < kPartitions; ++p) before[p] = locate(topic, p).upstream();

  Broker fourth;
  fourth.start();
  ASSERT_TRUE(fourth.daemon->ready()) << fourth.daemon->log();
  pv1::AddUpstreamRequest add;
  add.set_address(fourth.address);
  pv1::AddUpstreamResponse added;
  auto status = admin_->AddUpstream(context().get(), add, &added);
  ASSERT_TRUE(status.ok()) << status.error_message();
  // Exactly the new member's share of the ring moves (the ports, and so the
  // ring points, differ per run: its share is about 1/4, 150 random arcs).
  double share = 0;
  auto listed = upstreams();
  for (const auto& upstream : listed.upstreams()) {
    if (upstream.address() == fourth.address) share = upstream.share();
  }
  EXPECT_NEAR(added.report().moved_share(), share, 0.02) << added.report().DebugString();
  EXPECT_NEAR(added.report().moved_share(), 0.25, 0.08) << added.report().DebugString();
  for (const auto& move : added.report().moves()) EXPECT_EQ(move.to(), fourth.address);

  uint32_t moved = 0;
  for (uint32_t p = 0; p < kPartitions; ++p) {
    auto now = locate(topic, p).upstream();
    if (now == before[p]) continue;
    ++moved;
    EXPECT_EQ(now, fourth.address) << "partition " << p << " moved between old brokers";
  }
  EXPECT_GT(moved, 0u);
  // Calls reach the new broker for the partitions it took.
  Client client(*proxy_);
  for (uint32_t p = 0; p < kPartitions; ++p) {
    if (locate(topic, p).upstream() != fourth.address) continue;
    client.produce_ok(topic, {"new-owner"}, p);
    EXPECT_EQ(stored(fourth.address, topic, p), 1u);
    break;
  }

  // Adding twice is refused; removing restores the previous placement.
  EXPECT_EQ(admin_->AddUpstream(context().get(), add, &added).error_code(),
            grpc::StatusCode::ALREADY_EXISTS);
  pv1::RemoveUpstreamRequest remove;
  remove.set_address(fourth.address);
  pv1::RemoveUpstreamResponse removed;
  ASSERT_TRUE(admin_->RemoveUpstream(context().get(), remove, &removed).ok());
  for (uint32_t p = 0; p < kPartitions; ++p) EXPECT_EQ(locate(topic, p).upstream(), before[p]);
}

TEST_F(ProxyTest, RingStatusAndMetricsDescribeTheUpstreams) {
  pv1::RingStatusResponse ring;
  ASSERT_TRUE(admin_->RingStatus(context().get(), {}, &ring).ok());
  EXPECT_EQ(ring.algorithm(), pv1::ALGORITHM_RING);
  EXPECT_EQ(ring.virtual_nodes(), 150u);
  ASSERT_EQ(ring.members_size(), 3);
  uint64_t owned = 0;
  for (const auto& member : ring.members()) {
    EXPECT_EQ(member.points(), 150u);
    owned += member.partitions_owned();
  }
  EXPECT_EQ(owned, 10000u);
  EXPECT_LE(ring.max_over_mean(), 1.2);

  Client client(*proxy_);
  client.produce_ok("metrics", {"x"}, 0);
  auto [code, body] = proxy_->http_get("/metrics");
  ASSERT_EQ(code, 200);
  EXPECT_NE(body.find("broker_health_status{upstream="), std::string::npos);
  EXPECT_NE(body.find("telekern_proxy_routed_calls_total{upstream="), std::string::npos);
  EXPECT_NE(body.find("telekern_proxy_call_seconds_bucket"), std::string::npos);
  EXPECT_NE(body.find("telekern_proxy_failovers_total"), std::string::npos);
}

// Consume streams through the proxy hold no thread each, neither for the
// client's stream nor for the upstream streams it reads (three per stream
// here): 500 idle streams add a few threads to the proxy daemon, and records
// produced meanwhile still reach every one of them.
TEST_F(ProxyTest, IdleConsumeStreamsThroughTheProxyCostNoThreadEach) {
  // A proxy of its own with the default health settings: 1,500 group joins
  // load the brokers, and the suite's 150 ms health timeout would fail them
  // over (which ends the streams, as it should, but not what this measures).
  std::string upstream_list;
  for (auto& broker : *brokers_)
    upstream_list += (upstream_list.empty() ? "" : ", ") + broker.address;
  TelekerndOptions options;
  options.modules_dir = modules_dir();
  options.load = {"proxy"};
  options.config_yaml = "modules:\n  proxy:\n    upstreams: [" + upstream_list + "]\n";
  Telekernd proxy(options);
  ASSERT_TRUE(proxy.ready()) << proxy.log();
  Client client(proxy);
  // Placement follows the brokers' (random) ports: pick a topic whose 12
  // partitions land on all three, so every stream reads three upstreams.
  std::string topic;
  for (int i = 0; topic.empty() && i < 100; ++i) {
    std::string name = "many-readers-" + std::to_string(i);
    std::set<std::string> serving;
    for (uint32_t p = 0; p < 12; ++p) serving.insert(locate(name, p).upstream());
    if (serving.size() == 3) topic = name;
  }
  ASSERT_FALSE(topic.empty()) << "no topic spread over all three brokers";
  ASSERT_TRUE(client.create(topic, 12).ok());
  const pid_t pid = proxy.process().pid();
  auto stub = bv1::Broker::NewStub(proxy.channel());
  std::atomic<uint64_t> records{0};
  std::vector<std::unique_ptr<ConsumeStreamReader>> streams;
  // One stream first, so the daemon's pools are there before the baseline.
  streams.push_back(counting_reader(*stub, consume_request(topic, "warm-up"), records));
  auto groups = [&] {
    bv1::ListGroupsRequest request;
    request.set_topic(topic);
    bv1::ListGroupsResponse response;
    return stub->ListGroups(context().get(), request, &response).ok() ? response.groups_size() : -1;
  };
  ASSERT_TRUE(wait_for([&] { return groups() >= 1; }, 10s));
  const double baseline = process_resources(pid).threads;
  constexpr int kStreams = 500;
  for (int i = 0; i < kStreams; ++i) {
    streams.push_back(
        counting_reader(*stub, consume_request(topic, "reader-" + std::to_string(i)), records));
  }
  // Every stream reached every broker (the merged listing shows each group).
  ASSERT_TRUE(wait_for([&] { return groups() >= kStreams + 1; }, 60s))
      << groups() << " groups; " << proxy.log();
  auto held = process_resources(pid);
  std::cout << "  proxy threads: " << baseline << " with one stream, " << held.threads << " with "
            << kStreams + 1 << " (each reading 3 upstreams); RSS " << held.rss_mib << " MiB"
            << std::endl;
  EXPECT_LE(held.threads, baseline + 16) << "a thread per Consume stream or upstream";

  // Records still flow: one per partition, so every upstream delivers some.
  for (uint32_t p = 0; p < 12; ++p) client.produce_ok(topic, {"v" + std::to_string(p)}, p);
  EXPECT_TRUE(wait_for([&] { return records.load() >= 12u * (kStreams + 1); }, 60s))
      << records.load() << " of " << 12 * (kStreams + 1) << " deliveries";
  for (auto& stream : streams) stream->cancel();
  for (auto& stream : streams) EXPECT_EQ(stream->wait().error_code(), grpc::StatusCode::CANCELLED);
}

// Reloading the proxy while Consume streams are open through it: the
// streams end (the module is stopping), the engine cancels their upstream
// reads and waits for them before the old library goes, the daemon keeps
// running and the new instance serves produce and consume.
TEST_F(ProxyTest, ReloadWithOpenConsumeStreamsEndsThemAndServesAgain) {
  std::string upstream_list;
  for (auto& broker : *brokers_)
    upstream_list += (upstream_list.empty() ? "" : ", ") + broker.address;
  TelekerndOptions options;
  options.modules_dir = modules_dir();
  options.load = {"proxy"};
  options.config_yaml = "modules:\n  proxy:\n    upstreams: [" + upstream_list + "]\n";
  Telekernd proxy(options);
  ASSERT_TRUE(proxy.ready()) << proxy.log();
  Client client(proxy);
  const std::string topic = "reload-readers";
  ASSERT_TRUE(client.create(topic, 12).ok());
  auto stub = bv1::Broker::NewStub(proxy.channel());
  std::atomic<uint64_t> records{0};
  std::vector<std::unique_ptr<ConsumeStreamReader>> streams;
  for (int i = 0; i < 20; ++i) {
    streams.push_back(
        counting_reader(*stub, consume_request(topic, "reader-" + std::to_string(i)), records));
  }
  ASSERT_TRUE(wait_for(
      [&] {
        bv1::ListGroupsRequest request;
        request.set_topic(topic);
        bv1::ListGroupsResponse response;
        return stub->ListGroups(context().get(), request, &response).ok() &&
               response.groups_size() >= 20;
      },
      20s));
  auto kernel = telekern::kernel::v1::Kernel::NewStub(proxy.channel());
  telekern::kernel::v1::ReloadModuleRequest reload;
  reload.set_name("proxy");
  telekern::kernel::v1::ReloadModuleResponse reloaded;
  auto status = kernel->ReloadModule(context().get(), reload, &reloaded);
  ASSERT_TRUE(status.ok()) << status.error_message() << proxy.log();
  for (auto& stream : streams) {
    auto ended = stream->wait();
    EXPECT_FALSE(ended.ok());
    EXPECT_NE(ended.error_code(), grpc::StatusCode::UNKNOWN) << ended.error_message();
  }
  ASSERT_TRUE(proxy.process().running()) << proxy.log();
  // The new instance serves.
  ASSERT_TRUE(wait_for(
      [&] {
        bv1::ProduceRequest request;
        request.set_topic(topic);
        request.set_partition(3);
        request.add_records()->set_value("after-reload");
        bv1::ProduceResponse response;
        return stub->Produce(context().get(), request, &response).ok();
      },
      20s))
      << proxy.log();
  auto request = consume_request(topic, "after-reload");
  request.set_start(bv1::START_POSITION_EARLIEST);
  request.set_max(1);
  Consumer consumer(client, request);
  auto read = consumer.read(1);
  ASSERT_EQ(read.size(), 1u);
  EXPECT_EQ(read[0].value(), "after-reload");
}

// failback: after_drain in a real proxy: while the owner is down a Consume
// stream holds calls on the fallback owners; the restarted owner passes its
// health checks and waits (REJOINING) with its partitions still failed over
// until that stream ended, then takes them back. The immediate proxy in front
// of the same brokers moved them back at once.
TEST_F(ProxyTest, AfterDrainFailbackWaitsForCallsOnTheFallbackOwners) {
  std::string upstream_list;
  for (auto& broker : *brokers_)
    upstream_list += (upstream_list.empty() ? "" : ", ") + broker.address;
  TelekerndOptions options;
  options.modules_dir = modules_dir();
  options.load = {"proxy"};
  options.config_yaml = "modules:\n  proxy:\n    upstreams: [" + upstream_list +
                        "]\n    health_interval: 500ms\n    health_timeout: 500ms\n"
                        "    unhealthy_threshold: 2\n    healthy_threshold: 2\n"
                        "    failback: after_drain\n    failback_timeout: 120s\n";
  Telekernd drain_proxy(options);
  ASSERT_TRUE(drain_proxy.ready()) << drain_proxy.log();
  auto admin = pv1::Proxy::NewStub(drain_proxy.channel());
  auto where = [&](const std::string& topic, uint32_t partition) {
    pv1::LocateRequest request;
    request.set_topic(topic);
    request.set_partition(partition);
    pv1::LocateResponse response;
    EXPECT_TRUE(admin->Locate(context().get(), request, &response).ok());
    return response;
  };
  auto health_of = [&](const std::string& address) {
    pv1::ListUpstreamsResponse response;
    EXPECT_TRUE(admin->ListUpstreams(context().get(), {}, &response).ok());
    for (const auto& upstream : response.upstreams()) {
      if (upstream.address() == address) return upstream.health();
    }
    return pv1::UPSTREAM_HEALTH_UNSPECIFIED;
  };
  Client client(drain_proxy);
  const std::string topic = "drain-back";
  ASSERT_TRUE(client.create(topic, 12).ok());
  std::string victim = where(topic, 0).upstream();
  Broker* broker = broker_at(victim);
  ASSERT_NE(broker, nullptr);
  std::vector<uint32_t> victims;
  for (uint32_t p = 0; p < 12; ++p) {
    if (where(topic, p).upstream() == victim) victims.push_back(p);
  }
  const auto bound = std::chrono::duration_cast<std::chrono::milliseconds>(kDetectionBound);

  std::string listen = broker->address;
  broker->daemon->process().signal(SIGKILL);
  ASSERT_TRUE(broker->daemon->process().wait(10s).has_value());
  ASSERT_TRUE(wait_for(
      [&] {
        for (uint32_t p : victims) {
          if (!where(topic, p).failed_over()) return false;
        }
        return true;
      },
      bound))
      << "partitions of " << victim << " did not fail over";
  for (uint32_t p : victims) client.produce_ok(topic, {"during"}, p);

  // A stream through the drain proxy: calls in flight on the fallback owners.
  auto stub = bv1::Broker::NewStub(drain_proxy.channel());
  std::atomic<uint64_t> records{0};
  auto holder = counting_reader(*stub, consume_request(topic, "holder"), records);
  ASSERT_TRUE(wait_for([&] { return records.load() >= victims.size(); }, 20s))
      << "the holder stream read " << records.load() << " records";

  broker->start(listen);
  ASSERT_TRUE(broker->daemon->ready()) << broker->daemon->log();
  // Healthy again but waiting for the drain: partitions stay on the fallbacks.
  ASSERT_TRUE(wait_for([&] { return health_of(victim) == pv1::UPSTREAM_HEALTH_REJOINING; }, bound))
      << "health " << pv1::UpstreamHealth_Name(health_of(victim));
  // The immediate proxy (same brokers, same ring) took them back meanwhile.
  EXPECT_TRUE(wait_for([&] { return locate(topic, victims[0]).upstream() == victim; }, bound));
  for (uint32_t p : victims) {
    auto now = where(topic, p);
    EXPECT_TRUE(now.failed_over()) << "partition " << p << " moved back before the drain";
    EXPECT_NE(now.upstream(), victim);
  }
  EXPECT_EQ(health_of(victim), pv1::UPSTREAM_HEALTH_REJOINING);

  // The stream ends: the calls drained, the owner takes its partitions back.
  holder->cancel();
  EXPECT_EQ(holder->wait().error_code(), grpc::StatusCode::CANCELLED);
  ASSERT_TRUE(wait_for(
      [&] {
        for (uint32_t p : victims) {
          if (where(topic, p).upstream() != victim) return false;
        }
        return true;
      },
      bound))
      << victim << " did not take its partitions back after the drain";
  EXPECT_EQ(health_of(victim), pv1::UPSTREAM_HEALTH_HEALTHY);
  for (uint32_t p : victims) {
    auto response = client.produce_ok(topic, {"after"}, p);
    ASSERT_EQ(response.appends_size(), 1);
    EXPECT_EQ(stored(victim, topic, p), 1u) << "partition " << p << " written on its owner";
  }
  // The shared proxy sees every broker healthy again before the next test.
  EXPECT_TRUE(wait_for(
      [&] {
        auto listed = upstreams();
        for (const auto& upstream : listed.upstreams()) {
          if (upstream.health() != pv1::UPSTREAM_HEALTH_HEALTHY) return false;
        }
        return true;
      },
      bound));
}

// An upstream that answers the first call of each method UNAVAILABLE, as a
// broker does when it restarts under a call. CreateTopic and DeleteTopic
// apply the first call before failing it (the ambiguous case: the answer
// was lost, the work was done); Produce always fails.
class FlakyBroker final : public bv1::Broker::Service {
 public:
  int calls(const std::string& method) {
    std::lock_guard lock(mutex_);
    return calls_[method];
  }
  grpc::Status CreateTopic(grpc::ServerContext*, const bv1::CreateTopicRequest* request,
                           bv1::CreateTopicResponse* response) override {
    bool first = count("CreateTopic");
    std::lock_guard lock(mutex_);
    if (!topics_.insert(request->topic()).second)
      return {grpc::StatusCode::ALREADY_EXISTS, "topic exists"};
    if (first) return {grpc::StatusCode::UNAVAILABLE, "restarting (the topic was created)"};
    response->mutable_config()->set_partitions(request->partitions());
    return grpc::Status::OK;
  }
  grpc::Status DeleteTopic(grpc::ServerContext*, const bv1::DeleteTopicRequest* request,
                           bv1::DeleteTopicResponse*) override {
    bool first = count("DeleteTopic");
    std::lock_guard lock(mutex_);
    if (topics_.erase(request->topic()) == 0) return {grpc::StatusCode::NOT_FOUND, "no topic"};
    if (first) return {grpc::StatusCode::UNAVAILABLE, "restarting (the topic was deleted)"};
    return grpc::Status::OK;
  }
  grpc::Status AddPartitions(grpc::ServerContext*, const bv1::AddPartitionsRequest* request,
                             bv1::AddPartitionsResponse* response) override {
    if (count("AddPartitions")) return {grpc::StatusCode::UNAVAILABLE, "restarting"};
    response->set_partitions(request->partitions());
    return grpc::Status::OK;
  }
  grpc::Status ListTopics(grpc::ServerContext*, const bv1::ListTopicsRequest*,
                          bv1::ListTopicsResponse* response) override {
    if (count("ListTopics")) return {grpc::StatusCode::UNAVAILABLE, "restarting"};
    std::lock_guard lock(mutex_);
    for (const auto& topic : topics_) response->add_topics()->set_topic(topic);
    return grpc::Status::OK;
  }
  grpc::Status Commit(grpc::ServerContext*, const bv1::CommitRequest*,
                      bv1::CommitResponse*) override {
    if (count("Commit")) return {grpc::StatusCode::UNAVAILABLE, "restarting"};
    return grpc::Status::OK;
  }
  grpc::Status Ack(grpc::ServerContext*, const bv1::AckRequest* request,
                   bv1::AckResponse* response) override {
    if (count("Ack")) return {grpc::StatusCode::UNAVAILABLE, "restarting"};
    response->set_acked(std::max(1, request->deliveries_size()));
    return grpc::Status::OK;
  }
  grpc::Status Produce(grpc::ServerContext*, const bv1::ProduceRequest*,
                       bv1::ProduceResponse*) override {
    count("Produce");
    return {grpc::StatusCode::UNAVAILABLE, "restarting"};
  }

 private:
  // Counts the call; true for the method's first.
  bool count(const std::string& method) {
    std::lock_guard lock(mutex_);
    return ++calls_[method] == 1;
  }
  std::mutex mutex_;
  std::map<std::string, int> calls_;
  std::set<std::string> topics_;
};

// Idempotent calls are sent again when the upstream answers UNAVAILABLE
// (once each here); a create or delete whose first attempt was applied
// succeeds; Produce is not retried (the broker does not deduplicate, so a
// produce answered UNAVAILABLE may have been written).
TEST(ProxyRetryTest, IdempotentCallsAreRetriedOnUnavailableAndProduceIsNot) {
  FlakyBroker flaky;
  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&flaky);
  auto server = builder.BuildAndStart();
  ASSERT_TRUE(server && port > 0);
  server->GetHealthCheckService()->SetServingStatus("telekern.broker.v1.Broker", true);
  TelekerndOptions options;
  options.modules_dir = modules_dir();
  options.load = {"proxy"};
  options.config_yaml =
      "modules:\n  proxy:\n    upstreams: [127.0.0.1:" + std::to_string(port) +
      "]\n    health_interval: 500ms\n    health_timeout: 500ms\n    retry_attempts: 3\n"
      "    retry_backoff: 20ms\n";
  Telekernd proxy(options);
  ASSERT_TRUE(proxy.ready()) << proxy.log();
  auto stub = bv1::Broker::NewStub(proxy.channel());

  bv1::CreateTopicRequest create;
  create.set_topic("flaky");
  create.set_partitions(4);
  bv1::CreateTopicResponse created;
  auto status = stub->CreateTopic(context().get(), create, &created);
  ASSERT_TRUE(status.ok()) << status.error_message() << proxy.log();
  EXPECT_EQ(flaky.calls("CreateTopic"), 2);

  bv1::AddPartitionsRequest grow;
  grow.set_topic("flaky");
  grow.set_partitions(6);
  bv1::AddPartitionsResponse grown;
  status = stub->AddPartitions(context().get(), grow, &grown);
  EXPECT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(grown.partitions(), 6u);
  EXPECT_EQ(flaky.calls("AddPartitions"), 2);

  bv1::ListTopicsResponse topics;
  status = stub->ListTopics(context().get(), {}, &topics);
  EXPECT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(topics.topics_size(), 1);
  EXPECT_EQ(flaky.calls("ListTopics"), 2);

  bv1::CommitRequest commit;
  commit.set_topic("flaky");
  commit.set_group("g");
  commit.set_partition(1);
  commit.set_offset(5);
  bv1::CommitResponse committed;
  status = stub->Commit(context().get(), commit, &committed);
  EXPECT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(flaky.calls("Commit"), 2);

  bv1::AckRequest ack;
  ack.set_topic("flaky");
  ack.set_group("g");
  auto* delivery = ack.add_deliveries();
  delivery->set_partition(2);
  delivery->set_offset(7);
  bv1::AckResponse acked;
  status = stub->Ack(context().get(), ack, &acked);
  EXPECT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(acked.acked(), 1u);
  EXPECT_EQ(flaky.calls("Ack"), 2);

  bv1::ProduceRequest produce;
  produce.set_topic("flaky");
  produce.set_partition(0);
  produce.add_records()->set_value("once");
  bv1::ProduceResponse produced;
  status = stub->Produce(context().get(), produce, &produced);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();
  EXPECT_EQ(flaky.calls("Produce"), 1) << "a produce was sent twice";

  bv1::DeleteTopicRequest remove;
  remove.set_topic("flaky");
  bv1::DeleteTopicResponse removed;
  status = stub->DeleteTopic(context().get(), remove, &removed);
  EXPECT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(flaky.calls("DeleteTopic"), 2);

  auto [code, metrics] = proxy.http_get("/metrics");
  EXPECT_EQ(code, 200);
  EXPECT_NE(metrics.find("telekern_proxy_retries_total 6"), std::string::npos)
      << metrics.substr(0, 2000);
  server->Shutdown();
}

}  // namespace
}  // namespace telekern::testing
