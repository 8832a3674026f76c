#include "driver.h"

namespace telekern::bench {

absl::StatusOr<std::unique_ptr<Driver>> make_driver(const DriverSpec& spec,
                                                    const DriverEnvironment& environment) {
  switch (spec.kind) {
    case DriverKind::kTelekern:
    case DriverKind::kKafka:
      return make_stream_driver(spec, environment);
    case DriverKind::kRedis:
      return make_redis_driver(spec);
    case DriverKind::kNats:
      return make_nats_driver(spec);
    case DriverKind::kSink:
      return make_sink_driver();
  }
  return absl::InvalidArgumentError("unknown driver kind");
}

}  // namespace telekern::bench
