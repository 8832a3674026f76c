// What a benchmark run needs from a messaging system: topics, producers whose
// send_batch returns once the system acknowledged every message, and
// consumers that return message payloads (and acknowledge them). One
// implementation per system; make_driver picks it from a DriverSpec.
#pragma once

#include <absl/status/status.h>
#include <absl/status/statusor.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "workload.h"

namespace grpc {
class Channel;
}

namespace telekern::bench {

struct Message {
  std::string key;
  std::string payload;
};

class DriverProducer {
 public:
  virtual ~DriverProducer() = default;
  // Sends every message and returns once all are acknowledged (or the first error).
  virtual absl::Status send_batch(const std::vector<Message>& batch) = 0;
};

class DriverConsumer {
 public:
  virtual ~DriverConsumer() = default;
  // Appends up to `max` payloads to `out`, waiting at most `timeout` for the
  // first; acknowledges them to the system before returning.
  virtual absl::Status poll(std::vector<std::string>& out, size_t max,
                            std::chrono::milliseconds timeout) = 0;
};

class Driver {
 public:
  virtual ~Driver() = default;
  virtual absl::Status create_topic(const std::string& topic, uint32_t partitions) = 0;
  virtual absl::StatusOr<std::unique_ptr<DriverProducer>> producer(const std::string& topic) = 0;
  // A consumer of `subscription` (consumers of one subscription share its messages).
  virtual absl::StatusOr<std::unique_ptr<DriverConsumer>> consumer(
      const std::string& topic, const std::string& subscription) = 0;
  // Removes what the run created (topics, streams); best effort.
  virtual void cleanup() {}
};

// What drivers may use from the hosting module.
struct DriverEnvironment {
  // In-process channel to telekern.broker.v1.Broker (telekern driver without transport).
  std::shared_ptr<grpc::Channel> broker_channel;
};

absl::StatusOr<std::unique_ptr<Driver>> make_driver(const DriverSpec& spec,
                                                    const DriverEnvironment& environment);

// Implementations (one file each).
absl::StatusOr<std::unique_ptr<Driver>> make_stream_driver(const DriverSpec& spec,
                                                           const DriverEnvironment& environment);
absl::StatusOr<std::unique_ptr<Driver>> make_redis_driver(const DriverSpec& spec);
absl::StatusOr<std::unique_ptr<Driver>> make_nats_driver(const DriverSpec& spec);
std::unique_ptr<Driver> make_sink_driver();

}  // namespace telekern::bench
