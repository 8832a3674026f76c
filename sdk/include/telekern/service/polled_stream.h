// Server-streaming calls served without a thread each: the stream is a step
// function that a few shared threads (a StepScheduler) call whenever there
// may be something to send. A step writes one message, waits (until a time,
// or until the engine calls the waker it was handed), or ends the call. While
// a stream waits or its message is on the wire, it holds no thread, so ten
// thousand idle streams cost memory, not threads.
//
//   binding_.polled_stream<v1::ConsumeResponse>(context, [](Engine& engine) {
//     return [session = ...](const StepWaker& wake, std::stop_token stop) {
//       if (auto batch = session->poll()) return StreamStep<R>::write(to_proto(*batch));
//       session->notify_on_change(wake);
//       return StreamStep<R>::wait(Clock::now() + 200ms);
//     };
//   });
#pragma once

#include <absl/status/status.h>
#include <grpcpp/server_context.h>
#include <grpcpp/support/server_callback.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stop_token>
#include <thread>
#include <vector>

#include "telekern/service/inline_step_scope.h"
#include "telekern/service/stream_sessions.h"
#include "telekern/status.h"

namespace telekern {

// A few threads that run short pieces of work now or at a given time.
class StepScheduler {
 public:
  using Clock = std::chrono::steady_clock;
  explicit StepScheduler(size_t threads);
  ~StepScheduler();  // drops work not yet run and joins the threads
  StepScheduler(const StepScheduler&) = delete;
  StepScheduler& operator=(const StepScheduler&) = delete;

  void post(std::function<void()> work);
  void post_at(Clock::time_point when, std::function<void()> work);
  size_t threads() const { return threads_.size(); }
  // Work posted for a later time and not yet due.
  size_t timers() const;

 private:
  void run();

  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<std::function<void()>> ready_;
  std::multimap<Clock::time_point, std::function<void()>> timed_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

// Schedules the stream's next step early; callable from any thread, any
// number of times, also after the stream ended (it then does nothing).
using StepWaker = std::function<void()>;

// What one step did: sent a message, waits, or ended the call.
template <typename Response>
struct StreamStep {
  enum class Kind { kWrite, kWait, kDone };
  Kind kind = Kind::kDone;
  Response message;                             // kWrite
  std::chrono::steady_clock::time_point until;  // kWait: the next step by then at the latest
  absl::Status status;                          // kDone

  static StreamStep write(Response message) {
    StreamStep step;
    step.kind = Kind::kWrite;
    step.message = std::move(message);
    return step;
  }
  static StreamStep wait(std::chrono::steady_clock::time_point until) {
    StreamStep step;
    step.kind = Kind::kWait;
    step.until = until;
    return step;
  }
  static StreamStep done(absl::Status status) {
    StreamStep step;
    step.kind = Kind::kDone;
    step.status = std::move(status);
    return step;
  }
};

// One polled stream: the reactor gRPC sees and the state its steps run in.
// Steps of one stream never run concurrently; a step runs again right after
// its message was written, when woken, or when its wait ends.
template <typename Response>
class PolledStream final : public std::enable_shared_from_this<PolledStream<Response>> {
 public:
  // `stop` is requested when the client cancels or the service is stopping.
  using Step = std::function<StreamStep<Response>(const StepWaker& wake, std::stop_token stop)>;

  // The reactor for a server-streaming method served by `step` on
  // `scheduler`, registered with `sessions` (answers sessions.stopping()
  // when they no longer accept streams).
  static grpc::ServerWriteReactor<Response>* start(grpc::CallbackServerContext* context,
                                                   StreamSessions& sessions,
                                                   StepScheduler& scheduler, Step step) {
    auto stream = std::make_shared<PolledStream>(context, sessions, scheduler, std::move(step));
    auto* reactor = new Reactor(stream);  // deletes itself in OnDone
    stream->reactor_ = reactor;
    auto entry = sessions.enter([weak = std::weak_ptr<PolledStream>(stream)] {
      if (auto alive = weak.lock()) alive->cancel();
    });
    if (!entry) {
      stream->phase_ = Phase::kFinished;
      reactor->Finish(sessions.stopping());
      return reactor;
    }
    stream->id_ = entry->id;
    stream->service_token_ = entry->stop;
    stream->service_stop_.emplace(entry->stop, [weak = std::weak_ptr<PolledStream>(stream)] {
      if (auto alive = weak.lock()) {
        alive->stop_.request_stop();
        alive->schedule();
      }
    });
    stream->schedule();
    return reactor;
  }

  PolledStream(grpc::CallbackServerContext* context, StreamSessions& sessions,
               StepScheduler& scheduler, Step step)
      : context_(context), sessions_(sessions), scheduler_(scheduler), step_(std::move(step)) {}

 private:
  class Reactor final : public grpc::ServerWriteReactor<Response> {
   public:
    explicit Reactor(std::shared_ptr<PolledStream> stream) : stream_(std::move(stream)) {}
    void OnWriteDone(bool ok) override { stream_->on_write_done(ok); }
    void OnCancel() override { stream_->on_cancel(); }
    void OnDone() override { delete this; }

   private:
    std::shared_ptr<PolledStream> stream_;
  };

  enum class Phase { kWaiting, kScheduled, kRunning, kWriting, kFinished };

