// The floor under the proxy benchmark: a bare gRPC forwarder with no
// telekern code in it. It takes Broker.Produce calls with gRPC's async API and
// carries them to one broker over two ProduceStream lanes, batched as the
// proxy's lanes are (at most 2 messages unanswered per lane, at most 32
// produces or 256 KiB per message), everything on one thread. No placement, no metrics,
// no call gate; answers carry sequence 0.
//
// With --callback-service the same process also serves an idle service on
// gRPC's callback API, as every telekernd does (the kernel's own services and
// module hosting are built on it). gRPC 1.51 then runs its callback threads,
// which take part in polling, and the poller hand-offs between threads come
// back even though no call touches that service.
//
// Usage: telekern_grpc_forwarder UPSTREAM PORT_FILE [--callback-service]
// Listens on a free loopback port, writes it to PORT_FILE, serves until killed.
#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <deque>
#include <fstream>
#include <list>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "telekern/broker/v1/broker.pb.h"

namespace {

namespace bv1 = telekern::broker::v1;

constexpr char kProduce[] = "/telekern.broker.v1.Broker/Produce";
constexpr char kProduceStream[] = "/telekern.broker.v1.Broker/ProduceStream";
constexpr size_t kLanes = 2;
constexpr size_t kWindow = 2;
constexpr size_t kMaxBatch = 32;
constexpr size_t kMaxBatchBytes = 256 * 1024;

// A completion's tag: calls `step` of its owner with the completion's ok.
struct Op {
  virtual void done(bool ok) = 0;

 protected:
  ~Op() = default;
};

template <typename Owner>
struct Step final : Op {
  Step(Owner* owner, void (Owner::*step)(bool)) : owner(owner), step(step) {}
  void done(bool ok) override { (owner->*step)(ok); }
  Owner* owner;
  void (Owner::*step)(bool);
};

// A varint field: its tag byte, then `value`.
grpc::Slice varint_field(char tag, uint64_t value) {
  char bytes[11] = {tag};
  size_t length = 1;
  do {
    char low = static_cast<char>(value & 0x7f);
    value >>= 7;
    bytes[length++] = static_cast<char>(low | (value ? 0x80 : 0));
  } while (value);
  return grpc::Slice(bytes, length);
}

class Forwarder;

// One Broker.Produce call from a client: read, forwarded on a lane, answered.
class Call {
 public:
  explicit Call(Forwarder& forwarder);
  void answer(bv1::ProduceResponse& response);
  void fail(const grpc::Status& status);

  std::list<std::unique_ptr<Call>>::iterator self;

 private:
  void accepted(bool ok);
  void read(bool ok);
  void finished(bool ok);

  Forwarder& forwarder_;
  grpc::GenericServerContext context_;
  grpc::GenericServerAsyncReaderWriter stream_{&context_};
  grpc::ByteBuffer request_, response_;
  Step<Call> accepted_{this, &Call::accepted}, read_{this, &Call::read},
      finished_{this, &Call::finished};
};

// One ProduceStream to the broker, its writes one at a time.
class Lane {
 public:
  Lane(grpc::GenericStub& stub, grpc::CompletionQueue& queue);
  void send(Call* call, const grpc::ByteBuffer& request);

 private:
  struct Queued {
    std::vector<grpc::Slice> slices;
    size_t bytes = 0;
  };
  bool can_write() const {
    return started_ && !writing_ && !queued_.empty() && (!batches_ || unanswered_ < kWindow);
  }
  void write();
  void started(bool ok);
  void wrote(bool ok);
  void read(bool ok);

  grpc::ClientContext context_;
  std::unique_ptr<grpc::GenericClientAsyncReaderWriter> stream_;
  grpc::ByteBuffer in_, out_;
  bool started_ = false, writing_ = false, batches_ = false;
  size_t unanswered_ = 0;
  uint64_t next_sequence_ = 0;
  std::deque<Queued> queued_;
  std::map<uint64_t, Call*> pending_;
  Step<Lane> started_step_{this, &Lane::started}, wrote_{this, &Lane::wrote},
      read_{this, &Lane::read};
};

class Forwarder {
 public:
  Forwarder(grpc::AsyncGenericService& service, grpc::ServerCompletionQueue& queue,
            grpc::GenericStub& stub)
      : service_(service), queue_(queue) {
    for (size_t i = 0; i < kLanes; ++i) lanes_.push_back(std::make_unique<Lane>(stub, queue));
    accept();
  }

  void run() {
    void* tag = nullptr;
    bool ok = false;
    while (queue_.Next(&tag, &ok)) static_cast<Op*>(tag)->done(ok);
  }

  // A new call waits for the next client.
  void accept() {
    calls_.push_front(std::make_unique<Call>(*this));
    calls_.front()->self = calls_.begin();
  }
  void erase(Call& call) { calls_.erase(call.self); }
  Lane& next_lane() { return *lanes_[next_lane_++ % lanes_.size()]; }
  grpc::AsyncGenericService& service() { return service_; }
  grpc::ServerCompletionQueue& queue() { return queue_; }

