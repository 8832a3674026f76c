// telekern::stream against both transports: the embedded broker in a real
// telekernd (telekern://) and a real-protocol Kafka cluster (rdkafka_mock).
#include "telekern/stream.h"

#include <grpcpp/create_channel.h>
#include <gtest/gtest.h>

#include <map>
#include <set>

#include "telekern/broker/v1/broker.grpc.pb.h"
#include "telekern/channel.h"
#include "telekern/client.h"
#include "tests/support/auth_config.h"
#include "tests/support/kafka_mock_cluster.h"
#include "tests/support/process.h"
#include "tests/support/telekernd.h"

namespace telekern::stream {
namespace {

using namespace std::chrono_literals;

// One transport with a place to create topics.
class Transport {
 public:
  virtual ~Transport() = default;
  virtual bool ready() const = 0;
  virtual StreamConfig config() const = 0;
  virtual void create_topic(const std::string& topic, int partitions) = 0;
};

class KafkaTransport final : public Transport {
 public:
  bool ready() const override { return cluster_.ok(); }
  StreamConfig config() const override {
    StreamConfig config;
    config.transport = "kafka://" + cluster_.bootstraps();
    config.client_id = "stream-test";
    config.session_timeout_ms = 6000;
    config.heartbeat_interval_ms = 500;
    return config;
  }
  void create_topic(const std::string& topic, int partitions) override {
    cluster_.create_topic(topic, partitions);
  }
  testing::KafkaMockCluster& cluster() { return cluster_; }

 private:
  testing::KafkaMockCluster cluster_{3};
};

class BrokerTransport final : public Transport {
 public:
  bool ready() const override { return daemon_.ready(); }
  StreamConfig config() const override {
    StreamConfig config;
    config.transport = "telekern://" + daemon_.grpc_address();
    config.client_id = "stream-test";
    return config;
  }
  void create_topic(const std::string& topic, int partitions) override {
    broker::v1::CreateTopicRequest request;
    request.set_topic(topic);
    request.set_partitions(static_cast<uint32_t>(partitions));
    broker::v1::CreateTopicResponse response;
    grpc::ClientContext context;
    auto status =
        broker::v1::Broker::NewStub(daemon_.channel())->CreateTopic(&context, request, &response);
    ASSERT_TRUE(status.ok()) << status.error_message();
  }
  testing::Telekernd& daemon() { return daemon_; }

 private:
  testing::Telekernd daemon_{
      {.modules_dir = std::string(TELEKERN_BUILD_DIR) + "/modules", .load = {"broker"}}};
};

std::unique_ptr<Transport> make_transport(const std::string& kind) {
  if (kind == "kafka") return std::make_unique<KafkaTransport>();
  return std::make_unique<BrokerTransport>();
}

class StreamTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    transport_ = make_transport(GetParam());
    ASSERT_TRUE(transport_->ready()) << GetParam() << " transport did not start";
  }
  std::unique_ptr<Transport> transport_;
};

// Polls until `wanted` records arrived or the bound passes.
std::vector<Record> consume(Consumer& consumer, size_t wanted, std::chrono::seconds bound = 30s) {
  std::vector<Record> all;
  auto deadline = std::chrono::steady_clock::now() + bound;
  while (all.size() < wanted && std::chrono::steady_clock::now() < deadline) {
    auto batch = consumer.poll(wanted - all.size(), 500ms);
    EXPECT_TRUE(batch.ok()) << batch.status();
    if (!batch.ok()) break;
    all.insert(all.end(), batch->begin(), batch->end());
  }
  return all;
}

TEST_P(StreamTest, ProducesAndConsumesWithKeysHeadersAndOrderPerPartition) {
  transport_->create_topic("gpu", 4);
  auto config = transport_->config();
  auto producer = make_producer(config);
  ASSERT_TRUE(producer.ok()) << producer.status();
  for (int i = 0; i < 200; ++i) {
    Record record;
    record.topic = "gpu";
    record.key = "device-" + std::to_string(i % 5);
    record.value = std::to_string(i);
    record.headers = {{"source", "test"}};
    ASSERT_TRUE((*producer)->send(record).ok());
  }
  ASSERT_TRUE((*producer)->flush(20s).ok());

  auto consumer = make_consumer(config, {"readers", {"gpu"}, StartFrom::kEarliest});
  ASSERT_TRUE(consumer.ok()) << consumer.status();
  auto records = consume(**consumer, 200);
  ASSERT_EQ(records.size(), 200u);
  std::map<std::string, int32_t> partition_of_key;
  std::map<std::string, int> last_value_of_key;
  for (const auto& record : records) {
    EXPECT_EQ(record.topic, "gpu");
    ASSERT_EQ(record.headers.size(), 1u);
    EXPECT_EQ(record.headers[0], (std::pair<std::string, std::string>{"source", "test"}));
    // A key always lands on one partition, and its records keep their order.
    auto [it, inserted] = partition_of_key.emplace(record.key, record.partition);
    EXPECT_EQ(it->second, record.partition) << record.key;
    int value = std::stoi(record.value);
    if (last_value_of_key.count(record.key)) EXPECT_GT(value, last_value_of_key[record.key]);
    last_value_of_key[record.key] = value;
  }
}

