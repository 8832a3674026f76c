#include "broker_source.h"

#include <grpcpp/client_context.h>

#include <algorithm>
#include <map>

#include "telekern/proto_time.h"
#include "telekern/strings.h"

namespace telekern::tracer {
namespace {

absl::Status failed(const std::string& what, const grpc::Status& status) {
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                      str_cat(what, ": ", status.error_message()));
}

}  // namespace

BrokerSource::BrokerSource(std::shared_ptr<grpc::Channel> channel, std::string group,
                           std::chrono::milliseconds request_timeout, std::function<void()> release)
    : channel_(std::move(channel)),
      stub_(broker::v1::Broker::NewStub(channel_)),
      group_(std::move(group)),
      request_timeout_(request_timeout),
      release_(std::move(release)) {}

BrokerSource::~BrokerSource() {
  if (release_) release_();
}

std::unique_ptr<grpc::ClientContext> BrokerSource::context() const {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(std::chrono::system_clock::now() + request_timeout_);
  return context;
}

absl::StatusOr<std::vector<std::string>> BrokerSource::list_topics() {
  broker::v1::ListTopicsResponse response;
  auto status = stub_->ListTopics(context().get(), {}, &response);
  if (!status.ok())
    return failed("list broker topics (is the broker module loaded, or broker_address set?)",
                  status);
  std::vector<std::string> topics;
  for (const auto& topic : response.topics()) topics.push_back(topic.topic());
  std::sort(topics.begin(), topics.end());
  return topics;
}

absl::StatusOr<ScanUnit> BrokerSource::plan(const std::string& topic, const ScanLimits& limits) {
  broker::v1::DescribeTopicRequest request;
  request.set_topic(topic);
  broker::v1::DescribeTopicResponse response;
  auto status = stub_->DescribeTopic(context().get(), request, &response);
  if (!status.ok()) return failed(str_cat("describe topic '", topic, "'"), status);
  ScanUnit unit{topic, {}};
  for (const auto& partition : response.partitions()) {
    PartitionPlan plan;
    plan.partition = static_cast<int32_t>(partition.partition());
    plan.low = static_cast<int64_t>(partition.start_offset());
    plan.start = plan.low;
    plan.stop = limits.skip_offsets ? -1 : static_cast<int64_t>(partition.end_offset());
    unit.partitions.push_back(plan);
  }
  // The group of this trace starts at the first record at or after since
  // (or at the earliest record). Groups come into being with a Consume, so a
  // short one opens it first; its offsets are then reset by time.
  {
    broker::v1::ConsumeRequest open;
    open.set_topic(topic);
    open.set_group(group_);
    open.set_mode(broker::v1::GROUP_MODE_LOG);
    open.set_start(broker::v1::START_POSITION_LATEST);
    open.set_max(1);
    open.set_max_batch(1);
    open.mutable_wait()->set_nanos(1000000);
    auto open_context = context();
    auto reader = stub_->Consume(open_context.get(), open);
    broker::v1::ConsumeResponse ignored;
    while (reader->Read(&ignored)) {
    }
    status = reader->Finish();
    if (!status.ok()) return failed(str_cat("open a group on topic '", topic, "'"), status);
  }
  broker::v1::ResetOffsetsRequest reset;
  reset.set_topic(topic);
  reset.set_group(group_);
  if (limits.since_ms > 0) {
    reset.set_start(broker::v1::START_POSITION_TIMESTAMP);
    *reset.mutable_timestamp() = to_timestamp(
        std::chrono::system_clock::time_point(std::chrono::milliseconds(limits.since_ms)));
  } else {
    reset.set_start(broker::v1::START_POSITION_EARLIEST);
  }
  broker::v1::ResetOffsetsResponse reset_response;
  status = stub_->ResetOffsets(context().get(), reset, &reset_response);
  if (!status.ok()) return failed(str_cat("seek topic '", topic, "' by time"), status);
  for (const auto& committed : reset_response.group().partitions()) {
    for (auto& plan : unit.partitions) {
      if (plan.partition == static_cast<int32_t>(committed.partition()))
        plan.start = static_cast<int64_t>(committed.committed_offset());
    }
  }
  return unit;
}

absl::Status BrokerSource::scan(const ScanUnit& unit, const ScanLimits& limits, UnitSink& sink,
                                std::stop_token stop) {
  std::map<int32_t, int64_t> remaining;  // partition -> stop offset, until reached
  for (const auto& plan : unit.partitions) {
    if (plan.stop >= 0 && plan.start >= plan.stop) {
      sink.reached_end(plan.partition, plan.stop);
    } else {
      remaining[plan.partition] = plan.stop;
    }
  }
  if (remaining.empty()) return absl::OkStatus();
  broker::v1::ConsumeRequest request;
  request.set_topic(unit.topic);
  request.set_group(group_);
  request.set_mode(broker::v1::GROUP_MODE_LOG);
  request.set_member("tracer");
  request.set_max_batch(1000);
  auto wait = limits.inactivity;
  request.mutable_wait()->set_seconds(wait.count() / 1000);
  request.mutable_wait()->set_nanos(static_cast<int32_t>(wait.count() % 1000) * 1000000);
  grpc::ClientContext context;
  std::stop_callback cancel(stop, [&context] { context.TryCancel(); });
  auto reader = stub_->Consume(&context, request);
  broker::v1::ConsumeResponse response;
  std::map<int32_t, int64_t> next;
  bool stopped = false;
  while (!stopped && reader->Read(&response)) {
    for (const auto& consumed : response.records()) {
      auto partition = static_cast<int32_t>(consumed.partition());
      auto it = remaining.find(partition);
      if (it == remaining.end()) continue;  // already at its end
      RecordView record;
      record.topic = unit.topic;
      record.partition = partition;
      record.offset = static_cast<int64_t>(consumed.offset());
      record.timestamp_ms =
          consumed.timestamp().seconds() * 1000 + consumed.timestamp().nanos() / 1000000;
      record.key = consumed.key();
      record.value = consumed.value();
      for (const auto& header : consumed.headers())
        record.headers.emplace_back(header.key(), header.value());
      next[partition] = record.offset + 1;
      if (!sink.record(record)) {
        stopped = true;
        break;
      }
      if (it->second >= 0 && record.offset + 1 >= it->second) {
        sink.reached_end(partition, it->second);
        remaining.erase(it);
      }
    }
    for (const auto& [partition, offset] : next) sink.position(partition, offset);
    if (remaining.empty()) break;
  }
  context.TryCancel();
  auto status = reader->Finish();
  if (stopped || remaining.empty() || stop.stop_requested()) return absl::OkStatus();
  if (!status.ok() && status.error_code() != grpc::StatusCode::CANCELLED)
    return failed(str_cat("consume topic '", unit.topic, "'"), status);
  // The stream ended on its wait: nothing arrived for the inactivity timeout.
  for (const auto& [partition, stop_offset] : remaining) {
    if (stop_offset < 0) {
      sink.reached_end(partition, next.count(partition) ? next[partition] : -1);
      sink.failed(partition, "skip_offsets: ended on the inactivity timeout");
    } else {
      sink.failed(partition, str_cat("no record for ", limits.inactivity.count(),
                                     " ms before offset ", stop_offset, " (inactivity timeout)"));
    }
  }
  return absl::OkStatus();
}

}  // namespace telekern::tracer