 private:
  grpc::AsyncGenericService& service_;
  grpc::ServerCompletionQueue& queue_;
  std::list<std::unique_ptr<Call>> calls_;
  std::vector<std::unique_ptr<Lane>> lanes_;
  size_t next_lane_ = 0;
};

Call::Call(Forwarder& forwarder) : forwarder_(forwarder) {
  forwarder_.service().RequestCall(&context_, &stream_, &forwarder_.queue(), &forwarder_.queue(),
                                   &accepted_);
}

void Call::accepted(bool ok) {
  if (!ok) return forwarder_.erase(*this);  // shutting down
  forwarder_.accept();
  stream_.Read(&request_, &read_);
}

void Call::read(bool ok) {
  if (!ok) return fail(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "no request"));
  if (context_.method() != kProduce) {
    return fail(
        grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "this forwarder serves Produce only"));
  }
  forwarder_.next_lane().send(this, request_);
}

void Call::answer(bv1::ProduceResponse& response) {
  if (response.error_code() != 0) {
    return fail(grpc::Status(static_cast<grpc::StatusCode>(response.error_code()),
                             response.error_message()));
  }
  response.clear_sequence();
  response.clear_accepts_batch();
  grpc::Slice bytes(response.SerializeAsString());
  response_ = grpc::ByteBuffer(&bytes, 1);
  stream_.WriteAndFinish(response_, grpc::WriteOptions(), grpc::Status::OK, &finished_);
}

void Call::fail(const grpc::Status& status) { stream_.Finish(status, &finished_); }

void Call::finished(bool) { forwarder_.erase(*this); }

Lane::Lane(grpc::GenericStub& stub, grpc::CompletionQueue& queue) {
  stream_ = stub.PrepareCall(&context_, kProduceStream, &queue);
  stream_->StartCall(&started_step_);
}

void Lane::send(Call* call, const grpc::ByteBuffer& request) {
  Queued queued;
  if (!request.Dump(&queued.slices).ok()) {
    return call->fail(grpc::Status(grpc::StatusCode::INTERNAL, "unreadable request"));
  }
  uint64_t sequence = ++next_sequence_;
  queued.slices.push_back(varint_field(0x28, sequence));  // field 5: sequence
  for (const auto& slice : queued.slices) queued.bytes += slice.size();
  pending_.emplace(sequence, call);
  queued_.push_back(std::move(queued));
  if (can_write()) write();
}

void Lane::write() {
  writing_ = true;
  ++unanswered_;
  size_t count = 1, bytes = queued_.front().bytes;
  while (batches_ && count < queued_.size() && count < kMaxBatch &&
         bytes + queued_[count].bytes <= kMaxBatchBytes) {
    bytes += queued_[count++].bytes;
  }
  std::vector<grpc::Slice> parts;
  for (size_t i = 0; i < count; ++i) {
    auto& queued = queued_.front();
    // In a batch, field 9 each: a tag and a length, then the request.
    if (count > 1) parts.push_back(varint_field(0x4a, queued.bytes));
    for (auto& slice : queued.slices) parts.push_back(std::move(slice));
    queued_.pop_front();
  }
  out_ = grpc::ByteBuffer(parts.data(), parts.size());
  stream_->Write(out_, &wrote_);
}

void Lane::started(bool ok) {
  if (!ok) {
    std::fprintf(stderr, "cannot open ProduceStream to the broker\n");
    std::exit(1);
  }
  started_ = true;
  stream_->Read(&in_, &read_);
  if (can_write()) write();
}

void Lane::wrote(bool ok) {
  writing_ = false;
  if (ok && can_write()) write();
}

void Lane::read(bool ok) {
  if (!ok) {
    std::fprintf(stderr, "ProduceStream to the broker ended\n");
    std::exit(1);
  }
  grpc::Slice bytes;
  bv1::ProduceResponse answer;
  if (!in_.DumpToSingleSlice(&bytes).ok() ||
      !answer.ParseFromArray(bytes.begin(), static_cast<int>(bytes.size()))) {
    std::fprintf(stderr, "unreadable ProduceStream answer\n");
    std::exit(1);
  }
  batches_ = batches_ || answer.accepts_batch();
  if (unanswered_ > 0) --unanswered_;
  auto take = [this](bv1::ProduceResponse& one) {
    auto found = pending_.find(one.sequence());
    if (found == pending_.end()) return;
    Call* call = found->second;
    pending_.erase(found);
    call->answer(one);
  };
  if (answer.batch_size() == 0) take(answer);
  for (auto& one : *answer.mutable_batch()) take(one);
  stream_->Read(&in_, &read_);
  if (can_write()) write();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3 || (argc == 4 && std::strcmp(argv[3], "--callback-service") != 0) || argc > 4) {
    std::fprintf(stderr, "usage: %s UPSTREAM PORT_FILE [--callback-service]\n", argv[0]);
    return 2;
  }
  grpc::GenericStub stub(grpc::CreateChannel(argv[1], grpc::InsecureChannelCredentials()));
  grpc::AsyncGenericService service;
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.RegisterAsyncGenericService(&service);
  auto queue = builder.AddCompletionQueue();
  auto server = builder.BuildAndStart();
  if (!server || port == 0) {
    std::fprintf(stderr, "cannot listen on 127.0.0.1\n");
    return 1;
  }
  std::unique_ptr<grpc::Server> idle;
  // Answers every call UNIMPLEMENTED; only its presence matters (see above).
  grpc::CallbackGenericService idle_service;
  if (argc == 4) {  // a second server, so the async generic service stays the first's only one
    grpc::ServerBuilder idle_builder;
    int idle_port = 0;
    idle_builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &idle_port);
    idle_builder.RegisterCallbackGenericService(&idle_service);
    idle = idle_builder.BuildAndStart();
  }
  std::ofstream(argv[2]) << port << "\n";
  Forwarder forwarder(service, *queue, stub);
  forwarder.run();
  return 0;
}
