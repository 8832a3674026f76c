// Server-streaming calls served by a producing loop: each session runs its
// loop on a thread of the registry and writes through the call's reactor one
// message at a time. The reactor only forwards gRPC's events to the session,
// so the loop never touches a reactor gRPC has already destroyed. stop()
// cancels every session and waits for their loops.
#pragma once

#include <absl/status/status.h>
#include <grpcpp/server_context.h>
#include <grpcpp/support/server_callback.h>

#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include "telekern/status.h"

namespace telekern {

// The loop's side of one stream: blocking writes and the reason to stop.
template <typename Response>
class StreamWriter {
 public:
  virtual ~StreamWriter() = default;
  // Sends one message and waits until gRPC is done with it; false once the
  // client has gone (the loop should return).
  virtual bool write(const Response& response) = 0;
};

// Registry of the running sessions of one service. Not a template: threads
// and stop sources only.
class StreamSessions {
 public:
  explicit StreamSessions(std::string stopping_message);
  ~StreamSessions();
  StreamSessions(const StreamSessions&) = delete;
  StreamSessions& operator=(const StreamSessions&) = delete;

  // Runs `loop` on a thread of its own; false (without running it) once
  // stop() or end_all() was called. `cancel` cuts the call short (stop()).
  bool spawn(std::function<void(std::stop_token)> loop, std::function<void()> cancel);
  // Registers a session served without a thread of its own (a polled
  // stream): its id, to leave() with once it has finished, and the token
  // end_all() and stop() request; nullopt once stopping. stop() calls
  // `cancel` and waits for leave().
  struct Entry {
    uint64_t id;
    std::stop_token stop;
  };
  std::optional<Entry> enter(std::function<void()> cancel);
  void leave(uint64_t id);
  // Asks every session's loop to end (they answer UNAVAILABLE) and refuses
  // new sessions, without waiting: the module was asked to stop.
  void end_all();
  // Allows sessions again after end_all()/stop() (a re-attached engine).
  void reopen();
  // end_all(), cancels every call still open, then waits until every
  // session's loop returned. Idempotent.
  void stop();
  // UNAVAILABLE "<module> is stopping; retry": the answer while stopping.
  grpc::Status stopping() const { return grpc::Status(grpc::StatusCode::UNAVAILABLE, message_); }
  bool ending() const;
  size_t active() const;

 private:
  struct Session {
    std::function<void()> cancel;
    std::thread thread;
  };
  void finished(uint64_t id);

  std::string message_;
  mutable std::mutex mutex_;
  std::stop_source stop_;
  uint64_t next_id_ = 0;
  std::map<uint64_t, Session> sessions_;
  std::vector<std::thread> finished_;  // joined by the next spawn() or stop()
  std::condition_variable idle_;
};

// What a session's loop thread and gRPC's reactor events share about how one
// call ends: the client cancelled it, the service ended it, or the loop
// finished. The base of StreamSession and ClientStreamSession.
class SessionCall {
 public:
  explicit SessionCall(grpc::CallbackServerContext* context) : context_(context) {}

  // gRPC's OnCancel: the client went away, or cancel() below.
  void on_cancel() {
    {
      std::lock_guard lock(mutex_);
      cancelled_ = true;
      cancelled_by_client_ = !ending_;
      changed_.notify_all();
    }
    wake_.request_stop();
  }
  // The service is stopping: end the call now. The call (and its context)
  // may be gone once Finish was called, so TryCancel only before that (it
  // also ends a write the client never reads).
  void cancel() {
    {
      std::lock_guard lock(mutex_);
      ending_ = true;
      if (!finished_) context_->TryCancel();
    }
    on_cancel();
  }

