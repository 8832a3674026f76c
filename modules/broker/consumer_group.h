// A consumer group on one topic. Members share the topic's partitions
// (partition p goes to member p mod n in join order, recomputed on every join
// and leave). LOG mode hands out records in order and remembers committed
// offsets; QUEUE mode tracks every delivery until it is acked, redelivers it
// after its visibility timeout or a nack, and dead-letters it after
// max_deliveries.
#pragma once

#include <absl/status/status.h>
#include <absl/status/statusor.h>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "group_state_log.h"
#include "record.h"
#include "telekern/metrics.h"
#include "topic.h"

namespace telekern::broker {

using Clock = std::chrono::steady_clock;

enum class StartKind { kDefault, kEarliest, kLatest, kOffset, kTimestamp };

// Where a partition without a committed offset starts.
struct StartPosition {
  StartKind kind = StartKind::kDefault;
  uint64_t offset = 0;
  int64_t timestamp_ms = 0;
};

struct GroupSettings {
  std::chrono::milliseconds visibility_timeout{30000};
  uint32_t max_deliveries = 5;
  uint32_t max_in_flight = 2000;  // per partition
  std::vector<std::chrono::milliseconds> nack_backoff{
      std::chrono::seconds(1), std::chrono::seconds(5), std::chrono::seconds(30)};
  uint64_t compact_after_entries = 10000;
};

struct MemberOptions {
  std::string name;  // made up when empty
  StartPosition start;
  std::chrono::milliseconds visibility_timeout{0};  // 0 = the group's
  uint32_t max_in_flight = 0;                       // 0 = no per-member cap
};

struct Delivery {
  uint32_t partition = 0;
  StoredRecord record;
  uint32_t attempt = 1;
};

// Counters the group feeds; any may be null.
struct GroupMetrics {
  Counter* consumed = nullptr;
  Counter* acked = nullptr;
  Counter* redelivered = nullptr;
  Counter* dead_lettered = nullptr;
  Histogram* ack_latency = nullptr;
};

struct GroupPartitionInfo {
  uint32_t partition = 0;
  uint64_t committed = 0;
  uint64_t lag = 0;
  uint32_t in_flight = 0;
  std::string member;
};

struct GroupInfo {
  std::string name;
  std::string topic;
  GroupMode mode = GroupMode::kLog;
  std::vector<GroupPartitionInfo> partitions;
  std::vector<std::string> members;
  uint64_t lag = 0;
  uint64_t in_flight = 0;
  uint64_t dead_lettered = 0;
};

enum class NackOutcome { kRequeued, kDeadLettered, kUnknown };

// Appends a dead letter (the original record with x-dlq-* headers) for a
// record of `partition`; called with the group's lock held.
using DeadLetterSink = std::function<absl::Status(uint32_t partition, Record record)>;

class ConsumerGroup {
 public:
  static absl::StatusOr<std::unique_ptr<ConsumerGroup>> open(
      const std::filesystem::path& state_file, std::string name, std::shared_ptr<Topic> topic,
      std::optional<GroupMode> mode, GroupSettings settings, DeadLetterSink dead_letters,
      GroupMetrics metrics, std::shared_ptr<spdlog::logger> logger);

  const std::string& name() const { return name_; }
  const std::string& topic_name() const { return topic_->name(); }
  const std::shared_ptr<Topic>& topic() const { return topic_; }
  GroupMode mode() const { return mode_; }

  // Adds a member and rebalances; returns its id (options.name or a made-up one).
  absl::StatusOr<std::string> join(const MemberOptions& options);
  // Removes a member, releases its unacked deliveries at once, rebalances.
  void leave(const std::string& member);
  // The member's partitions and a counter that changes with them.
  std::pair<std::vector<uint32_t>, uint64_t> assignment(const std::string& member) const;

  // Up to max_records deliveries for `member` (none when nothing is ready).
  absl::StatusOr<std::vector<Delivery>> poll(const std::string& member, size_t max_records,
                                             Clock::time_point now);

  // LOG mode: the next offset the group reads on `partition`.
  absl::Status commit(uint32_t partition, uint64_t offset);
  // QUEUE mode. false / kUnknown when the delivery is not in flight.
  absl::StatusOr<bool> ack(uint32_t partition, uint64_t offset, Clock::time_point now);
  absl::StatusOr<NackOutcome> nack(uint32_t partition, uint64_t offset, const std::string& error,
                                   std::optional<std::chrono::milliseconds> delay,
                                   Clock::time_point now);
  absl::StatusOr<bool> extend(uint32_t partition, uint64_t offset,
                              std::chrono::milliseconds timeout, Clock::time_point now);
  absl::Status reset_offsets(const StartPosition& start, std::optional<uint32_t> partition);

