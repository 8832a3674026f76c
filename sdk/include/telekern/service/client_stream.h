// Client-streaming calls consumed by a loop: each session runs its loop on a
// thread of the StreamSessions registry and pulls the client's messages one
// at a time through a StreamReader. One read is in flight ahead of the loop
// at most, so a client faster than the loop is held back by gRPC's flow
// control and the server holds two messages, whatever the stream's length.
// The loop fills the response and its status ends the call.
#pragma once

#include <absl/status/status.h>
#include <grpcpp/server_context.h>
#include <grpcpp/support/server_callback.h>

#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <stop_token>
#include <utility>

#include "telekern/service/stream_sessions.h"
#include "telekern/status.h"

namespace telekern {

// The loop's side of one client stream.
template <typename Request>
class StreamReader {
 public:
  virtual ~StreamReader() = default;
  // Waits for the client's next message. False at the end of the stream:
  // the client half-closed (all sent), or the loop's stop token was
  // requested (the client went away or the service is stopping).
  virtual bool read(Request& request) = 0;
};

// One client-streaming call: the reactor gRPC sees, plus the reader the loop
// sees. Create with serve_client_stream().
template <typename Request, typename Response>
class ClientStreamSession final
    : public StreamReader<Request>,
      public SessionCall,
      public std::enable_shared_from_this<ClientStreamSession<Request, Response>> {
 public:
  using Loop = std::function<absl::Status(StreamReader<Request>&, Response&, std::stop_token)>;

  class Reactor final : public grpc::ServerReadReactor<Request> {
   public:
    explicit Reactor(std::shared_ptr<ClientStreamSession> session) : session_(std::move(session)) {}
    void OnReadDone(bool ok) override { session_->on_read_done(ok); }
    void OnCancel() override { session_->on_cancel(); }
    void OnDone() override { delete this; }

   private:
    std::shared_ptr<ClientStreamSession> session_;
  };

  ClientStreamSession(grpc::CallbackServerContext* context, Response* response, Loop loop)
      : SessionCall(context), response_(response), loop_(std::move(loop)) {}

  bool read(Request& request) override {
    {
      std::unique_lock lock(mutex_);
      changed_.wait(lock, wake_.get_token(), [&] { return arrived_ || cancelled_; });
      if (cancelled_ || !arrived_ || !arrived_ok_) return false;
      request = std::move(buffer_);
      buffer_.Clear();
      arrived_ = false;
    }
    // The one read ahead of the loop. Only this thread calls Finish (after
    // the loop), so the reactor is alive here.
    reactor_->StartRead(&buffer_);
    return true;
  }

  // Runs the loop on `sessions`; answers `sessions.stopping()` when it cannot.
  static grpc::ServerReadReactor<Request>* start(grpc::CallbackServerContext* context,
                                                 Response* response, StreamSessions& sessions,
                                                 Loop loop) {
    auto session = std::make_shared<ClientStreamSession>(context, response, std::move(loop));
    auto* reactor = new Reactor(session);  // deletes itself in OnDone
    session->reactor_ = reactor;
    reactor->StartRead(&session->buffer_);
    bool spawned =
        sessions.spawn([session, &sessions](std::stop_token stop) { session->run(stop, sessions); },
                       [weak = std::weak_ptr<ClientStreamSession>(session)] {
                         if (auto alive = weak.lock()) alive->cancel();
                       });
    if (!spawned) reactor->Finish(sessions.stopping());
    return reactor;
  }

 private:
  void run(std::stop_token stop, StreamSessions& sessions) {
    std::stop_callback on_stop(stop, [this] { wake_.request_stop(); });
    absl::Status status = loop_(*this, *response_, wake_.get_token());
    grpc::Status answer = final_answer(status, stop, sessions);
    // The last touch: OnDone may delete the reactor (and the session) once
    // the read still in flight completed.
    reactor_->Finish(answer);
  }
  void on_read_done(bool ok) {
    std::lock_guard lock(mutex_);
    arrived_ = true;
    arrived_ok_ = ok;
    changed_.notify_all();
  }

  Response* response_;  // gRPC's, valid until the call is done
  Loop loop_;
  Reactor* reactor_ = nullptr;
  Request buffer_;  // the read in flight lands here
  bool arrived_ = false;
  bool arrived_ok_ = false;
};

// serve_client_stream<Request, Response>(context, response, sessions, loop):
// the reactor for a client-streaming method whose messages `loop` consumes.
template <typename Request, typename Response>
grpc::ServerReadReactor<Request>* serve_client_stream(
    grpc::CallbackServerContext* context, Response* response, StreamSessions& sessions,
    typename ClientStreamSession<Request, Response>::Loop loop) {
  return ClientStreamSession<Request, Response>::start(context, response, sessions,
                                                       std::move(loop));
}

}  // namespace telekern
