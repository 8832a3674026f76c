// Consumer groups: the durable state log, LOG-mode commits, QUEUE-mode acks,
// visibility timeouts, nacks, dead letters and rebalancing.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "consumer_group.h"
#include "group_state_log.h"
#include "tests/support/process.h"
#include "topic.h"

namespace telekern::broker {
namespace {

using namespace std::chrono_literals;

// A temp dir removed with its contents at scope end (tests/support).
class TempDirectory : public telekern::testing::TempDir {
 public:
  TempDirectory() : TempDir("broker-group") {}
};

TEST(GroupStateLogTest, ReplaysCommitsAcksAndAttempts) {
  TempDirectory dir;
  auto path = dir.path() / "g.state";
  {
    GroupSnapshot state;
    auto log = GroupStateLog::open(path, &state, nullptr);
    ASSERT_TRUE(log.ok());
    using E = GroupStateLog::EntryType;
    (*log)->record(state, E::kMode, 0, 0, static_cast<uint32_t>(GroupMode::kQueue));
    (*log)->record(state, E::kCommit, 1, 10);
    (*log)->record(state, E::kAttempts, 1, 11, 2);
    (*log)->record(state, E::kAck, 1, 12);
    (*log)->record(state, E::kAck, 1, 10);  // watermark moves to 11
    (*log)->record(state, E::kDeadLetter, 1, 14);
    ASSERT_TRUE((*log)->flush().ok());
    EXPECT_EQ(state.partitions[1].committed, 11u);
  }
  GroupSnapshot state;
  uint64_t truncated = 0;
  auto log = GroupStateLog::open(path, &state, &truncated);
  ASSERT_TRUE(log.ok());
  EXPECT_EQ(truncated, 0u);
  EXPECT_EQ(state.mode, GroupMode::kQueue);
  EXPECT_EQ(state.partitions[1].committed, 11u);
  EXPECT_EQ(state.partitions[1].acked, (std::set<uint64_t>{12, 14}));
  EXPECT_EQ(state.partitions[1].attempts[11], 2u);
  EXPECT_EQ(state.dead_lettered, 1u);
}

TEST(GroupStateLogTest, CutsTornTailAndCompacts) {
  TempDirectory dir;
  auto path = dir.path() / "g.state";
  GroupSnapshot written;
  {
    auto log = GroupStateLog::open(path, &written, nullptr);
    for (uint64_t i = 1; i <= 1000; ++i)
      (*log)->record(written, GroupStateLog::EntryType::kCommit, 0, i);
    ASSERT_TRUE((*log)->flush().ok());
  }
  std::ofstream(path, std::ios::binary | std::ios::app)
      << std::string("\x01\x02\x03\x04\x05\x06\x07", 7);
  GroupSnapshot state;
  uint64_t truncated = 0;
  auto log = GroupStateLog::open(path, &state, &truncated);
  ASSERT_TRUE(log.ok());
  EXPECT_EQ(truncated, 7u);
  EXPECT_EQ(state.partitions[0].committed, 1000u);
  auto before = std::filesystem::file_size(path);
  ASSERT_TRUE((*log)->compact(state).ok());
  EXPECT_LT(std::filesystem::file_size(path), before / 100);
  (*log)->record(state, GroupStateLog::EntryType::kCommit, 0, 1001);
  ASSERT_TRUE((*log)->flush().ok());
  log->reset();
  GroupSnapshot reread;
  ASSERT_TRUE(GroupStateLog::open(path, &reread, nullptr).ok());
  EXPECT_EQ(reread.partitions[0].committed, 1001u);
}

MemberOptions member_named(std::string name, std::chrono::milliseconds visibility = 0ms) {
  MemberOptions options;
  options.name = std::move(name);
  options.visibility_timeout = visibility;
  return options;
}

MemberOptions latest_member() {
  MemberOptions options;
  options.start.kind = StartKind::kLatest;
  return options;
}

class ConsumerGroupTest : public ::testing::Test {
 protected:
  void SetUp() override {
    topic_ = std::shared_ptr<Topic>(
        std::move(*Topic::create(dir_.path() / "t", "t", {2, 0, 0, 1 << 20}, 4096, nullptr)));
  }
  void produce(uint32_t partition, int count) {
    for (int i = 0; i < count; ++i) {
      Record record;
      record.value = "p" + std::to_string(partition) + "-" +
                     std::to_string(topic_->partition(partition)->end_offset());
      ASSERT_TRUE(topic_->partition(partition)->append({record}).ok());
    }
  }
  std::unique_ptr<ConsumerGroup> open(GroupMode mode, GroupSettings settings = {}) {
    auto group = ConsumerGroup::open(
        dir_.path() / "groups" / "g.state", "g", topic_, mode, settings,
        [this](uint32_t partition, Record record) {
          dead_letters_.emplace_back(partition, std::move(record));
          return absl::OkStatus();
        },
        {}, nullptr);
    EXPECT_TRUE(group.ok()) << group.status();
    return group.ok() ? std::move(*group) : nullptr;
  }
  TempDirectory dir_;
  std::shared_ptr<Topic> topic_;
  std::vector<std::pair<uint32_t, Record>> dead_letters_;
};

TEST_F(ConsumerGroupTest, LogModeDeliversInOrderAndResumesFromCommit) {
  produce(0, 5);
  produce(1, 3);
  {
    auto group = open(GroupMode::kLog);
    auto member = group->join({});
    ASSERT_TRUE(member.ok());
    auto deliveries = group->poll(*member, 100, Clock::now());
    ASSERT_TRUE(deliveries.ok());
    EXPECT_EQ(deliveries->size(), 8u);
    std::map<uint32_t, uint64_t> next;
    for (const auto& delivery : *deliveries) {
      EXPECT_EQ(delivery.record.offset, next[delivery.partition]++);
    }
    ASSERT_TRUE(group->commit(0, 3).ok());
    ASSERT_TRUE(group->commit(1, 3).ok());
    EXPECT_EQ(group->ack(0, 0, Clock::now()).status().code(),
              absl::StatusCode::kFailedPrecondition);
  }
  auto group = open(GroupMode::kLog);
  auto member = group->join({});
  auto deliveries = group->poll(*member, 100, Clock::now());
  ASSERT_TRUE(deliveries.ok());
  ASSERT_EQ(deliveries->size(), 2u);  // offsets 3 and 4 of partition 0
  EXPECT_EQ((*deliveries)[0].record.offset, 3u);
  EXPECT_EQ(group->describe().lag, 2u);
}

TEST_F(ConsumerGroupTest, LatestStartSkipsExistingRecords) {
  produce(0, 5);
  auto group = open(GroupMode::kLog);
  auto member = group->join(latest_member());
  EXPECT_TRUE(group->poll(*member, 100, Clock::now())->empty());
  produce(0, 1);
  auto deliveries = group->poll(*member, 100, Clock::now());
  ASSERT_EQ(deliveries->size(), 1u);
  EXPECT_EQ((*deliveries)[0].record.offset, 5u);
}

TEST_F(ConsumerGroupTest, QueueModeRedeliversAfterVisibilityTimeoutThenDeadLetters) {
  produce(0, 1);
  GroupSettings settings;
  settings.max_deliveries = 2;
  auto group = open(GroupMode::kQueue, settings);
  auto member = group->join(member_named("c1", 100ms));
  auto t0 = Clock::now();
  auto first = group->poll(*member, 10, t0);
  ASSERT_EQ(first->size(), 1u);
  EXPECT_EQ((*first)[0].attempt, 1u);
  EXPECT_TRUE(group->poll(*member, 10, t0)->empty());  // in flight, invisible
  EXPECT_EQ(group->tick(t0 + 50ms), 0u);
  EXPECT_EQ(group->tick(t0 + 150ms), 1u);
  auto second = group->poll(*member, 10, t0 + 150ms);
  ASSERT_EQ(second->size(), 1u);
  EXPECT_EQ((*second)[0].attempt, 2u);
  EXPECT_TRUE(dead_letters_.empty());
  EXPECT_EQ(group->tick(t0 + 300ms), 1u);  // second timeout: max_deliveries reached
  ASSERT_EQ(dead_letters_.size(), 1u);
  std::map<std::string, std::string> headers;
  for (const auto& header : dead_letters_[0].second.headers) headers[header.key] = header.value;
  EXPECT_EQ(headers["x-dlq-attempts"], "2");
  EXPECT_EQ(headers["x-dlq-consumer"], "c1");
  EXPECT_NE(headers["x-dlq-reason"].find("max_deliveries=2"), std::string::npos);
  EXPECT_NE(headers["x-dlq-history"].find("visibility timeout"), std::string::npos);
  EXPECT_EQ(dead_letters_[0].second.value, "p0-0");
  auto info = group->describe();
  EXPECT_EQ(info.dead_lettered, 1u);
  EXPECT_EQ(info.partitions[0].committed, 1u);
  EXPECT_EQ(info.in_flight, 0u);
}

// tick() works from a deadline index: extending, acking, nacking and resetting
// must move or drop an entry's deadline, and only due entries are touched.
TEST_F(ConsumerGroupTest, TickReleasesOnlyDueDeliveriesAfterExtendAckAndReset) {
  produce(0, 1000);
  GroupSettings settings;
  settings.max_deliveries = 10;
  auto group = open(GroupMode::kQueue, settings);
  auto member = group->join(member_named("c", 100ms));
  auto t0 = Clock::now();
  ASSERT_EQ(group->poll(*member, 1000, t0)->size(), 1000u);
  ASSERT_TRUE(*group->extend(0, 7, 10s, t0));
  ASSERT_TRUE(*group->ack(0, 8, t0));
  ASSERT_EQ(*group->nack(0, 9, "later", 5s, t0), NackOutcome::kRequeued);
  EXPECT_EQ(group->tick(t0 + 99ms), 0u);
  EXPECT_EQ(group->tick(t0 + 100ms), 997u);  // all but the extended, acked and nacked ones
  EXPECT_EQ(group->tick(t0 + 9s), 0u);       // nothing twice; the nacked one waits for poll
  EXPECT_EQ(group->tick(t0 + 10s), 1u);      // the extended one
  EXPECT_EQ(group->describe().in_flight, 999u);

  // Redelivered entries get a fresh deadline; a reset drops every deadline.
  auto t1 = t0 + 11s;
  ASSERT_EQ(group->poll(*member, 1000, t1)->size(), 999u);
  EXPECT_EQ(group->tick(t1 + 100ms), 999u);
  ASSERT_EQ(group->poll(*member, 1000, t1 + 100ms)->size(), 999u);
  StartPosition latest;
  latest.kind = StartKind::kLatest;
  ASSERT_TRUE(group->reset_offsets(latest, std::nullopt).ok());
  EXPECT_EQ(group->tick(t1 + 1h), 0u);
  EXPECT_EQ(group->describe().in_flight, 0u);
}

TEST_F(ConsumerGroupTest, FailedDeadLetterIsRetriedByTick) {
  produce(0, 1);
  GroupSettings settings;
  settings.max_deliveries = 1;
  bool sink_fails = true;
  auto opened = ConsumerGroup::open(
      dir_.path() / "groups" / "g.state", "g", topic_, GroupMode::kQueue, settings,
      [&](uint32_t partition, Record record) {
        if (sink_fails) return absl::UnavailableError("dlq down");
        dead_letters_.emplace_back(partition, std::move(record));
        return absl::OkStatus();
      },
      {}, nullptr);
  ASSERT_TRUE(opened.ok());
  auto& group = *opened;
  auto member = group->join(member_named("c", 100ms));
  auto t0 = Clock::now();
  ASSERT_EQ(group->poll(*member, 10, t0)->size(), 1u);
  EXPECT_EQ(group->tick(t0 + 100ms), 1u);  // timed out; the dead letter fails
  EXPECT_TRUE(dead_letters_.empty());
  EXPECT_TRUE(
      group->poll(*member, 10, t0 + 2s)->empty());  // past max_deliveries: never redelivered
  EXPECT_EQ(group->tick(t0 + 500ms), 0u);           // retried a second after the failure
  sink_fails = false;
  EXPECT_EQ(group->tick(t0 + 1100ms), 1u);
  EXPECT_EQ(dead_letters_.size(), 1u);
  EXPECT_EQ(group->describe().in_flight, 0u);
}

TEST_F(ConsumerGroupTest, QueueModeAcksNacksAndSurvivesReopen) {
  produce(0, 4);
  {
    auto group = open(GroupMode::kQueue);
    auto member = group->join(member_named("a"));
    auto now = Clock::now();
    auto deliveries = group->poll(*member, 10, now);
    ASSERT_EQ(deliveries->size(), 4u);
    EXPECT_TRUE(*group->ack(0, 0, now));
    EXPECT_TRUE(*group->ack(0, 2, now));
    EXPECT_FALSE(*group->ack(0, 2, now));  // already acked
    EXPECT_EQ(*group->nack(0, 1, "bad input", 0ms, now), NackOutcome::kRequeued);
    EXPECT_TRUE(*group->extend(0, 3, 1h, now));
    auto again = group->poll(*member, 10, now);
    ASSERT_EQ(again->size(), 1u);
    EXPECT_EQ((*again)[0].record.offset, 1u);
    EXPECT_EQ((*again)[0].attempt, 2u);
    EXPECT_EQ(group->describe().partitions[0].committed, 1u);
  }
  // After a restart: 0 and 2 stay acked; 1 and 3 come again, 1 on its third attempt.
  auto group = open(GroupMode::kQueue);
  auto member = group->join({});
  auto deliveries = group->poll(*member, 10, Clock::now());
  ASSERT_EQ(deliveries->size(), 2u);
  EXPECT_EQ((*deliveries)[0].record.offset, 1u);
  EXPECT_EQ((*deliveries)[0].attempt, 3u);
  EXPECT_EQ((*deliveries)[1].record.offset, 3u);
  EXPECT_EQ((*deliveries)[1].attempt, 2u);
}

TEST_F(ConsumerGroupTest, NackUsesBackoffSchedule) {
  produce(0, 1);
  GroupSettings settings;
  settings.nack_backoff = {200ms, 1s};
  auto group = open(GroupMode::kQueue, settings);
  auto member = group->join({});
  auto t0 = Clock::now();
  ASSERT_EQ(group->poll(*member, 10, t0)->size(), 1u);
  EXPECT_EQ(*group->nack(0, 0, "oops", std::nullopt, t0), NackOutcome::kRequeued);
  EXPECT_TRUE(group->poll(*member, 10, t0 + 100ms)->empty());
  ASSERT_EQ(group->poll(*member, 10, t0 + 250ms)->size(), 1u);
  EXPECT_EQ(*group->nack(0, 0, "oops", std::nullopt, t0 + 250ms), NackOutcome::kRequeued);
  EXPECT_TRUE(group->poll(*member, 10, t0 + 1100ms)->empty());  // second step: 1 s
  EXPECT_EQ(group->poll(*member, 10, t0 + 1300ms)->size(), 1u);
}

TEST_F(ConsumerGroupTest, InFlightLimitHoldsBackNewDeliveries) {
  produce(0, 10);
  GroupSettings settings;
  settings.max_in_flight = 3;
  auto group = open(GroupMode::kQueue, settings);
  auto member = group->join({});
  auto now = Clock::now();
  ASSERT_EQ(group->poll(*member, 100, now)->size(), 3u);
  EXPECT_TRUE(group->poll(*member, 100, now)->empty());
  EXPECT_TRUE(*group->ack(0, 1, now));
  auto next = group->poll(*member, 100, now);
  ASSERT_EQ(next->size(), 1u);
  EXPECT_EQ((*next)[0].record.offset, 3u);
}

TEST_F(ConsumerGroupTest, LeavingReleasesDeliveriesAndRebalances) {
  ASSERT_TRUE(topic_->grow(4).ok());
  for (uint32_t p = 0; p < 4; ++p) produce(p, 2);
  auto group = open(GroupMode::kQueue);
  auto a = *group->join(member_named("a"));
  EXPECT_EQ(group->assignment(a).first.size(), 4u);
  auto b = *group->join(member_named("b"));
  EXPECT_EQ(group->assignment(a).first, (std::vector<uint32_t>{0, 2}));
  EXPECT_EQ(group->assignment(b).first, (std::vector<uint32_t>{1, 3}));
  auto now = Clock::now();
  auto from_b = group->poll(b, 100, now);
  ASSERT_EQ(from_b->size(), 4u);
  for (const auto& delivery : *from_b)
    EXPECT_TRUE(delivery.partition == 1 || delivery.partition == 3);
  group->leave(b);
  EXPECT_EQ(group->assignment(a).first.size(), 4u);
  // b's unacked deliveries are available again at once, not after 30 s.
  auto from_a = group->poll(a, 100, Clock::now());
  ASSERT_EQ(from_a->size(), 8u);
  size_t second_attempts = 0;
  for (const auto& delivery : *from_a) second_attempts += delivery.attempt == 2;
  EXPECT_EQ(second_attempts, 4u);
}

}  // namespace
}  // namespace telekern::broker

