// One broker Consume stream held open by a gRPC callback reactor, so tests
// and benchmarks can hold thousands of streams without a client thread each.
// `on_response` runs on a gRPC thread for every response; `on_done` once,
// when the call ends (before wait() returns).
#pragma once

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <utility>

#include "telekern/broker/v1/broker.grpc.pb.h"

namespace telekern::testing {

class ConsumeStreamReader final
    : public grpc::ClientReadReactor<telekern::broker::v1::ConsumeResponse> {
 public:
  using OnResponse = std::function<void(const telekern::broker::v1::ConsumeResponse&)>;
  using Finished = std::function<void(const grpc::Status&)>;

  ConsumeStreamReader(telekern::broker::v1::Broker::Stub& stub,
                      const telekern::broker::v1::ConsumeRequest& request, OnResponse on_response,
                      Finished on_done = {})
      : on_response_(std::move(on_response)), on_done_(std::move(on_done)) {
    stub.async()->Consume(&context_, &request, this);
    StartRead(&response_);
    StartCall();
  }

  void OnReadDone(bool ok) override {
    if (!ok) return;
    if (on_response_) on_response_(response_);
    StartRead(&response_);
  }
  void OnDone(const grpc::Status& status) override {
    if (on_done_) on_done_(status);
    std::lock_guard lock(mutex_);
    status_ = status;
    done_ = true;
    changed_.notify_all();
  }

  void cancel() { context_.TryCancel(); }
  // The call's status, once it ended.
  grpc::Status wait() {
    std::unique_lock lock(mutex_);
    changed_.wait(lock, [&] { return done_; });
    return status_;
  }

 private:
  grpc::ClientContext context_;
  telekern::broker::v1::ConsumeResponse response_;
  OnResponse on_response_;
  Finished on_done_;
  std::mutex mutex_;
  std::condition_variable changed_;
  grpc::Status status_;
  bool done_ = false;
};

// A reader that adds the records it receives to `records`.
inline std::unique_ptr<ConsumeStreamReader> counting_reader(
    telekern::broker::v1::Broker::Stub& stub, const telekern::broker::v1::ConsumeRequest& request,
    std::atomic<uint64_t>& records, ConsumeStreamReader::Finished on_done = {}) {
  return std::make_unique<ConsumeStreamReader>(
      stub, request,
      [&records](const telekern::broker::v1::ConsumeResponse& response) {
        records += static_cast<uint64_t>(response.records_size());
      },
      std::move(on_done));
}

}  // namespace telekern::testing
