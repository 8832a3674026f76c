// A bidi stream of pipelined requests: each request becomes a work item,
// items are processed one after another in arrival order by one drain task
// at a time on the engine's threads (so pipelining never reorders them), or,
// when `quick` says an item does not wait and nothing is queued before it,
// right on the gRPC thread that read it (no hand-off), and
// answers are written in completion order, one write at a time. Reading
// pauses while kMaxQueued items wait, so a fast client cannot queue without
// bound. The stream ends OK once the client half-closed and every item was
// answered.
#pragma once

#include <absl/status/status.h>
#include <grpcpp/support/server_callback.h>

#include <deque>
#include <functional>
#include <mutex>
#include <optional>

namespace telekern {

template <typename Request, typename Response, typename Item>
class PipelinedStream final : public grpc::ServerBidiReactor<Request, Response> {
 public:
  using Answer = std::function<void(Response)>;
  struct Handlers {
    // Turns a request into a work item (on a gRPC thread: translation only).
    std::function<Item(const Request&)> accept;
    // Processes an item on an engine thread; calls `answer` exactly once,
    // from any thread, possibly later (e.g. after an fsync).
    std::function<void(Item, Answer)> process;
    // The answer for an item no engine thread took (queue full, stopping).
    std::function<Response(const Item&, const absl::Status&)> refuse;
    // Runs work on an engine thread, or says why not.
    std::function<absl::Status(std::function<void()>)> submit;
    // Optional: true when processing `item` does not wait (no I/O beyond a
    // page-cache write), so it may run on the gRPC thread that read it.
    std::function<bool(const Item&)> quick;
  };
  static constexpr size_t kMaxQueued = 64;

  explicit PipelinedStream(Handlers handlers) : handlers_(std::move(handlers)) {
    reading_ = true;
    this->StartRead(&request_);
  }

  void OnReadDone(bool ok) override {
    bool finish = false;
    bool start_drain = false;
    bool read_more = false;
    std::optional<Item> here;  // processed on this thread
    // request_ is this read's alone until the next StartRead, so the item is
    // made (and judged quick) outside the lock: no engine lock nests in it.
    std::optional<Item> item;
    bool quick = false;
    if (ok) {
      item.emplace(handlers_.accept(request_));
      quick = handlers_.quick && handlers_.quick(*item);
    }
    {
      std::lock_guard lock(mutex_);
      reading_ = false;
      if (!ok) {
        reading_done_ = true;
        finish = should_finish_locked();
      } else {
        ++pending_;
        if (!draining_ && quick) {
          here.emplace(std::move(*item));  // nothing queued: arrival order holds
        } else {
          queue_.push_back(std::move(*item));
          start_drain = !draining_;
        }
        draining_ = true;
        read_more = queue_.size() < kMaxQueued;
        reading_ = read_more;
      }
    }
    if (finish) return this->Finish(grpc::Status::OK);
    if (here) {
      // Read the next request while this one is processed; it queues behind
      // this one (draining_ is set) and a drain takes over if any did.
      if (read_more) this->StartRead(&request_);
      handlers_.process(std::move(*here),
                        [this](Response response) { answer(std::move(response)); });
      {
        std::lock_guard lock(mutex_);
        if (queue_.empty()) {
          draining_ = false;
          finish = should_finish_locked();
        } else {
          start_drain = true;
        }
      }
      if (start_drain) {
        auto submitted = handlers_.submit([this] { drain(); });
        if (!submitted.ok()) refuse_queued(submitted);
      }
      if (finish) this->Finish(grpc::Status::OK);
      return;
    }
    if (start_drain) {
      auto submitted = handlers_.submit([this] { drain(); });
      if (!submitted.ok()) refuse_queued(submitted);
    }
    if (read_more) this->StartRead(&request_);
  }

  void OnWriteDone(bool ok) override {
    bool finish = false;
    {
      std::lock_guard lock(mutex_);
      outbox_.pop_front();
      if (!ok) broken_ = true;
      if (!outbox_.empty() && !broken_) {
        this->StartWrite(&outbox_.front());
      } else {
        writing_ = false;
        if (broken_) outbox_.clear();
        finish = should_finish_locked();
      }
    }
    if (finish) this->Finish(grpc::Status::OK);
  }

  void OnDone() override { delete this; }

 private:
  // Processes the queued items one after another on this engine thread.
  void drain() {
    bool finish = false;
    while (true) {
      bool resume_reading = false;
      std::optional<Item> next;
      {
        std::lock_guard lock(mutex_);
        if (queue_.empty()) {
          draining_ = false;
          finish = should_finish_locked();
          break;
        }
        next.emplace(std::move(queue_.front()));
        queue_.pop_front();
        if (!reading_ && !reading_done_ && queue_.size() < kMaxQueued)
          resume_reading = reading_ = true;
      }
      if (resume_reading) this->StartRead(&request_);
      handlers_.process(std::move(*next),
                        [this](Response response) { answer(std::move(response)); });
    }
    if (finish) this->Finish(grpc::Status::OK);
  }

  // No engine thread took the drain: every queued item is refused with `status`.
  void refuse_queued(const absl::Status& status) {
    std::deque<Item> refused;
    {
      std::lock_guard lock(mutex_);
      refused.swap(queue_);
      draining_ = false;
    }
    for (const auto& item : refused) answer(handlers_.refuse(item, status));
  }

  void answer(Response response) {
    bool finish = false;
    {
      std::lock_guard lock(mutex_);
      --pending_;
      if (!broken_) {
        outbox_.push_back(std::move(response));
        if (!writing_) {
          writing_ = true;
          this->StartWrite(&outbox_.front());
        }
      }
      finish = should_finish_locked();
    }
    // Finish is the last touch: OnDone may delete this as soon as it is called.
    if (finish) this->Finish(grpc::Status::OK);
  }

  bool should_finish_locked() {
    if (!reading_done_ || pending_ > 0 || writing_ || draining_ || finished_) return false;
    finished_ = true;
    return true;
  }

  Handlers handlers_;
  Request request_;
  std::mutex mutex_;
  std::deque<Item> queue_;
  std::deque<Response> outbox_;
  size_t pending_ = 0;  // read, not yet answered
  bool reading_ = false;
  bool draining_ = false;
  bool writing_ = false;
  bool reading_done_ = false;
  bool broken_ = false;
  bool finished_ = false;
};

}  // namespace telekern