  // Expires visibility timeouts; returns how many deliveries it released.
  size_t tick(Clock::time_point now);
  GroupInfo describe() const;
  uint64_t total_lag() const;
  // Per partition, one past the highest offset the group has committed, acked
  // or had delivered (what its clients have seen).
  std::map<uint32_t, uint64_t> highest_positions() const;
  absl::Status sync_state();
  // Deletes the state file (the topic is going away).
  absl::Status remove();

 private:
  struct InFlight {
    uint32_t attempts = 0;
    bool delivered = false;        // with a member until deadline; else waiting until ready_at
    Clock::time_point deadline{};  // delivered: visibility deadline; waiting: ready time
    Clock::time_point delivered_at{};
    std::string member;
    std::string last_error;
    std::vector<std::string> history;
    // The deadline this entry is filed under: in its partition's `ready` set
    // when `waiting` (for redelivery), else in timers_. Unset: filed nowhere.
    std::optional<Clock::time_point> timer;
    bool waiting = false;
  };
  struct PartitionRuntime {
    uint64_t cursor = 0;  // LOG: owner's read position; QUEUE: next offset never delivered
    bool cursor_valid = false;
    std::map<uint64_t, InFlight> in_flight;  // QUEUE
    // QUEUE: (ready time, offset) of entries waiting for redelivery, so poll()
    // looks only at entries that are due.
    std::set<std::pair<Clock::time_point, uint64_t>> ready;
    std::string owner;
    std::string last_error;  // the partition's last poll error, logged once
  };
  struct Member {
    MemberOptions options;
    std::vector<uint32_t> partitions;
    uint64_t assignment_version = 0;
    size_t in_flight = 0;
    size_t next_partition = 0;
  };

  ConsumerGroup(std::string name, std::shared_ptr<Topic> topic, GroupSettings settings,
                DeadLetterSink dead_letters, GroupMetrics metrics,
                std::shared_ptr<spdlog::logger> logger)
      : name_(std::move(name)),
        topic_(std::move(topic)),
        settings_(std::move(settings)),
        dead_letters_(std::move(dead_letters)),
        metrics_(metrics),
        logger_(std::move(logger)) {}

  void rebalance();
  absl::StatusOr<uint64_t> resolve_start(uint32_t partition, const StartPosition& start) const;
  absl::Status ensure_cursor(uint32_t partition, const Member& member);
  absl::Status poll_log(uint32_t partition, Member& member, size_t max_records,
                        std::vector<Delivery>& out);
  absl::Status poll_queue(uint32_t partition, const std::string& member_id, Member& member,
                          size_t max_records, Clock::time_point now, std::vector<Delivery>& out);
  // A delivery attempt failed (timeout, nack, member left): wait or dead-letter.
  void fail_delivery(uint32_t partition, uint64_t offset, InFlight& entry,
                     const std::string& reason, Clock::time_point ready_at, bool* dead_lettered);
  absl::Status dead_letter(uint32_t partition, uint64_t offset, InFlight& entry,
                           const std::string& reason);
  void finish_offset(uint32_t partition, uint64_t offset);  // acked or dead-lettered
  void release_member_count(const InFlight& entry);
  // Files the entry under its deadline: in timers_ when tick() must act on it
  // (delivered: visibility timeout; past max_deliveries: dead-letter retry),
  // else in its partition's ready set for poll() to redeliver. Call whenever
  // delivered, deadline or attempts change; unschedule before erasing it.
  void schedule(uint32_t partition, uint64_t offset, InFlight& entry);
  void unschedule(uint32_t partition, uint64_t offset, InFlight& entry);
  std::chrono::milliseconds visibility_for(const Member& member) const;
  void maybe_compact();
  void flush_state();
  using Entry = GroupStateLog::EntryType;
  void log_error(const absl::Status& status, std::string_view what);

  std::string name_;
  std::shared_ptr<Topic> topic_;
  GroupSettings settings_;
  DeadLetterSink dead_letters_;
  GroupMetrics metrics_;
  std::shared_ptr<spdlog::logger> logger_;
  GroupMode mode_ = GroupMode::kLog;

  mutable std::mutex mutex_;
  std::unique_ptr<GroupStateLog> state_log_;
  GroupSnapshot state_;  // committed offsets, acks, attempts (what the log holds)
  std::map<uint32_t, PartitionRuntime> runtime_;
  // In-flight entries by deadline, so tick() costs O(expired), not O(in flight).
  std::set<std::tuple<Clock::time_point, uint32_t, uint64_t>> timers_;
  std::map<std::string, Member> members_;
  std::vector<std::string> member_order_;
  uint64_t member_counter_ = 0;
  uint32_t partition_count_ = 0;  // partitions the last rebalance saw
};

}  // namespace telekern::broker
