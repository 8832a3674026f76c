// The broker engine as a whole (Broker::open on a data dir, stopped and
// reopened like a restart): dead-letter history across a restart, the
// record-size limit counting what the producer sent, produce to a partition
// the topic does not have, when a produce may run on the receiving thread,
// and the inline step scope consumers are woken in.
#include <gtest/gtest.h>

#include <future>
#include <map>
#include <string>
#include <vector>

#include "broker.h"
#include "telekern/service/inline_step_scope.h"
#include "tests/support/process.h"

namespace telekern::broker {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

BrokerOptions test_options() {
  BrokerOptions options;
  options.min_free_disk_bytes = 0;  // the test machine's free space is not the point
  options.flush_interval = 50ms;
  return options;
}

class BrokerEngineTest : public ::testing::Test {
 protected:
  std::unique_ptr<Broker> open(BrokerOptions options = test_options()) {
    auto broker = Broker::open(options, dir_.path(), nullptr, nullptr);
    EXPECT_TRUE(broker.ok()) << broker.status();
    return broker.ok() ? std::move(*broker) : nullptr;
  }

  static ProduceResult produce(Broker& broker, ProduceCall call) {
    call.durability = Durability::kNone;
    std::promise<ProduceResult> answer;
    broker.produce(std::move(call), [&](ProduceResult result) { answer.set_value(result); });
    return answer.get_future().get();
  }

  static ProduceResult produce_value(Broker& broker, const std::string& topic, std::string value,
                                     std::optional<uint32_t> partition = std::nullopt) {
    ProduceCall call;
    call.topic = topic;
    call.records.push_back({.value = std::move(value)});
    call.partition = partition;
    return produce(broker, std::move(call));
  }

