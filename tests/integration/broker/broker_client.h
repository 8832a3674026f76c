// Helpers for the broker integration tests: a telekernd with the broker
// module, a thin Broker client and a Consume stream read with a deadline.
#pragma once

#include <google/protobuf/util/time_util.h>
#include <grpcpp/create_channel.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "telekern/broker/v1/broker.grpc.pb.h"
#include "tests/support/telekernd.h"

namespace telekern::testing {

namespace bv1 = telekern::broker::v1;
using google::protobuf::util::TimeUtil;
using namespace std::chrono_literals;

inline std::string modules_dir() { return std::string(TELEKERN_BUILD_DIR) + "/modules"; }

inline TelekerndOptions broker_options(const std::string& broker_yaml = "") {
  TelekerndOptions options;
  options.modules_dir = modules_dir();
  options.load = {"broker"};
  if (!broker_yaml.empty()) options.config_yaml = "modules:\n  broker:\n" + broker_yaml;
  return options;
}

inline std::unique_ptr<grpc::ClientContext> context(std::chrono::milliseconds deadline = 20s) {
  auto out = std::make_unique<grpc::ClientContext>();
  out->set_deadline(std::chrono::system_clock::now() + deadline);
  return out;
}

class Client {
 public:
  explicit Client(const Telekernd& daemon) : stub_(bv1::Broker::NewStub(daemon.channel())) {}

  grpc::Status produce(const std::string& topic, const std::vector<std::string>& values,
                       bv1::ProduceResponse* response,
                       std::optional<uint32_t> partition = std::nullopt,
                       const std::string& key = "",
                       bv1::Durability durability = bv1::DURABILITY_FSYNC) {
    bv1::ProduceRequest request;
    request.set_topic(topic);
    request.set_durability(durability);
    if (partition) request.set_partition(*partition);
    for (const auto& value : values) {
      auto* record = request.add_records();
      record->set_value(value);
      record->set_key(key);
    }
    return stub_->Produce(context().get(), request, response);
  }
  bv1::ProduceResponse produce_ok(const std::string& topic, const std::vector<std::string>& values,
                                  std::optional<uint32_t> partition = std::nullopt,
                                  const std::string& key = "") {
    bv1::ProduceResponse response;
    auto status = produce(topic, values, &response, partition, key);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return response;
  }
  bv1::DescribeTopicResponse describe(const std::string& topic) {
    bv1::DescribeTopicRequest request;
    request.set_topic(topic);
    bv1::DescribeTopicResponse response;
    auto status = stub_->DescribeTopic(context().get(), request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return response;
  }
  grpc::Status create(const std::string& topic, uint32_t partitions, uint64_t segment_bytes = 0) {
    bv1::CreateTopicRequest request;
    request.set_topic(topic);
    request.set_partitions(partitions);
    request.set_segment_bytes(segment_bytes);
    bv1::CreateTopicResponse response;
    return stub_->CreateTopic(context().get(), request, &response);
  }
  template <typename Request, typename Response>
  grpc::Status call(grpc::Status (bv1::Broker::Stub::*method)(grpc::ClientContext*, const Request&,
                                                              Response*),
                    const Request& request, Response* response) {
    return (stub_.get()->*method)(context().get(), request, response);
  }
  bv1::Broker::Stub& stub() { return *stub_; }
  bv1::DescribeGroupResponse describe_group(const std::string& topic, const std::string& group) {
    bv1::DescribeGroupRequest request;
    request.set_topic(topic);
    request.set_group(group);
    bv1::DescribeGroupResponse response;
    auto status = stub_->DescribeGroup(context().get(), request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return response;
  }
  grpc::Status add_partitions(const std::string& topic, uint32_t partitions,
                              bv1::AddPartitionsResponse* response) {
    bv1::AddPartitionsRequest request;
    request.set_topic(topic);
    request.set_partitions(partitions);
    return stub_->AddPartitions(context().get(), request, response);
  }
  grpc::Status delete_topic(const std::string& topic) {
    bv1::DeleteTopicRequest request;
    request.set_topic(topic);
    bv1::DeleteTopicResponse response;
    return stub_->DeleteTopic(context().get(), request, &response);
  }

 private:
  std::unique_ptr<bv1::Broker::Stub> stub_;
};

// A Consume stream read on the test thread with a deadline, so it never hangs.
class Consumer {
 public:
  Consumer(Client& client, bv1::ConsumeRequest request, std::chrono::milliseconds deadline = 30s)
      : context_(context(deadline)) {
    reader_ = client.stub().Consume(context_.get(), request);
    bv1::ConsumeResponse first;
    if (reader_->Read(&first)) {
      member_ = first.member();
      take(first);
    }
  }
  ~Consumer() {
    if (finished_) return;
    context_->TryCancel();
    bv1::ConsumeResponse ignored;
    while (reader_->Read(&ignored)) {
    }
    reader_->Finish();
  }
  // Reads until `count` records arrived (or the stream ends); returns them.
  std::vector<bv1::ConsumedRecord> read(size_t count) {
    while (records_.size() < count) {
      bv1::ConsumeResponse response;
      if (!reader_->Read(&response)) break;
      take(response);
    }
    std::vector<bv1::ConsumedRecord> out;
    size_t take_count = std::min(count, records_.size());
    out.assign(records_.begin(), records_.begin() + static_cast<long>(take_count));
    records_.erase(records_.begin(), records_.begin() + static_cast<long>(take_count));
    return out;
  }
  // Reads until the latest assignment satisfies `done`.
  bool await_assignment(const std::function<bool(const std::vector<uint32_t>&)>& done) {
    while (!done(assignment_)) {
      bv1::ConsumeResponse response;
      if (!reader_->Read(&response)) return false;
      take(response);
    }
    return true;
  }
  grpc::Status finish() {
    bv1::ConsumeResponse response;
    while (reader_->Read(&response)) take(response);
    finished_ = true;
    return reader_->Finish();
  }
  void cancel() { context_->TryCancel(); }
  const std::string& member() const { return member_; }
  const std::vector<uint32_t>& assignment() const { return assignment_; }

 private:
  void take(const bv1::ConsumeResponse& response) {
    if (response.assigned_partitions_size() > 0 ||
        (!response.member().empty() && response.records_size() == 0)) {
      assignment_.assign(response.assigned_partitions().begin(),
                         response.assigned_partitions().end());
    }
    for (const auto& record : response.records()) records_.push_back(record);
  }
  std::unique_ptr<grpc::ClientContext> context_;
  std::unique_ptr<grpc::ClientReader<bv1::ConsumeResponse>> reader_;
  std::vector<bv1::ConsumedRecord> records_;
  std::vector<uint32_t> assignment_;
  std::string member_;
  bool finished_ = false;
};

inline bv1::ConsumeRequest consume_request(const std::string& topic, const std::string& group,
                                           bv1::GroupMode mode = bv1::GROUP_MODE_LOG) {
  bv1::ConsumeRequest request;
  request.set_topic(topic);
  request.set_group(group);
  request.set_mode(mode);
  return request;
}

inline std::map<std::string, std::string> headers_of(const bv1::ConsumedRecord& record) {
  std::map<std::string, std::string> out;
  for (const auto& header : record.headers()) out[header.key()] = header.value();
  return out;
}

}  // namespace telekern::testing
