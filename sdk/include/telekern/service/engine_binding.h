// The mechanics between a module's gRPC adapter and its engine. Services are
// created before start() (the kernel registers them first), so the engine is
// attached at start() and detached at stop(); in between, unary work runs on
// the engine's work queue (never on a gRPC thread) and server and client
// streams run as sessions that stop() ends and waits for. A call that arrives while no
// engine is attached answers UNAVAILABLE "<module> module is stopping; retry".
//
//   class EchoService : public v1::Echo::CallbackService {
//     EngineBinding<EchoEngine> binding_{"echo"};
//     grpc::ServerUnaryReactor* Say(ctx, const SayRequest* req, SayResponse* resp) override {
//       return binding_.unary(ctx, [req, resp](EchoEngine& engine) { return engine.say(...); });
//     }
//   };
#pragma once

#include <absl/status/status.h>
#include <grpcpp/server_context.h>
#include <grpcpp/support/server_callback.h>

#include <algorithm>
#include <concepts>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>
#include <utility>

#include "telekern/service/client_stream.h"
#include "telekern/service/pipelined_stream.h"
#include "telekern/service/polled_stream.h"
#include "telekern/service/stream_sessions.h"
#include "telekern/status.h"

namespace telekern {

// An engine runs adapter work on its own threads: submit() returns
// RESOURCE_EXHAUSTED (queue full) or UNAVAILABLE (stopping) without running it.
template <typename Engine>
concept SubmitsWork = requires(Engine& engine, std::function<void()> work) {
  { engine.submit(std::move(work)) } -> std::same_as<absl::Status>;
};

// Completes an asynchronous unary call; call it exactly once, from any thread.
using Completion = std::function<void(absl::Status)>;

template <SubmitsWork Engine>
class EngineBinding {
 public:
  explicit EngineBinding(std::string module_name)
      : sessions_(module_name + " module is stopping; retry") {}
  ~EngineBinding() { detach(); }
  EngineBinding(const EngineBinding&) = delete;
  EngineBinding& operator=(const EngineBinding&) = delete;

  // Serve with `engine` until detach(); streams are accepted again.
  void attach(std::shared_ptr<Engine> engine) {
    std::lock_guard lock(mutex_);
    engine_ = std::move(engine);
    sessions_.reopen();
  }
  // The kernel asked the module to stop: open streams end now (UNAVAILABLE;
  // clients reconnect and are held until the new instance serves) and new
  // ones are refused; unary calls are still served until detach().
  void end_streams() { sessions_.end_all(); }
  // Ends every stream and waits for their loops, then drops the engine;
  // later calls answer UNAVAILABLE. Idempotent.
  void detach() {
    sessions_.stop();
    std::lock_guard lock(mutex_);
    engine_.reset();
  }

  // attach() for the module's lifetime: once `stop` is requested (the kernel
  // is stopping the module) open streams end at once. withdraw() undoes both;
  // the module's stop() calls it before shutting its engine down.
  void serve(std::shared_ptr<Engine> engine, std::stop_token stop) {
    attach(std::move(engine));
    stop_watch_.emplace(std::move(stop), [this] { end_streams(); });
  }
  void withdraw() {
    stop_watch_.reset();
    detach();
  }

  std::shared_ptr<Engine> engine() const {
    std::lock_guard lock(mutex_);
    return engine_;
  }
  grpc::Status stopping() const { return sessions_.stopping(); }

  // Runs `work(engine) -> absl::Status` on an engine thread and answers with
  // its status (the response is filled by `work`).
  template <typename Work>
  requires std::invocable<Work&, Engine&> grpc::ServerUnaryReactor* unary(
      grpc::CallbackServerContext* context, Work work) {
    return unary_async(context, [work = std::move(work)](Engine& engine, Completion done) mutable {
      done(work(engine));
    });
  }

  // Like unary(), for work that completes later on another thread:
  // `work(engine, done)` calls done(status) exactly once.
  template <typename Work>
  requires std::invocable<Work&, Engine&, Completion> grpc::ServerUnaryReactor* unary_async(
      grpc::CallbackServerContext* context, Work work) {
    auto* reactor = context->DefaultReactor();
    auto engine = this->engine();
    if (!engine) {
      reactor->Finish(stopping());
      return reactor;
    }
    auto submitted = engine->submit([reactor, engine, work = std::move(work)]() mutable {
      work(*engine, [reactor](absl::Status status) { reactor->Finish(to_grpc(status)); });
    });
    if (!submitted.ok()) reactor->Finish(to_grpc(submitted));
    return reactor;
  }

  // Like unary_async(), but runs `work` on the gRPC thread that received the
  // call, skipping the hand-off to an engine thread (its wake-up is most of a
  // fast call's latency). Only for work that does not wait: no I/O beyond a
  // page-cache write, no lock held across I/O; the caller checks that first
  // and uses unary_async() otherwise.
  template <typename Work>
  requires std::invocable<Work&, Engine&, Completion> grpc::ServerUnaryReactor* unary_here(
      grpc::CallbackServerContext* context, const std::shared_ptr<Engine>& engine, Work work) {
    auto* reactor = context->DefaultReactor();
    work(*engine, [reactor](absl::Status status) { reactor->Finish(to_grpc(status)); });
    return reactor;
  }

