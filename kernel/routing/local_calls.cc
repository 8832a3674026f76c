#include "kernel/routing/local_calls.h"

#include <grpcpp/test/default_reactor_test_peer.h>

#include <condition_variable>
#include <thread>

#include "kernel/auth/caller_identity.h"
#include "telekern/strings.h"

namespace telekern::kernel {

// One call in progress: the context the handler gets, the messages it reads
// and fills, and its answer once the handler finished the reactor.
struct LocalCalls::Call {
  auth::LocalCallContext context;
  std::shared_ptr<const google::protobuf::Message> request;
  std::shared_ptr<google::protobuf::Message> response;
  std::shared_ptr<CallTracker> calls;  // the serving instance's; null for kernel services
  std::optional<grpc::testing::DefaultReactorTestPeer> peer;

  std::mutex mutex;
  std::condition_variable finished;
  bool done = false;
  bool abandoned = false;  // the caller stopped waiting
  grpc::Status status;

  // The handler's Finish(): runs on whichever thread the handler answers from.
  void finish(grpc::Status answer) {
    std::shared_ptr<CallTracker> late;
    {
      std::lock_guard lock(mutex);
      status = std::move(answer);
      done = true;
      if (abandoned) {
        late = std::move(calls);
      } else {
        finished.notify_one();
      }
    }
    if (late) late->finished();
  }

  // True once the reactor's Finish() has returned into gRPC's test peer for
  // the last time: only then may the context go.
  bool released() const { return peer->test_status_set(); }
};

LocalCalls::LocalCalls(const DirectRoutes& routes, const auth::CallGate& gate, RpcMetrics& metrics)
    : routes_(routes), gate_(gate), metrics_(metrics) {}

LocalCalls::~LocalCalls() {
  // Any handler still out belongs to a module instance already destroyed.
  std::lock_guard lock(mutex_);
  abandoned_.clear();
}

std::optional<grpc::Status> LocalCalls::call(
    std::string_view path, const LocalCredentials& credentials,
    std::shared_ptr<const google::protobuf::Message> request,
    std::shared_ptr<google::protobuf::Message> response, std::chrono::milliseconds timeout) {
  // The target first: a call that goes to gRPC after all must not have
  // spent a rate-limit token here.
  auto target = routes_.local_target(path);
  if (!target) return std::nullopt;
  if (abandoned_count_.load(std::memory_order_relaxed) > 0) sweep();
  auto started = std::chrono::steady_clock::now();
  metrics_.started();
  auto end = [&](grpc::Status status) {
    metrics_.record(
        path, status.error_code(),
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
    metrics_.finished();
    return status;
  };

  auth::CallerMetadata metadata;
  metadata.api_key = credentials.api_key;
  metadata.authorization = credentials.authorization;
  if (auto admitted = gate_.check(metadata, credentials.client_address, path); !admitted.ok()) {
    if (target->calls) target->calls->finished();
    return end(std::move(admitted));
  }

  auto call = std::make_unique<Call>();
  call->context.api_key = credentials.api_key;
  call->context.authorization = credentials.authorization;
  call->context.client_address = credentials.client_address;
  call->request = std::move(request);
  call->response = std::move(response);
  call->calls = std::move(target->calls);
  call->peer.emplace(&call->context,
                     [raw = call.get()](grpc::Status status) { raw->finish(std::move(status)); });
  auto* reactor =
      target->service->call_local(target->method, &call->context, *call->request, *call->response);
  if (reactor == nullptr) {
    // The messages are not of the method's types: nothing ran.
    if (call->calls) call->calls->finished();
    return end(grpc::Status(grpc::StatusCode::INTERNAL,
                            str_cat("the local handler of ", path, " refused its messages")));
  }
  if (reactor != call->peer->reactor()) {
    // A handler with a reactor of its own cannot be run without gRPC: it
    // will never answer here (the module broke LocalUnary's contract). Its
    // context is kept, in case it answers through it after all.
    if (call->calls) call->calls->finished();
    call->calls.reset();
    {
      std::lock_guard lock(call->mutex);
      call->abandoned = true;
    }
    keep_abandoned(std::move(call));
    return end(grpc::Status(
        grpc::StatusCode::INTERNAL,
        str_cat("the local handler of ", path, " did not answer through DefaultReactor()")));
  }

  std::unique_lock lock(call->mutex);
  if (!call->finished.wait_for(lock, timeout, [&] { return call->done; })) {
    call->abandoned = true;
    lock.unlock();
    keep_abandoned(std::move(call));
    return end(grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED,
                            str_cat(path, " did not answer within ", timeout.count(), " ms")));
  }
  grpc::Status status = call->status;
  lock.unlock();
  if (call->calls) call->calls->finished();
  // finish() has run; the test peer marks the status set right after it.
  while (!call->released()) std::this_thread::yield();
  return end(std::move(status));
}

void LocalCalls::keep_abandoned(std::unique_ptr<Call> call) {
  std::lock_guard lock(mutex_);
  abandoned_.push_back(std::move(call));
  abandoned_count_.store(abandoned_.size(), std::memory_order_relaxed);
}

void LocalCalls::sweep() {
  std::lock_guard lock(mutex_);
  abandoned_.remove_if([](const std::unique_ptr<Call>& call) { return call->released(); });
  abandoned_count_.store(abandoned_.size(), std::memory_order_relaxed);
}

}  // namespace telekern::kernel
