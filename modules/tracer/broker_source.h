// The broker source: the embedded telekern broker's topics over its gRPC API
// (in-process when the broker module runs in this daemon). Watermarks come
// from DescribeTopic; the max_age seek is a ResetOffsets by timestamp of a
// group of this trace, whose committed offsets are then the start offsets.
#pragma once

#include <grpcpp/channel.h>

#include <functional>
#include <memory>

#include "source.h"
#include "telekern/broker/v1/broker.grpc.pb.h"

namespace telekern::tracer {

class BrokerSource final : public TraceSource {
 public:
  // `release` runs when the source is destroyed (the group name goes back to its pool).
  BrokerSource(std::shared_ptr<grpc::Channel> channel, std::string group,
               std::chrono::milliseconds request_timeout, std::function<void()> release = {});
  ~BrokerSource() override;

  std::string name() const override { return "broker"; }
  absl::StatusOr<std::vector<std::string>> list_topics() override;
  absl::StatusOr<ScanUnit> plan(const std::string& topic, const ScanLimits& limits) override;
  absl::Status scan(const ScanUnit& unit, const ScanLimits& limits, UnitSink& sink,
                    std::stop_token stop) override;

 private:
  std::unique_ptr<grpc::ClientContext> context() const;

  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<broker::v1::Broker::Stub> stub_;
  std::string group_;
  std::chrono::milliseconds request_timeout_;
  std::function<void()> release_;
};

}  // namespace telekern::tracer
