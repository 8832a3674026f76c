#include "consume_fanout.h"

#include <grpcpp/client_context.h>
#include <grpcpp/support/client_callback.h>

#include <deque>
#include <mutex>

#include "telekern/strings.h"

namespace telekern::proxy {

using broker::v1::ConsumeRequest;
using broker::v1::ConsumeResponse;

namespace {
constexpr size_t kQueuedMessages = 16;
}  // namespace

// What the readers and the client's side share: the queue and how the
// upstream streams ended.
struct ConsumeFanout::Feed {
  std::function<void()> wake;
  std::mutex mutex;
  std::deque<std::pair<size_t, ConsumeResponse>> queue;  // (reader, message)
  size_t open = 0;
  bool closing = false;
  std::optional<size_t> failed;  // a reader whose upstream ended its stream with an error
  std::vector<size_t> paused;    // readers waiting for room in the queue
};

// One upstream's Consume, read by callbacks on gRPC's threads. It owns
// itself from start() to OnDone (the call's last callback) and is tracked by
// the engine, which cancels it and waits for it on shutdown.
class ConsumeFanout::Reader final : public grpc::ClientReadReactor<ConsumeResponse>,
                                    public UpstreamStream {
 public:
  Reader(ProxyEngine& engine, std::shared_ptr<Feed> feed, size_t index,
         std::shared_ptr<Upstream> upstream, std::set<uint32_t> partitions)
      : engine_(engine),
        feed_(std::move(feed)),
        index_(index),
        upstream_(std::move(upstream)),
        partitions_(std::move(partitions)) {}

  void start(std::shared_ptr<Reader> self, const ConsumeRequest& request) {
    self_ = self;
    tracked_ = engine_.track(self);
    if (tracked_ == 0) context_.TryCancel();  // the engine is stopping: end at once
    connection_ = engine_.connection(upstream_->address);
    upstream_->in_flight.fetch_add(1);
    upstream_->calls.fetch_add(1);
    connection_->broker->async()->Consume(&context_, &request, this);
    StartRead(&message_);
    StartCall();
  }

  void OnReadDone(bool ok) override {
    if (!ok) return;  // the stream ended: OnDone follows
    bool read_more = false;
    {
      std::lock_guard lock(feed_->mutex);
      if (feed_->closing) return;
      feed_->queue.emplace_back(index_, std::move(message_));
      if (feed_->queue.size() < kQueuedMessages) {
        read_more = true;
      } else {
        feed_->paused.push_back(index_);
      }
    }
    message_ = ConsumeResponse();
    feed_->wake();
    if (read_more) StartRead(&message_);
  }

  void OnDone(const grpc::Status& status) override {
    upstream_->in_flight.fetch_sub(1);
    {
      std::lock_guard lock(feed_->mutex);
      status_ = status;
      --feed_->open;
      if (!status.ok() && !feed_->closing && !feed_->failed) feed_->failed = index_;
    }
    feed_->wake();
    engine_.untrack(tracked_);
    self_.reset();  // the last touch: may delete this reader
  }

  void resume() { StartRead(&message_); }
  void cancel() override { context_.TryCancel(); }
  void placement_changed() override { feed_->wake(); }

  const std::shared_ptr<Upstream>& upstream() const { return upstream_; }
  const std::set<uint32_t>& partitions() const { return partitions_; }
  // Valid once the reader ended (under the feed's mutex).
  const grpc::Status& status() const { return status_; }

 private:
  ProxyEngine& engine_;  // waits in shutdown() for every tracked reader
  std::shared_ptr<Feed> feed_;
  const size_t index_;
  std::shared_ptr<Upstream> upstream_;
  const std::set<uint32_t> partitions_;
  std::shared_ptr<Connection> connection_;
  grpc::ClientContext context_;
  ConsumeResponse message_;
  grpc::Status status_;
  uint64_t tracked_ = 0;
  std::shared_ptr<Reader> self_;
};

ConsumeFanout::ConsumeFanout(ProxyEngine& engine, ConsumeRequest request,
                             std::function<void()> wake)
    : engine_(engine), request_(std::move(request)), feed_(std::make_shared<Feed>()) {
  feed_->wake = std::move(wake);
}

void ConsumeFanout::open() {
  auto submitted = engine_.submit([weak = weak_from_this()] {
    if (auto fanout = weak.lock()) fanout->open_now();
  });
  if (submitted.ok()) return;
  std::lock_guard lock(feed_->mutex);
  failed_to_open_ = submitted;
  opened_ = true;
}

void ConsumeFanout::open_now() {
  auto opened = [&](std::optional<absl::Status> failure) {
    {
      std::lock_guard lock(feed_->mutex);
      failed_to_open_ = std::move(failure);
      opened_ = true;
    }
    feed_->wake();
  };
  if (request_.topic().empty())
    return opened(absl::InvalidArgumentError("consume needs a topic; give ConsumeRequest.topic"));
  partitions_ = engine_.partitions_of(request_.topic());
  epoch_ = engine_.epoch();
  auto placed = engine_.owners(request_.topic(), partitions_);
  if (!placed.ok()) return opened(placed.status());
  std::set<std::string> owners;
  for (auto& [address, owned] : *placed) {
    placed_[address] = owned.second;
    owners.insert(address);
    readers_.push_back(
        std::make_shared<Reader>(engine_, feed_, readers_.size(), owned.first, owned.second));
  }
  // Records written while an owner was down stay on the upstream that took
  // them, which may own none of the topic's partitions now: read those too.
  for (auto& holder : engine_.holders(request_.topic(), owners)) {
    readers_.push_back(
        std::make_shared<Reader>(engine_, feed_, readers_.size(), holder, std::set<uint32_t>{}));
  }
  {
    std::lock_guard lock(feed_->mutex);
    feed_->open = readers_.size();
  }
  for (auto& reader : readers_) reader->start(reader, request_);
  opened(std::nullopt);
}

ConsumeFanout::~ConsumeFanout() {
  {
    std::lock_guard lock(feed_->mutex);
    feed_->closing = true;
  }
  for (auto& reader : readers_) reader->cancel();
}

bool ConsumeFanout::owners_changed() {
  auto now = engine_.owners(request_.topic(), partitions_);
  if (!now.ok() || now->size() != placed_.size()) return true;
  for (const auto& [address, owned] : *now) {
    auto it = placed_.find(address);
    if (it == placed_.end() || it->second != owned.second) return true;
  }
  return false;
}

ConsumeFanout::Next ConsumeFanout::next() {
  {
    std::lock_guard lock(feed_->mutex);
    if (!opened_) return {};  // open_now() wakes the stream when done
  }
  if (failed_to_open_) return {std::nullopt, *failed_to_open_};
  if (finished_) return {std::nullopt, absl::OkStatus()};
  std::pair<size_t, ConsumeResponse> item;
  bool got = false;
  std::vector<size_t> resume;
  {
    std::lock_guard lock(feed_->mutex);
    if (feed_->failed && feed_->queue.empty()) {
      // One upstream's part of the topic is gone (e.g. it died): end the
      // whole stream so the client reconnects to the current owners rather
      // than silently reading only the rest.
      const Reader& failed = *readers_[*feed_->failed];
      return {std::nullopt,
              absl::Status(static_cast<absl::StatusCode>(failed.status().error_code()),
                           str_cat("upstream ", failed.upstream()->address, ": ",
                                   failed.status().error_message(), "; reconnect"))};
    }
    if (feed_->queue.empty()) {
      if (feed_->open == 0) {
        for (const auto& reader : readers_) {
          if (reader->status().ok()) continue;
          return {std::nullopt,
                  absl::Status(static_cast<absl::StatusCode>(reader->status().error_code()),
                               str_cat("upstream ", reader->upstream()->address, ": ",
                                       reader->status().error_message()))};
        }
        return {std::nullopt, absl::OkStatus()};
      }
    } else {
      item = std::move(feed_->queue.front());
      feed_->queue.pop_front();
      got = true;
      if (feed_->queue.size() < kQueuedMessages) resume.swap(feed_->paused);
    }
  }
  for (size_t index : resume) readers_[index]->resume();
  if (!got) {
    // Nothing queued: has the placement changed under this stream?
    uint64_t epoch = engine_.epoch();
    if (epoch == epoch_) return {};
    if (owners_changed())
      return {std::nullopt,
              absl::UnavailableError(str_cat(
                  "the upstreams serving topic '", request_.topic(),
                  "' changed (failover, failback or membership); reconnect to consume from them"))};
    epoch_ = epoch;
    return {};
  }
  auto& [index, message] = item;
  // One member name (the first upstream's) and the union of what each
  // upstream assigned among the partitions it serves.
  if (!first_) message.clear_member();
  first_ = false;
  if (message.assigned_partitions_size() > 0) {
    std::set<uint32_t> mine;
    for (uint32_t p : message.assigned_partitions()) {
      if (readers_[index]->partitions().count(p)) mine.insert(p);
    }
    assigned_[index] = std::move(mine);
    message.clear_assigned_partitions();
    for (const auto& [_, owned] : assigned_) {
      for (uint32_t p : owned) message.add_assigned_partitions(p);
    }
  }
  delivered_ += message.records_size();
  if (request_.max() > 0 && delivered_ >= request_.max()) finished_ = true;
  return {std::move(message), std::nullopt};
}

}  // namespace telekern::proxy
