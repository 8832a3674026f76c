// A driver whose producers discard every message at once: the load
// generator's own ceiling (how fast the client side can go), so a report can
// tell when the client, not the broker, is the limit.
#include <thread>

#include "driver.h"

namespace telekern::bench {
namespace {

class SinkProducer final : public DriverProducer {
 public:
  absl::Status send_batch(const std::vector<Message>&) override { return absl::OkStatus(); }
};

class SinkConsumer final : public DriverConsumer {
 public:
  absl::Status poll(std::vector<std::string>&, size_t, std::chrono::milliseconds timeout) override {
    std::this_thread::sleep_for(std::min(timeout, std::chrono::milliseconds(50)));
    return absl::OkStatus();
  }
};

class SinkDriver final : public Driver {
 public:
  absl::Status create_topic(const std::string&, uint32_t) override { return absl::OkStatus(); }
  absl::StatusOr<std::unique_ptr<DriverProducer>> producer(const std::string&) override {
    return std::make_unique<SinkProducer>();
  }
  absl::StatusOr<std::unique_ptr<DriverConsumer>> consumer(const std::string&,
                                                           const std::string&) override {
    return std::make_unique<SinkConsumer>();
  }
};

}  // namespace

std::unique_ptr<Driver> make_sink_driver() { return std::make_unique<SinkDriver>(); }

}  // namespace telekern::bench