 protected:
  // The answer to the loop's `status`: CANCELLED when the client left,
  // `sessions.stopping()` when the service stopped a loop that failed.
  // Marks the call finished; the caller's Finish is its last touch.
  grpc::Status final_answer(const absl::Status& status, const std::stop_token& stop,
                            const StreamSessions& sessions) {
    grpc::Status answer = to_grpc(status);
    std::lock_guard lock(mutex_);
    if (cancelled_by_client_) {
      answer = grpc::Status(grpc::StatusCode::CANCELLED, "client went away");
    } else if (stop.stop_requested() && !status.ok()) {
      answer = sessions.stopping();
    }
    finished_ = true;
    return answer;
  }

  grpc::CallbackServerContext* context_;
  std::mutex mutex_;
  std::condition_variable_any changed_;
  bool cancelled_ = false;
  bool cancelled_by_client_ = false;
  bool ending_ = false;
  bool finished_ = false;
  std::stop_source wake_;  // ends the loop: client cancelled or service stopping
};

// One server-streaming call: the reactor gRPC sees, plus the writer the loop
// sees. Create with serve_stream(); nothing else is needed by the service.
template <typename Response>
class StreamSession final : public StreamWriter<Response>,
                            public SessionCall,
                            public std::enable_shared_from_this<StreamSession<Response>> {
 public:
  using Loop = std::function<absl::Status(StreamWriter<Response>&, std::stop_token)>;

  class Reactor final : public grpc::ServerWriteReactor<Response> {
   public:
    explicit Reactor(std::shared_ptr<StreamSession> session) : session_(std::move(session)) {}
    void OnWriteDone(bool ok) override { session_->on_write_done(ok); }
    void OnCancel() override { session_->on_cancel(); }
    void OnDone() override { delete this; }

   private:
    std::shared_ptr<StreamSession> session_;
  };

  StreamSession(grpc::CallbackServerContext* context, Loop loop)
      : SessionCall(context), loop_(std::move(loop)) {}

  bool write(const Response& response) override {
    {
      std::lock_guard lock(mutex_);
      if (cancelled_) return false;
      write_done_ = false;
    }
    reactor_->StartWrite(&response);
    std::unique_lock lock(mutex_);
    changed_.wait(lock, [&] { return write_done_; });
    return write_ok_;
  }

  // Runs the loop on `sessions`; answers `sessions.stopping()` when it cannot.
  static grpc::ServerWriteReactor<Response>* start(grpc::CallbackServerContext* context,
                                                   StreamSessions& sessions, Loop loop) {
    auto session = std::make_shared<StreamSession>(context, std::move(loop));
    auto* reactor = new Reactor(session);  // deletes itself in OnDone
    session->reactor_ = reactor;
    bool spawned =
        sessions.spawn([session, &sessions](std::stop_token stop) { session->run(stop, sessions); },
                       [weak = std::weak_ptr<StreamSession>(session)] {
                         if (auto alive = weak.lock()) alive->cancel();
                       });
    if (!spawned) reactor->Finish(sessions.stopping());
    return reactor;
  }

 private:
  void run(std::stop_token stop, StreamSessions& sessions) {
    std::stop_callback on_stop(stop, [this] { wake_.request_stop(); });
    absl::Status status = loop_(*this, wake_.get_token());
    grpc::Status answer = final_answer(status, stop, sessions);
    reactor_->Finish(answer);  // the last touch: OnDone may delete the reactor
  }
  void on_write_done(bool ok) {
    std::lock_guard lock(mutex_);
    write_done_ = true;
    write_ok_ = ok;
    changed_.notify_all();
  }

  Loop loop_;
  Reactor* reactor_ = nullptr;
  bool write_done_ = false;
  bool write_ok_ = true;
};

// serve_stream<Response>(context, sessions, loop): the reactor for a
// server-streaming method whose messages come from `loop`.
template <typename Response>
grpc::ServerWriteReactor<Response>* serve_stream(grpc::CallbackServerContext* context,
                                                 StreamSessions& sessions,
                                                 typename StreamSession<Response>::Loop loop) {
  return StreamSession<Response>::start(context, sessions, std::move(loop));
}

}  // namespace telekern