  // A server stream whose messages come from `loop(engine, writer, stop)`,
  // run on a session thread; `stop` is requested when the client cancels or
  // the module stops. The loop's status ends the call.
  template <typename Response, typename Loop>
  grpc::ServerWriteReactor<Response>* server_stream(grpc::CallbackServerContext* context,
                                                    Loop loop) {
    auto engine = this->engine();
    typename StreamSession<Response>::Loop run;
    if (engine) {
      run = [engine, loop = std::move(loop)](StreamWriter<Response>& writer,
                                             std::stop_token stop) mutable {
        return loop(*engine, writer, stop);
      };
    } else {
      run = [status = from_grpc(stopping())](StreamWriter<Response>&, std::stop_token) {
        return status;
      };
    }
    return serve_stream<Response>(context, sessions_, std::move(run));
  }

  // A server stream served without a thread of its own (see PolledStream):
  // `make_step(engine)` returns the stream's step function, which the
  // binding's few step threads call whenever there may be more to send.
  template <typename Response, typename MakeStep>
  grpc::ServerWriteReactor<Response>* polled_stream(grpc::CallbackServerContext* context,
                                                    MakeStep make_step) {
    auto engine = this->engine();
    typename PolledStream<Response>::Step step;
    if (engine) {
      step = make_step(*engine);
    } else {
      step = [status = from_grpc(stopping())](const StepWaker&, std::stop_token) {
        return StreamStep<Response>::done(status);
      };
    }
    return PolledStream<Response>::start(context, sessions_, step_scheduler(), std::move(step));
  }

  // A client stream consumed by `loop(engine, reader, response, stop)` on a
  // session thread: reader.read(request) waits for the next message (false
  // at the end of the stream or once `stop` is requested: the client
  // cancelled or the module stops). Reading is paced by the loop, so memory
  // stays bounded however long the stream. The loop fills `response`; its
  // status ends the call.
  template <typename Request, typename Response, typename Loop>
  grpc::ServerReadReactor<Request>* client_stream(grpc::CallbackServerContext* context,
                                                  Response* response, Loop loop) {
    auto engine = this->engine();
    typename ClientStreamSession<Request, Response>::Loop run;
    if (engine) {
      run = [engine, loop = std::move(loop)](StreamReader<Request>& reader, Response& out,
                                             std::stop_token stop) mutable {
        return loop(*engine, reader, out, stop);
      };
    } else {
      run = [status = from_grpc(stopping())](StreamReader<Request>&, Response&, std::stop_token) {
        return status;
      };
    }
    return serve_client_stream<Request, Response>(context, response, sessions_, std::move(run));
  }

  // A bidi stream of pipelined requests (see PipelinedStream): `accept`
  // turns a request into an Item, `process(engine, item, answer)` runs on an
  // engine thread in arrival order and answers once, from any thread;
  // `refuse(item, status)` answers an item no engine thread took; `quick`
  // (optional) lets an item that does not wait run on the gRPC thread.
  template <typename Request, typename Response, typename Item>
  grpc::ServerBidiReactor<Request, Response>* pipelined_stream(
      std::function<Item(const Request&)> accept,
      std::function<void(Engine&, Item, std::function<void(Response)>)> process,
      std::function<Response(const Item&, const absl::Status&)> refuse,
      std::function<bool(Engine&, const Item&)> quick = nullptr) {
    auto engine = this->engine();
    if (!engine) return refuse_bidi<Request, Response>(stopping());
    typename PipelinedStream<Request, Response, Item>::Handlers handlers;
    handlers.accept = std::move(accept);
    handlers.process = [engine, process = std::move(process)](
                           Item item, std::function<void(Response)> answer) {
      process(*engine, std::move(item), std::move(answer));
    };
    handlers.refuse = std::move(refuse);
    handlers.submit = [engine](std::function<void()> work) {
      return engine->submit(std::move(work));
    };
    if (quick) {
      handlers.quick = [engine, quick = std::move(quick)](const Item& item) {
        return quick(*engine, item);
      };
    }
    return new PipelinedStream<Request, Response, Item>(std::move(handlers));  // deletes itself
  }

  // A bidi reactor that answers `status` at once (e.g. while stopping).
  template <typename Request, typename Response>
  static grpc::ServerBidiReactor<Request, Response>* refuse_bidi(grpc::Status status) {
    class Refuse final : public grpc::ServerBidiReactor<Request, Response> {
     public:
      explicit Refuse(grpc::Status status) { this->Finish(std::move(status)); }
      void OnDone() override { delete this; }
    };
    return new Refuse(std::move(status));
  }

 private:
  // The threads polled streams' steps run on, started with the first one.
  StepScheduler& step_scheduler() {
    std::lock_guard lock(mutex_);
    if (!scheduler_) {
      scheduler_ = std::make_unique<StepScheduler>(
          std::clamp<size_t>(std::thread::hardware_concurrency(), 2, 8));
    }
    return *scheduler_;
  }

  mutable std::mutex mutex_;
  std::shared_ptr<Engine> engine_;
  std::unique_ptr<StepScheduler> scheduler_;  // outlives sessions_: declared before
  StreamSessions sessions_;
  std::optional<std::stop_callback<std::function<void()>>>
      stop_watch_;  // declared last: goes first
};

}  // namespace telekern
