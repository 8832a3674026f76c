// A consumer's session with a group: joins, delivers batches as records
// become ready, commits in LOG mode when asked, leaves at the end. The gRPC
// adapter only turns a request into a ConsumeSpec and each batch into a
// message.
#pragma once

#include <absl/status/status.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <stop_token>
#include <string>
#include <vector>

#include "consumer_group.h"

namespace telekern::broker {

class Broker;

struct ConsumeSpec {
  std::string topic;
  std::string group;
  std::string member;             // made up when empty
  std::optional<GroupMode> mode;  // LOG when the group is new and this is unset
  StartPosition start;
  std::optional<std::chrono::milliseconds> visibility_timeout;  // QUEUE; unset = the group's
  uint32_t max_in_flight = 0;                                   // QUEUE; 0 = the broker's
  size_t max_batch = 100;                                       // deliveries per batch
  uint64_t max = 0;          // end after this many deliveries; 0 = never
  bool auto_commit = false;  // LOG: commit each batch once the sink took it
  std::optional<std::chrono::milliseconds> idle_limit;  // end after this long without records
};

struct ConsumeBatch {
  std::string member;                                        // the first batch only
  std::optional<std::vector<uint32_t>> assigned_partitions;  // when the assignment changed
  std::vector<Delivery> deliveries;
};

// Takes a batch; false when the consumer has gone (the session ends).
using ConsumeSink = std::function<bool(ConsumeBatch& batch)>;

// One consumer's session as steps, for callers that hold no thread while it
// waits: next() returns a batch to send, the status to end with, or until
// when to wait (arm_waker() gets the caller woken as soon as records may be
// there). Joins the group when created, leaves it when destroyed.
class ConsumeSession {
 public:
  using Clock = std::chrono::steady_clock;
  struct Step {
    std::optional<ConsumeBatch> batch;  // send it, then call next() again
    std::optional<absl::Status> done;   // end the session with this
    Clock::time_point wait_until;       // neither: call next() again by then
  };

  ConsumeSession(Broker& broker, ConsumeSpec spec);
  ~ConsumeSession();
  ConsumeSession(const ConsumeSession&) = delete;
  ConsumeSession& operator=(const ConsumeSession&) = delete;

  // The batch returned last was delivered before this call (the caller only
  // calls next() once the sink took it): commits it first (LOG auto-commit).
  // A wait step lasts at most `recheck`: every change a poll could see
  // (records, joins, leaves, acks, expired visibility) notifies the topic,
  // so the waker or wait() ends it first; the recheck is a safety net.
  Step next(const std::stop_token& stop,
            std::chrono::milliseconds recheck = std::chrono::milliseconds(200));
  // After a wait step: calls `wake` once the topic changed since that step
  // (at once when it already has). One waker at a time; a new one replaces it.
  void arm_waker(std::function<void()> wake);
  // Blocks until the topic changed since the last wait step, `until` or stop.
  void wait(Clock::time_point until, const std::stop_token& stop);

 private:
  absl::Status start();

  Broker& broker_;
  const ConsumeSpec spec_;
  std::shared_ptr<ConsumerGroup> group_;
  std::string member_;
  bool joined_ = false;
  std::optional<absl::Status> failed_;  // joining failed
  uint64_t delivered_ = 0;
  uint64_t seen_assignment_ = 0;
  uint64_t topic_version_ = 0;  // as of the last poll
  uint64_t waiter_ = 0;         // the topic's id of the armed waker; 0: none
  bool first_ = true;
  std::map<uint32_t, uint64_t> to_commit_;  // of the batch handed out last
  Clock::time_point last_activity_ = Clock::now();
};

// Runs one consumer session until `max` deliveries, the idle limit, the sink
// refusing, `stop` (CANCELLED) or the broker stopping (UNAVAILABLE).
absl::Status consume(Broker& broker, const ConsumeSpec& spec, const ConsumeSink& sink,
                     std::stop_token stop);

}  // namespace telekern::broker
