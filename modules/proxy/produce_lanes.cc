#include "produce_lanes.h"

#include <grpcpp/client_context.h>
#include <grpcpp/support/client_callback.h>

#include <deque>
#include <map>

#include "proxy_engine.h"
#include "telekern/broker/v1/broker.pb.h"
#include "telekern/strings.h"

namespace telekern::proxy {
namespace {

namespace bv1 = telekern::broker::v1;

constexpr char kProduceMethod[] = "/telekern.broker.v1.Broker/Produce";
constexpr char kProduceStreamMethod[] = "/telekern.broker.v1.Broker/ProduceStream";

// Field 8 (grow_partitions), varint, true: appended to every forwarded
// produce, it wins over any earlier value.
constexpr char kGrowPartitions[] = {0x40, 0x01};

// Field 9 (batch), length-delimited: the tag of one request in a batch message.
constexpr char kBatchTag = 0x4a;
// A batch message carries at most this many requests and bytes (a request
// larger than that goes alone), so it stays a quick append for the broker
// and well under gRPC's 4 MiB message limit.
constexpr size_t kMaxBatchRequests = 32;
constexpr size_t kMaxBatchBytes = 256 * 1024;

size_t put_varint(char* out, uint64_t value) {
  size_t size = 0;
  do {
    auto byte = static_cast<char>(value & 0x7f);
    value >>= 7;
    out[size++] = static_cast<char>(byte | (value ? 0x80 : 0));
  } while (value);
  return size;
}

// grow_partitions = true and field 5 (sequence, varint) = `sequence`.
grpc::Slice sequence_trailer(uint64_t sequence) {
  char fields[2 + 1 + 10] = {kGrowPartitions[0], kGrowPartitions[1], 0x28};  // 0x28: field 5
  size_t size = 3 + put_varint(fields + 3, sequence);
  return grpc::Slice(fields, size);
}

bool parse(const grpc::ByteBuffer& bytes, google::protobuf::Message* message) {
  grpc::Slice slice;
  if (!bytes.TrySingleSlice(&slice).ok() && !bytes.DumpToSingleSlice(&slice).ok()) return false;
  return message->ParseFromArray(slice.begin(), static_cast<int>(slice.size()));
}

void put(const google::protobuf::Message& message, grpc::ByteBuffer* bytes) {
  grpc::Slice slice(message.ByteSizeLong());
  message.SerializeWithCachedSizesToArray(const_cast<uint8_t*>(slice.begin()));
  *bytes = grpc::ByteBuffer(&slice, 1);
}

}  // namespace

grpc::ByteBuffer with_trailer(std::vector<grpc::Slice>& slices, std::string_view trailer) {
  slices.emplace_back(trailer.data(), trailer.size());
  grpc::ByteBuffer message(slices.data(), slices.size());  // references the slices
  slices.pop_back();
  return message;
}

// One ProduceStream to the upstream. It owns itself from open() to OnDone
// (the call's last callback) and is tracked by the engine, which cancels it
// and waits for it on shutdown. Writes go one at a time (gRPC allows one
// outstanding write per stream); produces queue behind the one in flight.
class ProduceLanes::Lane final : public grpc::ClientBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>,
                                 public UpstreamStream {
 public:
  explicit Lane(std::shared_ptr<Shared> shared) : shared_(std::move(shared)) {}

  // False when the engine is stopping: nothing was started.
  bool open(const std::shared_ptr<Lane>& self) {
    tracked_ = shared_->engine.track(self);
    if (tracked_ == 0) return false;
    self_ = self;
    shared_->stub.PrepareBidiStreamingCall(&context_, kProduceStreamMethod, grpc::StubOptions(),
                                           this);
    // Writes start from the threads calling send(), outside this lane's
    // reactions: the hold keeps OnDone back until no send() can start one.
    AddHold();
    StartRead(&in_);
    StartCall();
    return true;
  }

  // False when this lane has ended: the produce is still the caller's.
  bool send(LaneProduce& produce) {
    std::unique_lock lock(mutex_);
    if (ended_) return false;
    if (!pending_.empty() && pending_.begin()->second.deadline < std::chrono::system_clock::now()) {
      // The upstream has not answered a produce past its deadline: stop
      // waiting on this lane (its pending produces fail; the next opens a new one).
      lock.unlock();
      context_.TryCancel();
      return false;
    }
    uint64_t sequence = ++next_sequence_;
    // The slices are referenced twice: the produce keeps them, as an upstream
    // without ProduceStream (UNIMPLEMENTED) gets written ones again as unary calls.
    Queued queued{sequence, produce.request, 0};
    queued.slices.push_back(sequence_trailer(sequence));
    for (const auto& slice : queued.slices) queued.bytes += slice.size();
    pending_.emplace(sequence, std::move(produce));
    queued_.push_back(std::move(queued));
    // Otherwise it goes with the next message (see can_write_locked).
    if (!can_write_locked()) return true;
    take_message_locked();
    ++starting_;
    lock.unlock();
    StartWrite(&out_);
    lock.lock();
    if (--starting_ == 0 && ended_) release_hold(lock);
    return true;
  }

  bool ended() {
    std::lock_guard lock(mutex_);
    return ended_;
  }

  void OnWriteDone(bool ok) override {
    std::unique_lock lock(mutex_);
    writing_ = false;
    if (!ok || !can_write_locked()) return;  // on !ok the stream is broken: OnDone follows
    take_message_locked();
    lock.unlock();
    StartWrite(&out_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      // The stream ended: no more sends; OnDone follows once the hold is gone.
      std::unique_lock lock(mutex_);
      ended_ = true;
      if (starting_ == 0) release_hold(lock);
      return;
    }
    bv1::ProduceResponse answer;
    bool parsed = parse(in_, &answer);
    std::vector<std::pair<LaneProduce, bv1::ProduceResponse*>> answered;
    bool write = false;
    {
      std::lock_guard lock(mutex_);
      if (parsed && answer.accepts_batch() && shared_->window > 0) batches_ = true;
      if (unanswered_messages_ > 0) --unanswered_messages_;
      auto take = [&](bv1::ProduceResponse* one) {
        if (auto it = pending_.find(one->sequence()); it != pending_.end()) {
          answered.emplace_back(std::move(it->second), one);
          pending_.erase(it);
        }  // else not ours (cannot happen with a telekern broker)
      };
      if (parsed && answer.batch_size() == 0) take(&answer);
      if (parsed) {
        for (auto& one : *answer.mutable_batch()) take(&one);
      }
      if ((write = can_write_locked())) take_message_locked();
    }
    StartRead(&in_);
    if (write) StartWrite(&out_);
    for (auto& [produce, one] : answered) {
      if (one->error_code() != 0) {
        produce.done(
            grpc::Status(static_cast<grpc::StatusCode>(one->error_code()), one->error_message()));
        continue;
      }
      one->set_sequence(produce.client_sequence);
      one->clear_accepts_batch();
      put(*one, produce.response);
      produce.done(grpc::Status::OK);
    }
  }

  void OnDone(const grpc::Status& status) override {
    std::map<uint64_t, LaneProduce> pending;
    std::vector<LaneProduce> unsent;
    {
      std::lock_guard lock(mutex_);
      ended_ = true;
      for (auto& queued : queued_) {
        // Never written: safe to send again.
        unsent.push_back(std::move(pending_.at(queued.sequence)));
        pending_.erase(queued.sequence);
      }
      queued_.clear();
      pending.swap(pending_);
    }
    for (auto& produce : unsent) send_unary(shared_, std::move(produce));
    if (status.error_code() == grpc::StatusCode::UNIMPLEMENTED) {
      // An upstream without ProduceStream: none of these was written.
      shared_->streams_unsupported = true;
      for (auto& [_, produce] : pending) send_unary(shared_, std::move(produce));
    } else {
      auto reason =
          str_cat("produce stream ended (", status.ok() ? "closed" : status.error_message(), ")");
      for (auto& [_, produce] : pending) {
        produce.done(grpc::Status(grpc::StatusCode::UNAVAILABLE, reason));
      }
    }
    shared_->engine.untrack(tracked_);
    self_.reset();  // the last touch: may delete this lane
  }

  void cancel() override { context_.TryCancel(); }
  void placement_changed() override {}

 private:
  // Once, when the stream has ended and no send() is starting a write.
  void release_hold(std::unique_lock<std::mutex>& lock) {
    if (hold_released_) return;
    hold_released_ = true;
    lock.unlock();
    RemoveHold();
    lock.lock();
  }

  // One queued request: the client's slices and this lane's trailer.
  struct Queued {
    uint64_t sequence = 0;
    std::vector<grpc::Slice> slices;
    size_t bytes = 0;
  };

  // Whether the next message may be written now. Without batches (a broker
  // that does not take them) requests are pipelined, one write at a time.
  // With them, at most `window` messages wait for their answers:
  // requests arriving meanwhile queue and go together in the next message.
  // An idle lane writes at once; a busy one sends fewer, larger messages,
  // and each message saved is a read and a write less for the proxy and the
  // broker.
  bool can_write_locked() const {
    if (writing_ || queued_.empty()) return false;
    return !batches_ || unanswered_messages_ < shared_->window;
  }

  // Moves the next message into out_ and marks the lane writing: the oldest
  // queued request alone, or, once the broker said it takes batches, as many
  // queued requests as fit one batch message (field 9 each: a tag, a length,
  // the request).
  void take_message_locked() {
    writing_ = true;
    ++unanswered_messages_;
    size_t count = 1, bytes = queued_.front().bytes;
    if (batches_) {
      while (count < queued_.size() && count < kMaxBatchRequests &&
             bytes + queued_[count].bytes <= kMaxBatchBytes) {
        bytes += queued_[count++].bytes;
      }
    }
    if (auto* messages = shared_->counters.messages) messages->inc();
    if (auto* produces = shared_->counters.produces) produces->inc(static_cast<double>(count));
    if (count == 1) {
      out_ = grpc::ByteBuffer(queued_.front().slices.data(), queued_.front().slices.size());
      queued_.pop_front();
      return;
    }
    std::vector<grpc::Slice> parts;
    for (size_t i = 0; i < count; ++i) {
      auto& queued = queued_.front();
      char header[1 + 10] = {kBatchTag};
      parts.emplace_back(header, 1 + put_varint(header + 1, queued.bytes));
      for (auto& slice : queued.slices) parts.push_back(std::move(slice));
      queued_.pop_front();
    }
    out_ = grpc::ByteBuffer(parts.data(), parts.size());
  }

  std::shared_ptr<Shared> shared_;
  grpc::ClientContext context_;
  grpc::ByteBuffer in_;
  grpc::ByteBuffer out_;
  std::mutex mutex_;
  bool ended_ = false;
  bool writing_ = false;
  int starting_ = 0;  // send() calls between unlocking and StartWrite returning
  bool hold_released_ = false;
  uint64_t next_sequence_ = 0;
  bool batches_ = false;                     // the broker takes batch messages
  size_t unanswered_messages_ = 0;           // written (or being written), not yet answered
  std::deque<Queued> queued_;                // not yet written, the oldest first
  std::map<uint64_t, LaneProduce> pending_;  // by sequence: the oldest first
  uint64_t tracked_ = 0;
  std::shared_ptr<Lane> self_;
};

ProduceLanes::ProduceLanes(ProxyEngine& engine, grpc::GenericStub& stub, size_t lanes,
                           size_t window, LaneCounters counters)
    : shared_(std::make_shared<Shared>(engine, stub, window, counters)), lanes_(lanes) {}

ProduceLanes::~ProduceLanes() = default;

void ProduceLanes::send(LaneProduce produce) {
  if (lanes_.empty() || shared_->streams_unsupported)
    return send_unary(shared_, std::move(produce));
  size_t index = next_.fetch_add(1, std::memory_order_relaxed) % lanes_.size();
  for (int attempt = 0; attempt < 2; ++attempt) {
    std::shared_ptr<Lane> lane;
    {
      std::lock_guard lock(mutex_);
      auto& slot = lanes_[index];
      if (!slot || slot->ended()) {
        slot = std::make_shared<Lane>(shared_);
        if (!slot->open(slot)) {
          slot.reset();
          break;  // the engine is stopping
        }
      }
      lane = slot;
    }
    if (lane->send(produce)) return;
  }
  send_unary(shared_, std::move(produce));
}

void ProduceLanes::send_unary(const std::shared_ptr<Shared>& shared, LaneProduce produce) {
  struct Call {
    grpc::ClientContext context;
    grpc::ByteBuffer request;
    ProduceDone done;
  };
  auto call = std::make_shared<Call>();
  call->request = with_trailer(produce.request, std::string_view(kGrowPartitions, 2));
  call->done = std::move(produce.done);
  call->context.set_deadline(produce.deadline);
  shared->stub.UnaryCall(&call->context, kProduceMethod, grpc::StubOptions(), &call->request,
                         produce.response,
                         [call](grpc::Status status) { call->done(std::move(status)); });
}

}  // namespace telekern::proxy