namespace telekern::broker {
namespace {

// The dead letter of a record nacked before and after a restart lists every
// failed attempt, not only those after the restart.
TEST_F(ConsumerGroupTest, DeadLetterHistorySurvivesAReopen) {
  produce(0, 1);
  GroupSettings settings;
  settings.max_deliveries = 3;
  settings.nack_backoff = {};
  auto t0 = Clock::now();
  {
    auto group = open(GroupMode::kQueue, settings);
    auto member = group->join(member_named("before"));
    ASSERT_EQ(group->poll(*member, 10, t0)->size(), 1u);
    ASSERT_EQ(*group->nack(0, 0, "first failure", 0ms, t0), NackOutcome::kRequeued);
    ASSERT_EQ(group->poll(*member, 10, t0)->size(), 1u);
    ASSERT_EQ(*group->nack(0, 0, "second failure", 0ms, t0), NackOutcome::kRequeued);
  }
  auto group = open(GroupMode::kQueue, settings);
  auto member = group->join(member_named("after"));
  auto delivered = group->poll(*member, 10, t0);
  ASSERT_EQ(delivered->size(), 1u);
  EXPECT_EQ((*delivered)[0].attempt, 3u);
  ASSERT_EQ(*group->nack(0, 0, "third failure", 0ms, t0), NackOutcome::kDeadLettered);
  ASSERT_EQ(dead_letters_.size(), 1u);
  std::map<std::string, std::string> headers;
  for (const auto& header : dead_letters_[0].second.headers) headers[header.key] = header.value;
  EXPECT_EQ(headers["x-dlq-attempts"], "3");
  const auto& history = headers["x-dlq-history"];
  EXPECT_NE(history.find("attempt 1 by before: nack: first failure"), std::string::npos) << history;
  EXPECT_NE(history.find("attempt 2 by before: nack: second failure"), std::string::npos)
      << history;
  EXPECT_NE(history.find("attempt 3 by after: nack: third failure"), std::string::npos) << history;
}

}  // namespace
}  // namespace telekern::broker
