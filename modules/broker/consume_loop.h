// A consumer's session with a group: joins, delivers batches as records
// become ready, commits in LOG mode when asked, leaves at the end. The gRPC
// adapter only turns a request into a ConsumeSpec and each batch into a
// message.
#pragma once

#include <absl/status/status.h>

#include <chrono>
#include <cstdint>
#include <functional>
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

// Runs one consumer session until `max` deliveries, the idle limit, the sink
// refusing, `stop` (CANCELLED) or the broker stopping (UNAVAILABLE).
absl::Status consume(Broker& broker, const ConsumeSpec& spec, const ConsumeSink& sink,
                     std::stop_token stop);

}  // namespace telekern::broker