  // Runs a step soon, or right after the one running or writing now. A
  // thread with an InlineStepScope runs it itself, also when a step is
  // already posted but no step thread has taken it yet (whichever comes
  // first runs it; the other finds the phase moved on and does nothing).
  void schedule() {
    std::lock_guard lock(mutex_);
    if (phase_ == Phase::kWaiting || phase_ == Phase::kScheduled) {
      bool posted = phase_ == Phase::kScheduled;
      phase_ = Phase::kScheduled;
      std::function<void()> step = [self = this->shared_from_this()] { self->run_step(); };
      if (!InlineStepScope::take(step) && !posted) scheduler_.post(std::move(step));
    } else if (phase_ != Phase::kFinished) {
      woken_ = true;
    }
  }
  void post_step() {
    scheduler_.post([self = this->shared_from_this()] { self->run_step(); });
  }
  StepWaker waker() {
    return [weak = std::weak_ptr<PolledStream>(this->shared_from_this())] {
      if (auto alive = weak.lock()) alive->schedule();
    };
  }

  // A stream woken while its step ran runs again on this thread (a few
  // times at most, so one busy stream cannot hold a step thread), not after
  // another hand-off.
  static constexpr int kRerunsOnThisThread = 4;

  void run_step() {
    for (int rerun = 0;; ++rerun) {
      {
        std::lock_guard lock(mutex_);
        if (phase_ != Phase::kScheduled) return;  // finished, or run by an earlier post
        phase_ = Phase::kRunning;
        woken_ = false;
      }
      if (stop_.stop_requested()) {
        finish(absl::CancelledError("stream ended"));
        return;
      }
      auto step = step_(waker(), stop_.get_token());
      switch (step.kind) {
        case StreamStep<Response>::Kind::kWrite: {
          {
            std::lock_guard lock(mutex_);
            message_ = std::move(step.message);
            phase_ = Phase::kWriting;
          }
          reactor_->StartWrite(&message_);
          return;
        }
        case StreamStep<Response>::Kind::kWait: {
          std::lock_guard lock(mutex_);
          if (woken_ || stop_.stop_requested()) {
            phase_ = Phase::kScheduled;
            if (rerun < kRerunsOnThisThread) continue;
            post_step();
            return;
          }
          phase_ = Phase::kWaiting;
          wait_until_ = step.until;
          // One timer per stream: a stream that waits after every message
          // (a consumer at the head of a busy log) must not leave a timer
          // behind each time, each waking a step thread when it fires.
          if (!timer_at_ || *timer_at_ > step.until) post_timer(step.until);
          return;
        }
        case StreamStep<Response>::Kind::kDone:
          finish(step.status);
          return;
      }
    }
  }
  // Under mutex_.
  void post_timer(std::chrono::steady_clock::time_point at) {
    timer_at_ = at;
    scheduler_.post_at(at, [weak = std::weak_ptr<PolledStream>(this->shared_from_this()), at] {
      if (auto alive = weak.lock()) alive->on_timer(at);
    });
  }
  // A timer posted for `at` fired: the wait is over if it ends by now; a
  // wait that began later, for a later time, gets the timer again.
  void on_timer(std::chrono::steady_clock::time_point at) {
    std::lock_guard lock(mutex_);
    if (timer_at_ == at) timer_at_.reset();
    if (phase_ != Phase::kWaiting) return;  // its next wait posts a timer if none is left
    if (std::chrono::steady_clock::now() < wait_until_) {
      if (!timer_at_) post_timer(wait_until_);
      return;
    }
    phase_ = Phase::kScheduled;
    post_step();
  }
  void on_write_done(bool ok) {
    if (!ok) {
      finish(absl::CancelledError("client went away"));
      return;
    }
    std::lock_guard lock(mutex_);
    if (phase_ == Phase::kFinished) return;
    phase_ = Phase::kScheduled;  // there may be more to send at once
    post_step();
  }
  void on_cancel() {
    {
      std::lock_guard lock(mutex_);
      cancelled_by_client_ = !ending_;
    }
    stop_.request_stop();
    schedule();
  }
  // The service is stopping: end the stream now. The call (and its context)
  // may be gone once Finish was called, so TryCancel only before that.
  void cancel() {
    {
      std::lock_guard lock(mutex_);
      ending_ = true;
      if (phase_ != Phase::kFinished) context_->TryCancel();
    }
    on_cancel();
  }
  void finish(const absl::Status& status) {
    grpc::Status answer = to_grpc(status);
    {
      std::lock_guard lock(mutex_);
      if (phase_ == Phase::kFinished) return;
      phase_ = Phase::kFinished;
      if (cancelled_by_client_) {
        answer = grpc::Status(grpc::StatusCode::CANCELLED, "client went away");
      } else if (service_token_.stop_requested() && !status.ok()) {
        answer = sessions_.stopping();
      }
    }
    service_stop_.reset();
    step_ = nullptr;  // what the steps hold (a group membership...) goes before leave()
    sessions_.leave(id_);
    reactor_->Finish(answer);  // the last touch: OnDone may delete the reactor
  }

  grpc::CallbackServerContext* context_;
  StreamSessions& sessions_;
  StepScheduler& scheduler_;
  Step step_;
  grpc::ServerWriteReactor<Response>* reactor_ = nullptr;
  uint64_t id_ = 0;
  std::stop_token service_token_;  // requested by the sessions' end_all() and stop()
  std::stop_source stop_;          // the client cancelled or the service is stopping

  std::mutex mutex_;
  Phase phase_ = Phase::kWaiting;
  bool woken_ = false;
  std::chrono::steady_clock::time_point wait_until_;  // kWaiting: the step runs by then
  std::optional<std::chrono::steady_clock::time_point> timer_at_;  // the timer posted
  Response message_;                                               // the one on the wire
  bool cancelled_by_client_ = false;
  bool ending_ = false;
  std::optional<std::stop_callback<std::function<void()>>> service_stop_;
};

}  // namespace telekern
