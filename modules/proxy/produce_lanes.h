// Produces to one upstream carried over a few long-lived ProduceStream calls
// ("lanes") instead of one unary call each. A stream message costs the proxy
// and the broker a fraction of a unary call (no new HTTP/2 stream, metadata,
// call stack or completion per produce), which is most of what a second gRPC
// hop costs.
//
// Each request carries the proxy's own sequence number (a field appended to
// the client's bytes: protobuf keeps a field's last value) and its answer is
// matched by it; the answer's per-request error becomes the client's status
// and the client's own sequence goes back in the response. A lane that breaks
// fails its pending produces UNAVAILABLE, as a broken unary call would, and is
// not retried (the broker may have written them); the next produce opens a
// new lane. An upstream without ProduceStream (UNIMPLEMENTED) gets unary calls
// from then on, the pending produces included (none was written).
//
// A broker that answers with `accepts_batch` gets batches: a lane keeps at
// most `window` messages unanswered, and the produces that arrive meanwhile go
// together in the next one (ProduceRequest.batch), answered by one message.
// An idle lane still writes a produce at once; a busy one writes fewer,
// larger messages.
#pragma once

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/support/byte_buffer.h>
#include <grpcpp/support/slice.h>
#include <grpcpp/support/status.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "telekern/metrics.h"

namespace telekern::proxy {

class ProxyEngine;

// The message made of `slices` followed by `trailer` (more encoded fields:
// protobuf keeps a field's last value, so one there overrides an earlier
// one). The slices are referenced, not copied.
grpc::ByteBuffer with_trailer(std::vector<grpc::Slice>& slices, std::string_view trailer);

// Ends a forwarded produce: the status, and on OK the client's answer
// already written to the response it gave.
using ProduceDone = std::function<void(grpc::Status)>;

// One forwarded produce: the client's request bytes, its sequence (echoed
// back), where its answer goes (must outlive the produce) and its deadline.
struct LaneProduce {
  // The client's bytes (its slices, referenced); the lane or the unary call
  // appends grow_partitions (and the lane its own sequence).
  std::vector<grpc::Slice> request;
  uint64_t client_sequence = 0;
  grpc::ByteBuffer* response = nullptr;
  std::chrono::system_clock::time_point deadline;
  ProduceDone done;
};

// What the lanes to one upstream carried (either may be null).
struct LaneCounters {
  Counter* messages = nullptr;  // stream messages written
  Counter* produces = nullptr;  // produce requests in them
};

class ProduceLanes {
 public:
  // `lanes` streams at most (0: every produce is a unary call), each keeping
  // at most `window` batching messages unanswered (0: no batching); `stub`
  // (the upstream's generic stub) and the counters must outlive this.
  ProduceLanes(ProxyEngine& engine, grpc::GenericStub& stub, size_t lanes, size_t window,
               LaneCounters counters);
  ~ProduceLanes();
  ProduceLanes(const ProduceLanes&) = delete;
  ProduceLanes& operator=(const ProduceLanes&) = delete;

  void send(LaneProduce produce);

 private:
  class Lane;
  // What lanes share with their owner, kept alive by lanes still running.
  struct Shared {
    ProxyEngine& engine;
    grpc::GenericStub& stub;
    size_t window;
    LaneCounters counters;
    std::atomic<bool> streams_unsupported{false};
  };
  static void send_unary(const std::shared_ptr<Shared>& shared, LaneProduce produce);

  std::shared_ptr<Shared> shared_;
  std::mutex mutex_;
  std::vector<std::shared_ptr<Lane>> lanes_;  // null or ended: opened on next use
  std::atomic<uint64_t> next_{0};
};

}  // namespace telekern::proxy