  telekern::testing::TempDir dir_{"broker-engine"};
};

std::map<std::string, std::string> headers_of(const Record& record) {
  std::map<std::string, std::string> headers;
  for (const auto& header : record.headers) headers[header.key] = header.value;
  return headers;
}

// Attempts nacked before a restart, one in flight when the broker stopped and
// one after it all appear in the dead letter's x-dlq-history.
TEST_F(BrokerEngineTest, DeadLetterHistoryListsAttemptsFromBeforeAndAfterARestart) {
  auto options = test_options();
  options.max_deliveries = 4;
  options.nack_backoff = {};
  auto now = Clock::now();
  {
    auto broker = open(options);
    ASSERT_TRUE(broker);
    ASSERT_TRUE(broker->create_topic("jobs", {.partitions = 1}).ok());
    ASSERT_TRUE(produce_value(*broker, "jobs", "payload").ok());
    auto group = broker->open_group("jobs", "workers", GroupMode::kQueue);
    ASSERT_TRUE(group.ok()) << group.status();
    auto member = (*group)->join({.name = "before"});
    ASSERT_TRUE(member.ok());
    for (const char* reason : {"first failure", "second failure"}) {
      auto delivered = (*group)->poll(*member, 10, now);
      ASSERT_TRUE(delivered.ok());
      ASSERT_EQ(delivered->size(), 1u);
      ASSERT_EQ(*(*group)->nack(0, 0, reason, 0ms, now), NackOutcome::kRequeued);
    }
    // The third attempt is in flight when the broker stops.
    auto delivered = (*group)->poll(*member, 10, now);
    ASSERT_EQ(delivered->size(), 1u);
    EXPECT_EQ((*delivered)[0].attempt, 3u);
    broker->shutdown();
  }
  auto broker = open(options);
  ASSERT_TRUE(broker);
  auto group = broker->find_group("jobs", "workers");
  ASSERT_TRUE(group.ok()) << group.status();
  auto member = (*group)->join({.name = "after"});
  ASSERT_TRUE(member.ok());
  auto delivered = (*group)->poll(*member, 10, Clock::now());
  ASSERT_TRUE(delivered.ok());
  ASSERT_EQ(delivered->size(), 1u);
  EXPECT_EQ((*delivered)[0].attempt, 4u);
  ASSERT_EQ(*(*group)->nack(0, 0, "fourth failure", 0ms, Clock::now()), NackOutcome::kDeadLettered);

  auto reader = broker->open_group("jobs.dlq", "reader", GroupMode::kLog);
  ASSERT_TRUE(reader.ok()) << reader.status();
  auto reader_member = (*reader)->join({.start = {.kind = StartKind::kEarliest}});
  ASSERT_TRUE(reader_member.ok());
  auto dead = (*reader)->poll(*reader_member, 10, Clock::now());
  ASSERT_TRUE(dead.ok()) << dead.status();
  ASSERT_EQ(dead->size(), 1u);
  const auto& letter = (*dead)[0].record.record;
  EXPECT_EQ(letter.value, "payload");
  auto headers = headers_of(letter);
  EXPECT_EQ(headers["x-dlq-attempts"], "4");
  const auto& history = headers["x-dlq-history"];
  EXPECT_NE(history.find("attempt 1 by before: nack: first failure"), std::string::npos) << history;
  EXPECT_NE(history.find("attempt 2 by before: nack: second failure"), std::string::npos)
      << history;
  EXPECT_NE(history.find("attempt 3 by (unknown): broker restarted before an ack"),
            std::string::npos)
      << history;
  EXPECT_NE(history.find("attempt 4 by after: nack: fourth failure"), std::string::npos) << history;
}

// max_record_bytes counts key + value + header keys and values as sent, not
// the batch framing: a 1 MiB value with no key fits the default limit.
TEST_F(BrokerEngineTest, MaxRecordBytesCountsWhatTheProducerSent) {
  auto broker = open();
  ASSERT_TRUE(broker);
  ASSERT_EQ(broker->options().max_record_bytes, 1048576u);
  EXPECT_TRUE(produce_value(*broker, "big", std::string(1048576, 'v')).ok());

  auto refused = produce_value(*broker, "big", std::string(1048577, 'v'));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(refused.status().message().find("1048577 bytes"), std::string::npos)
      << refused.status();
  EXPECT_NE(refused.status().message().find("max_record_bytes=1048576"), std::string::npos)
      << refused.status();

  // Key, value and headers add up to exactly the limit: accepted; one more byte is not.
  ProduceCall call;
  call.topic = "big";
  call.records.push_back({.key = std::string(1000, 'k'),
                          .value = std::string(1048576 - 1000 - 7, 'v'),
                          .headers = {{"abc", "defg"}}});
  EXPECT_TRUE(produce(*broker, call).ok());
  call.records[0].headers[0].value += "h";
  auto over = produce(*broker, call);
  ASSERT_FALSE(over.ok());
  EXPECT_NE(over.status().message().find("1048577 bytes"), std::string::npos) << over.status();
}

// A partition the topic does not have is INVALID_ARGUMENT naming the topic's
// partition count; the topic grows only with produce_grows_partitions.
TEST_F(BrokerEngineTest, ProduceToAMissingPartitionFailsUnlessGrowingIsConfigured) {
  {
    auto broker = open();
    ASSERT_TRUE(broker);
    ASSERT_TRUE(broker->create_topic("narrow", {.partitions = 2}).ok());
    auto refused = produce_value(*broker, "narrow", "x", 5);
    ASSERT_FALSE(refused.ok());
    EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(refused.status().message().find("topic 'narrow' has 2 partitions"), std::string::npos)
        << refused.status();
    EXPECT_EQ(broker->describe_topic("narrow")->partitions.size(), 2u);
    EXPECT_TRUE(produce_value(*broker, "narrow", "x", 1).ok());
    // Growing explicitly works.
    ASSERT_TRUE(broker->add_partitions("narrow", 6).ok());
    auto appended = produce_value(*broker, "narrow", "x", 5);
    ASSERT_TRUE(appended.ok()) << appended.status();
    EXPECT_EQ((*appended)[0].partition, 5u);
    broker->shutdown();
  }
  auto options = test_options();
  options.produce_grows_partitions = true;
  options.max_partitions = 8;
  auto broker = open(options);
  ASSERT_TRUE(broker);
  auto grown = produce_value(*broker, "narrow", "x", 7);
  ASSERT_TRUE(grown.ok()) << grown.status();
  EXPECT_EQ(broker->describe_topic("narrow")->partitions.size(), 8u);
  auto beyond = produce_value(*broker, "narrow", "x", 8);
  EXPECT_EQ(beyond.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(beyond.status().message().find("max_partitions=8"), std::string::npos)
      << beyond.status();
}

// A produce runs on the receiving gRPC thread only when it just appends to the
// page cache: an existing topic, a small batch, partitions that exist and are
// not due a segment roll (which fsyncs the sealed segment); and never with
// inline_produce off.
TEST_F(BrokerEngineTest, ProduceIsQuickOnlyWhenItJustAppends) {
  auto options = test_options();
  options.segment_bytes = 4096;
  auto broker = open(options);
  ASSERT_TRUE(broker);
  auto call = [](const std::string& topic, size_t bytes, std::optional<uint32_t> partition) {
    ProduceCall call;
    call.topic = topic;
    call.records.push_back({.value = std::string(bytes, 'v')});
    call.partition = partition;
    return call;
  };
  EXPECT_FALSE(broker->produce_is_quick(call("fresh", 100, 0))) << "a new topic is created";
  ASSERT_TRUE(broker->create_topic("fresh", {.partitions = 2}).ok());
  EXPECT_TRUE(broker->produce_is_quick(call("fresh", 100, 0)));
  EXPECT_TRUE(broker->produce_is_quick(call("fresh", 100, std::nullopt)));
  EXPECT_FALSE(broker->produce_is_quick(call("fresh", 100, 2))) << "partition 2 does not exist";
  EXPECT_FALSE(broker->produce_is_quick(call("fresh", 300 * 1024, 0))) << "a large batch";

  // Fill partition 1's segment: its next append rolls (fsyncs) and is not quick.
  ASSERT_TRUE(produce_value(*broker, "fresh", std::string(5000, 'x'), 1).ok());
  EXPECT_FALSE(broker->produce_is_quick(call("fresh", 100, 1)));
  EXPECT_FALSE(broker->produce_is_quick(call("fresh", 100, std::nullopt)))
      << "round-robin may write partition 1";
  EXPECT_TRUE(broker->produce_is_quick(call("fresh", 100, 0)));
  ASSERT_TRUE(produce_value(*broker, "fresh", "y", 1).ok());  // rolled
  EXPECT_TRUE(broker->produce_is_quick(call("fresh", 100, 1)));
  broker->shutdown();

  options.inline_produce = false;
  auto queued = open(options);
  ASSERT_TRUE(queued);
  EXPECT_FALSE(queued->produce_is_quick(call("fresh", 100, 0)));
}

// The scope takes the first step handed to it and runs it when it ends; a
// second step, or one with no scope open, is left to the caller; scopes nest.
TEST(InlineStepScopeTest, RunsTheFirstWokenStepAtItsEnd) {
  std::vector<std::string> ran;
  std::function<void()> outside = [&] { ran.push_back("outside"); };
  EXPECT_FALSE(InlineStepScope::take(outside));
  ASSERT_TRUE(outside);
  {
    InlineStepScope scope;
    std::function<void()> first = [&] { ran.push_back("first"); };
    std::function<void()> second = [&] { ran.push_back("second"); };
    EXPECT_TRUE(InlineStepScope::take(first));
    EXPECT_FALSE(InlineStepScope::take(second));
    ASSERT_TRUE(second);
    {
      InlineStepScope inner;
      std::function<void()> nested = [&] {
        ran.push_back("nested");
        // While it runs, the outer scope is open again and still holds `first`.
        std::function<void()> more = [&] { ran.push_back("more"); };
        EXPECT_FALSE(InlineStepScope::take(more));
      };
      EXPECT_TRUE(InlineStepScope::take(nested));
    }
    EXPECT_EQ(ran, (std::vector<std::string>{"nested"}));
  }
  EXPECT_EQ(ran, (std::vector<std::string>{"nested", "first"}));
}

}  // namespace
}  // namespace telekern::broker