TEST_P(StreamTest, GroupResumesAfterCommittedOffsetsOnly) {
  transport_->create_topic("events", 1);
  auto config = transport_->config();
  auto producer = make_producer(config);
  ASSERT_TRUE(producer.ok());
  for (int i = 0; i < 100; ++i)
    ASSERT_TRUE((*producer)->send({.topic = "events", .value = std::to_string(i)}).ok());
  ASSERT_TRUE((*producer)->flush(20s).ok());

  {
    auto consumer = make_consumer(config, {"workers", {"events"}, StartFrom::kEarliest});
    ASSERT_TRUE(consumer.ok());
    auto first = consume(**consumer, 60);
    ASSERT_EQ(first.size(), 60u);
    // Only the first 40 were processed: commit those, drop the rest (a crash).
    std::vector<Record> processed(first.begin(), first.begin() + 40);
    ASSERT_TRUE((*consumer)->commit(processed).ok());
  }
  auto consumer = make_consumer(config, {"workers", {"events"}, StartFrom::kEarliest});
  ASSERT_TRUE(consumer.ok());
  auto rest = consume(**consumer, 60);
  ASSERT_EQ(rest.size(), 60u) << "records 40..99 are delivered again: at-least-once";
  EXPECT_EQ(rest.front().value, "40");
  EXPECT_EQ(rest.back().value, "99");
}

INSTANTIATE_TEST_SUITE_P(Transports, StreamTest, ::testing::Values("telekern", "kafka"));

TEST(StreamConfigTest, BadTransportIsExplained) {
  StreamConfig config;
  config.transport = "amqp://somewhere";
  auto producer = make_producer(config);
  ASSERT_FALSE(producer.ok());
  EXPECT_NE(producer.status().message().find("telekern://"), std::string::npos);
  config.transport = "kafka://127.0.0.1:1";
  EXPECT_EQ(make_consumer(config, {"", {"t"}}).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(KafkaStreamTest, DeliveryFailureSurfacesOnFlush) {
  KafkaTransport kafka;
  ASSERT_TRUE(kafka.ready());
  kafka.create_topic("lost", 1);
  auto config = kafka.config();
  config.extra_properties = {{"message.timeout.ms", "1500"}};
  auto producer = make_producer(config);
  ASSERT_TRUE(producer.ok());
  for (int broker = 1; broker <= 3; ++broker) kafka.cluster().set_broker_down(broker, true);
  ASSERT_TRUE((*producer)->send({.topic = "lost", .value = "x"}).ok());
  auto flushed = (*producer)->flush(3s);
  EXPECT_FALSE(flushed.ok()) << "an unacknowledged record must not look delivered";
}

TEST(BrokerStreamTest, RecordOverTheLimitFailsFlushNamingTheTopic) {
  BrokerTransport broker;
  ASSERT_TRUE(broker.ready());
  auto producer = make_producer(broker.config());
  ASSERT_TRUE(producer.ok());
  ASSERT_TRUE((*producer)->send({.topic = "big", .value = std::string(2 * 1024 * 1024, 'x')}).ok());
  auto flushed = (*producer)->flush(10s);
  ASSERT_FALSE(flushed.ok());
  EXPECT_NE(flushed.message().find("big"), std::string::npos) << flushed;
}

// telekerns:// speaks TLS and checks the daemon's certificate against
// tls.ca_file; without that CA the same producer cannot deliver.
TEST(BrokerStreamTest, TelekernsTransportChecksTheDaemonAgainstTheCa) {
  testing::TempDir dir;
  auto key = dir.path() / "key.pem";
  auto cert = dir.path() / "cert.pem";
  auto made = testing::run_command(
      "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost "
      "-addext subjectAltName=DNS:localhost,IP:127.0.0.1 -keyout " +
      key.string() + " -out " + cert.string());
  ASSERT_EQ(made.exit_code, 0) << made.output;
  testing::Telekernd daemon(
      {.config_yaml = "tls:\n  cert: " + cert.string() + "\n  key: " + key.string() + "\n",
       .modules_dir = std::string(TELEKERN_BUILD_DIR) + "/modules",
       .load = {"broker"}});
  ASSERT_TRUE(daemon.ready()) << daemon.log();
  StreamConfig config;
  config.transport = "telekerns://" + daemon.grpc_address();
  config.tls_ca_file = cert.string();
  auto producer = make_producer(config);
  ASSERT_TRUE(producer.ok()) << producer.status();
  ASSERT_TRUE((*producer)->send({.topic = "secure", .value = "sealed"}).ok());
  auto flushed = (*producer)->flush(20s);
  ASSERT_TRUE(flushed.ok()) << flushed;
  auto consumer = make_consumer(config, {"readers", {"secure"}, StartFrom::kEarliest});
  ASSERT_TRUE(consumer.ok()) << consumer.status();
  auto records = consume(**consumer, 1);
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0].value, "sealed");

  config.tls_ca_file.clear();  // system roots do not know this self-signed certificate
  auto untrusting = make_producer(config);
  ASSERT_TRUE(untrusting.ok());
  ASSERT_TRUE((*untrusting)->send({.topic = "secure", .value = "refused"}).ok());
  EXPECT_FALSE((*untrusting)->flush(5s).ok());

  config.tls_ca_file = (dir.path() / "missing.pem").string();
  auto missing = make_producer(config);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("missing.pem"), std::string::npos) << missing.status();
}

