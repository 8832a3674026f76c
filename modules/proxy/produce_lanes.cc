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

// `request` with grow_partitions = true and field 5 (sequence, varint) =
// `sequence` appended.
grpc::ByteBuffer with_sequence(std::vector<grpc::Slice>& request, uint64_t sequence) {
  char fields[2 + 11] = {kGrowPartitions[0], kGrowPartitions[1]};
  size_t size = 2;
  fields[size++] = 0x28;  // field 5, varint
  do {
    auto byte = static_cast<char>(sequence & 0x7f);
    sequence >>= 7;
    fields[size++] = static_cast<char>(byte | (sequence ? 0x80 : 0));
  } while (sequence);
  return with_trailer(request, std::string_view(fields, size));
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
    auto bytes = with_sequence(produce.request, sequence);
    pending_.emplace(sequence, std::move(produce));
    if (writing_) {
      queued_.emplace_back(sequence, std::move(bytes));
      return true;
    }
    writing_ = true;
    out_ = std::move(bytes);
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
    if (!ok || queued_.empty()) {
      writing_ = false;  // on !ok the stream is broken: OnDone follows
      return;
    }
    out_ = std::move(queued_.front().second);
    queued_.pop_front();
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
    std::optional<LaneProduce> produce;
    {
      std::lock_guard lock(mutex_);
      if (auto it = pending_.find(answer.sequence()); parsed && it != pending_.end()) {
        produce = std::move(it->second);
        pending_.erase(it);
      }
    }
    StartRead(&in_);
    if (!produce) return;  // not ours (cannot happen with a telekern broker)
    if (answer.error_code() != 0) {
      return produce->done(
          grpc::Status(static_cast<grpc::StatusCode>(answer.error_code()), answer.error_message()));
    }
    answer.set_sequence(produce->client_sequence);
    put(answer, produce->response);
    produce->done(grpc::Status::OK);
  }

  void OnDone(const grpc::Status& status) override {
    std::map<uint64_t, LaneProduce> pending;
    std::vector<LaneProduce> unsent;
    {
      std::lock_guard lock(mutex_);
      ended_ = true;
      for (auto& [sequence, _] : queued_) {
        // Never written: safe to send again.
        unsent.push_back(std::move(pending_.at(sequence)));
        pending_.erase(sequence);
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
  std::deque<std::pair<uint64_t, grpc::ByteBuffer>> queued_;  // sequence, bytes
  std::map<uint64_t, LaneProduce> pending_;                   // by sequence: the oldest first
  uint64_t tracked_ = 0;
  std::shared_ptr<Lane> self_;
};

ProduceLanes::ProduceLanes(ProxyEngine& engine, grpc::GenericStub& stub, size_t lanes)
    : shared_(std::make_shared<Shared>(engine, stub)), lanes_(lanes) {}

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