// A module hands telekern::stream the channel it was given (in the daemon,
// ModuleContext::channel("telekern.broker.v1.Broker")): calls go through it
// with its credentials, and the config needs no address or key of its own.
TEST(BrokerStreamTest, UsesTheChannelItIsGiven) {
  testing::Telekernd daemon({.config_yaml = testing::auth_config_yaml(),
                             .modules_dir = std::string(TELEKERN_BUILD_DIR) + "/modules",
                             .load = {"broker"}});
  ASSERT_TRUE(daemon.ready()) << daemon.log();
  StreamConfig config;
  config.transport = "telekern://127.0.0.1:1";  // not used when a channel is given
  auto channel = make_channel({.target = daemon.grpc_address(), .api_key = testing::kOperatorKey});
  ASSERT_TRUE(channel.ok()) << channel.status();
  config.channel = *channel;
  auto producer = make_producer(config);
  ASSERT_TRUE(producer.ok()) << producer.status();
  ASSERT_TRUE((*producer)->send({.topic = "handed", .value = "through"}).ok());
  auto flushed = (*producer)->flush(20s);
  ASSERT_TRUE(flushed.ok()) << flushed;
  auto consumer = make_consumer(config, {"readers", {"handed"}, StartFrom::kEarliest});
  ASSERT_TRUE(consumer.ok());
  EXPECT_EQ(consume(**consumer, 1).size(), 1u);

  // The same daemon without the channel's credentials refuses the producer.
  StreamConfig anonymous;
  anonymous.transport = "telekern://" + daemon.grpc_address();
  auto refused = make_producer(anonymous);
  ASSERT_TRUE(refused.ok());
  ASSERT_TRUE((*refused)->send({.topic = "handed", .value = "nope"}).ok());
  auto denied = (*refused)->flush(10s);
  EXPECT_EQ(denied.code(), absl::StatusCode::kUnauthenticated) << denied;
}

TEST(ChannelTest, UnreadableTlsFilesAreNamed) {
  auto made =
      make_channel({.target = "127.0.0.1:1", .tls = true, .ca_file = "/nonexistent/ca.pem"});
  ASSERT_FALSE(made.ok());
  EXPECT_EQ(made.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(made.status().message().find("/nonexistent/ca.pem"), std::string::npos)
      << made.status();
  Client client({.target = "127.0.0.1:1", .tls = true, .ca_file = "/nonexistent/ca.pem"});
  EXPECT_FALSE(client.status().ok());
  EXPECT_NE(client.wait_until_ready(1s).message().find("/nonexistent/ca.pem"), std::string::npos);
}

}  // namespace
}  // namespace telekern::stream
