#include "kernel/routing/module_router.h"

#include <google/protobuf/descriptor.h>
#include <grpcpp/client_context.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/support/byte_buffer.h>

#include <atomic>

#include "telekern/strings.h"

namespace telekern::kernel {
namespace {

// The backend call carries the caller's deadline and metadata, with the
// caller's identity (x-telekern-subject/-role, vouched for by
// x-telekern-kernel) in place of its credentials.
void prepare_backend_context(const grpc::ServerContextBase& incoming, const ModuleRouter& router,
                             grpc::ClientContext& outgoing) {
  outgoing.set_deadline(incoming.deadline());
  for (const auto& [key, value] : incoming.client_metadata()) {
    std::string_view name(key.data(), key.size());
    if (auth::is_private_metadata(name)) continue;
    outgoing.AddMetadata(std::string(name), std::string(value.data(), value.size()));
  }
  auto metadata = auth::CallerMetadata::of(incoming);
  auto caller = router.callers.identify(metadata.api_key, metadata.authorization);
  outgoing.AddMetadata(std::string(auth::kSubjectHeader), caller.subject);
  outgoing.AddMetadata(std::string(auth::kRoleHeader), caller.role);
  outgoing.AddMetadata(std::string(auth::kProofHeader), router.callers.proof());
}

void forward_trailing_metadata(const grpc::ClientContext& backend,
                               grpc::ServerContextBase& incoming) {
  for (const auto& [key, value] : backend.GetServerTrailingMetadata()) {
    std::string name(key.data(), key.size());
    if (name.rfind("grpc-", 0) == 0) continue;
    incoming.AddTrailingMetadata(name, std::string(value.data(), value.size()));
  }
}

std::string service_of(std::string_view method) {
  method.remove_prefix(method.empty() ? 0 : 1);
  return std::string(method.substr(0, method.find('/')));
}

// The backend half of a routed call: its call to the module's in-process
// server, its hold slot, and the references that decide when the routed call
// may delete itself (one for the public call, one while the backend call runs).
class BackendLink {
 public:
  BackendLink(ModuleRouter& router, grpc::ServerContextBase& incoming)
      : router_(router), incoming_(incoming) {}

  // Sets up the backend call on `channel`; false (and nothing set up) when
  // the public call was cancelled while it was held.
  bool open(std::shared_ptr<grpc::Channel> channel) {
    if (cancelled_) return false;
    channel_ = channel.get();
    stub_ = std::make_unique<grpc::GenericStub>(std::move(channel));
    prepare_backend_context(incoming_, router_, context_);
    references_.fetch_add(1);
    started_ = true;
    router_.backend_call_started(channel_);
    return true;
  }
  grpc::GenericStub& stub() { return *stub_; }
  grpc::ClientContext& context() { return context_; }
  bool started() const { return started_; }
  // The backend call is done: it stops counting and its trailing metadata
  // goes to the public call.
  void closed() {
    router_.backend_call_finished(channel_);
    forward_trailing_metadata(context_, incoming_);
  }
  void cancel() {
    cancelled_ = true;
    if (started_) context_.TryCancel();
  }
  void set_held(std::shared_ptr<HeldCall> held) { held_ = std::move(held); }
  // The public call is done.
  void public_done() {
    if (held_) router_.forget(held_);
  }
  // Drops one reference; true when it was the last.
  bool release() { return references_.fetch_sub(1) == 1; }

 private:
  ModuleRouter& router_;
  grpc::ServerContextBase& incoming_;
  const grpc::Channel* channel_ = nullptr;  // identifies the module instance
  std::unique_ptr<grpc::GenericStub> stub_;
  grpc::ClientContext context_;
  std::shared_ptr<HeldCall> held_;
  std::atomic<int> references_{1};
  std::atomic<bool> cancelled_{false};
  std::atomic<bool> started_{false};
};

// The unary backend call of a routed call. A reactor, not the std::function
// form: its OnDone comes after gRPC has let go of the call, so the routed call
// (and its ClientContext) may be deleted from there.
template <typename Call>
class UnaryBackend final : public grpc::ClientUnaryReactor {
 public:
  explicit UnaryBackend(Call& call) : call_(call) {}
  void OnDone(const grpc::Status& status) override { call_.unary_done(status); }

 private:
  Call& call_;
};

const grpc::Status kCancelledWhileHeld(grpc::StatusCode::CANCELLED, "cancelled while held");

}  // namespace

// Forwards one call, whatever its streaming kind, as a raw byte stream: client
// messages to the module's in-process server, its replies and status back.
// Deletes itself when both the public call and the backend call are done.
class ProxiedCall final : public grpc::ServerGenericBidiReactor, public RoutedCall {
 public:
  ProxiedCall(grpc::GenericCallbackServerContext* context, ModuleRouter& router)
      : context_(context),
        router_(router),
        service_(service_of(context->method())),
        link_(router, *context),
        backend_(*this) {}

  // Unary calls read their one request first and make a unary backend call
  // (one batch each way); streaming calls are piped as a bidi stream.
  void start() {
    if (auto admitted = router_.gate.check(*context_, context_->method()); !admitted.ok()) {
      return fail(admitted);
    }
    unary_ = router_.is_unary(context_->method());
    if (unary_) {
      StartRead(&request_);
    } else {
      router_.route(service_, this);
    }
  }

  void begin(std::shared_ptr<grpc::Channel> channel) override {
    if (!link_.open(std::move(channel))) return fail(kCancelledWhileHeld);
    if (unary_) {
      // A reactor, not the std::function form: its OnDone comes after gRPC has
      // let go of the call, so the ProxiedCall (and its ClientContext) may be
      // deleted from there.
      link_.stub().PrepareUnaryCall(&link_.context(), context_->method(), grpc::StubOptions(),
                                    &request_, &response_, &unary_backend_);
      unary_backend_.StartCall();
      return;
    }
    link_.stub().PrepareBidiStreamingCall(&link_.context(), context_->method(), grpc::StubOptions(),
                                          &backend_);
    // Two holds keep the backend stream alive while the public side may still
    // start operations on it: one for the upstream pump (client messages), one
    // for the downstream pump (replies). Each is removed when its pump ends.
    backend_.AddMultipleHolds(2);
    backend_.StartRead(&response_);
    backend_.StartCall();
    StartRead(&request_);
  }

  void fail(const grpc::Status& status) override { Finish(status); }
  void set_held(std::shared_ptr<HeldCall> held) override { link_.set_held(std::move(held)); }

  // Public side.
  void OnReadDone(bool ok) override {
    if (unary_ && !link_.started()) {
      if (ok) return router_.route(service_, this);
      return Finish(grpc::Status(grpc::StatusCode::CANCELLED, "client sent no request"));
    }
    if (ok) {
      backend_.StartWrite(&request_);
      return;
    }
    backend_.StartWritesDone();
    backend_.RemoveHold();  // upstream pump ends
  }
  void OnWriteDone(bool ok) override {
    if (ok) {
      backend_.StartRead(&response_);
      return;
    }
    link_.context().TryCancel();
    backend_.RemoveHold();  // downstream pump ends
  }
  void OnCancel() override { link_.cancel(); }
  void OnDone() override {
    link_.public_done();
    release();
  }

  // Backend side.
  void backend_read_done(bool ok) {
    if (ok) {
      StartWrite(&response_);
      return;
    }
    backend_.RemoveHold();  // downstream pump ends; the status follows in backend_done
  }
  void backend_write_done(bool ok) {
    if (ok) {
      StartRead(&request_);
      return;
    }
    backend_.RemoveHold();  // upstream pump ends
  }
  void unary_done(grpc::Status status) {
    link_.closed();
    if (status.ok()) {
      StartWriteAndFinish(&response_, grpc::WriteOptions(), status);
    } else {
      Finish(status);
    }
    release();
  }

  void backend_done(const grpc::Status& status) {
    link_.closed();
    Finish(status);
    release();
  }

 private:
  class Backend final : public grpc::ClientBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
   public:
    explicit Backend(ProxiedCall& call) : call_(call) {}
    void OnReadDone(bool ok) override { call_.backend_read_done(ok); }
    void OnWriteDone(bool ok) override { call_.backend_write_done(ok); }
    void OnDone(const grpc::Status& status) override { call_.backend_done(status); }

   private:
    ProxiedCall& call_;
  };

  void release() {
    if (link_.release()) delete this;
  }

  grpc::GenericCallbackServerContext* context_;
  ModuleRouter& router_;
  const std::string service_;
  BackendLink link_;
  Backend backend_;
  UnaryBackend<ProxiedCall> unary_backend_{*this};
  grpc::ByteBuffer request_;
  grpc::ByteBuffer response_;
  bool unary_ = false;
};

// Forwards a unary call whose request the public server has already read, as
// one unary backend call. Deletes itself when both calls are done.
class RoutedUnaryCall final : public grpc::ServerUnaryReactor, public RoutedCall {
 public:
  RoutedUnaryCall(grpc::CallbackServerContext* context, const std::string& method,
                  const grpc::ByteBuffer* request, grpc::ByteBuffer* response, ModuleRouter& router)
      : method_(method), request_(request), response_(response), link_(router, *context) {}

  void begin(std::shared_ptr<grpc::Channel> channel) override {
    if (!link_.open(std::move(channel))) return fail(kCancelledWhileHeld);
    link_.stub().PrepareUnaryCall(&link_.context(), method_, grpc::StubOptions(), request_,
                                  response_, &backend_);
    backend_.StartCall();
  }
  void fail(const grpc::Status& status) override { Finish(status); }
  void set_held(std::shared_ptr<HeldCall> held) override { link_.set_held(std::move(held)); }

  void OnCancel() override { link_.cancel(); }
  void OnDone() override {
    link_.public_done();
    release();
  }

 private:
  friend class UnaryBackend<RoutedUnaryCall>;
  void unary_done(const grpc::Status& status) {
    link_.closed();
    Finish(status);
    release();
  }
  void release() {
    if (link_.release()) delete this;
  }

  const std::string& method_;  // owned by the direct route, which outlives the server
  const grpc::ByteBuffer* request_;
  grpc::ByteBuffer* response_;
  BackendLink link_;
  UnaryBackend<RoutedUnaryCall> backend_{*this};
};

namespace {
// Takes a held call out of its slot, so exactly one party resumes or fails it.
RoutedCall* claim(const std::shared_ptr<HeldCall>& held) {
  std::lock_guard lock(held->mutex);
  RoutedCall* call = held->call;
  held->call = nullptr;
  return call;
}
}  // namespace

ModuleRouter::ModuleRouter(std::chrono::milliseconds hold_limit, const auth::CallGate& gate,
                           const auth::CallerIdentity& callers)
    : hold_limit_(hold_limit), gate(gate), callers(callers) {}

ModuleRouter::~ModuleRouter() {
  remove(services(), grpc::Status(grpc::StatusCode::UNAVAILABLE, "kernel is shutting down"));
}

grpc::ServerGenericBidiReactor* ModuleRouter::CreateReactor(
    grpc::GenericCallbackServerContext* context) {
  auto* call = new ProxiedCall(context, *this);  // deletes itself when done
  call->start();
  return call;
}

grpc::ServerUnaryReactor* ModuleRouter::route_unary(grpc::CallbackServerContext* context,
                                                    const std::string& method,
                                                    const grpc::ByteBuffer* request,
                                                    grpc::ByteBuffer* response) {
  // Deletes itself when done.
  auto* call = new RoutedUnaryCall(context, method, request, response, *this);
  route(service_of(method), call);
  return call;
}

void ModuleRouter::route(const std::string& service, RoutedCall* call) {
  std::shared_lock starting(start_mutex_);
  std::shared_ptr<grpc::Channel> backend;
  {
    std::lock_guard lock(mutex_);
    auto it = routes_.find(service);
    if (it == routes_.end()) {
      backend = nullptr;
    } else if (!it->second.backend) {
      auto held = std::make_shared<HeldCall>();
      held->call = call;
      held->since = std::chrono::steady_clock::now();
      call->set_held(held);
      it->second.held.push_back(std::move(held));
      return;
    } else {
      backend = it->second.backend;
    }
  }
  if (!backend) {
    call->fail(grpc::Status(grpc::StatusCode::UNIMPLEMENTED,
                            str_cat("service '", service,
                                    "' is not served here; `modules list` shows what is loaded "
                                    "and `modules load NAME` loads a module")));
    return;
  }
  call->begin(std::move(backend));
}

void ModuleRouter::forget(const std::shared_ptr<HeldCall>& held) {
  claim(held);
  std::lock_guard lock(mutex_);
  for (auto& [name, route] : routes_) std::erase(route.held, held);
}

void ModuleRouter::add(const std::vector<std::string>& services, const std::string& module,
                       std::shared_ptr<grpc::Channel> backend) {
  std::vector<std::shared_ptr<HeldCall>> released;
  {
    std::lock_guard lock(mutex_);
    for (const auto& service : services) {
      auto& route = routes_[service];
      route.module = module;
      route.backend = backend;
      released.insert(released.end(), route.held.begin(), route.held.end());
      route.held.clear();
    }
  }
  std::shared_lock starting(start_mutex_);
  for (const auto& held : released) {
    if (auto* call = claim(held)) call->begin(backend);
  }
}

void ModuleRouter::hold(const std::vector<std::string>& services) {
  {
    std::lock_guard lock(mutex_);
    for (const auto& service : services) {
      if (auto it = routes_.find(service); it != routes_.end()) it->second.backend.reset();
    }
  }
  std::unique_lock wait_for_starts(start_mutex_);
}

void ModuleRouter::remove(const std::vector<std::string>& services, const grpc::Status& status) {
  std::vector<std::shared_ptr<HeldCall>> dropped;
  {
    std::lock_guard lock(mutex_);
    for (const auto& service : services) {
      auto it = routes_.find(service);
      if (it == routes_.end()) continue;
      dropped.insert(dropped.end(), it->second.held.begin(), it->second.held.end());
      routes_.erase(it);
    }
  }
  { std::unique_lock wait_for_starts(start_mutex_); }
  for (const auto& held : dropped) {
    if (auto* call = claim(held)) call->fail(status);
  }
}

void ModuleRouter::expire_held_calls() {
  auto now = std::chrono::steady_clock::now();
  std::vector<std::pair<std::shared_ptr<HeldCall>, std::string>> expired;
  {
    std::lock_guard lock(mutex_);
    for (auto& entry : routes_) {
      Route& route = entry.second;  // (clang 14 lambdas cannot capture structured bindings)
      std::erase_if(route.held, [&](const std::shared_ptr<HeldCall>& held) {
        if (now - held->since < hold_limit_) return false;
        expired.emplace_back(held, route.module);
        return true;
      });
    }
  }
  for (const auto& [held, module] : expired) {
    if (auto* call = claim(held)) {
      call->fail(grpc::Status(grpc::StatusCode::UNAVAILABLE,
                              str_cat("module '", module, "' did not come back within ",
                                      hold_limit_.count(), " ms; retry")));
    }
  }
}

void ModuleRouter::backend_call_started(const grpc::Channel* backend) {
  std::lock_guard lock(active_mutex_);
  ++active_[backend];
}

void ModuleRouter::backend_call_finished(const grpc::Channel* backend) {
  std::lock_guard lock(active_mutex_);
  if (--active_[backend] <= 0) {
    active_.erase(backend);
    active_changed_.notify_all();
  }
}

int ModuleRouter::wait_until_idle(const grpc::Channel* backend,
                                  std::chrono::steady_clock::time_point deadline) {
  std::unique_lock lock(active_mutex_);
  active_changed_.wait_until(lock, deadline, [&] { return active_.count(backend) == 0; });
  auto it = active_.find(backend);
  return it == active_.end() ? 0 : it->second;
}

bool ModuleRouter::is_unary(const std::string& path) {
  {
    std::shared_lock lock(unary_mutex_);
    if (auto it = unary_.find(path); it != unary_.end()) return it->second;
  }
  // "/pkg.Service/Method" -> "pkg.Service.Method"
  std::string full = path.substr(path.empty() ? 0 : 1);
  if (auto slash = full.rfind('/'); slash != std::string::npos) full[slash] = '.';
  const auto* method = google::protobuf::DescriptorPool::generated_pool()->FindMethodByName(full);
  if (method == nullptr) return false;  // unknown: pipe it as a stream, do not cache
  bool unary = !method->client_streaming() && !method->server_streaming();
  std::unique_lock lock(unary_mutex_);
  unary_.emplace(path, unary);
  return unary;
}

std::vector<std::string> ModuleRouter::services() const {
  std::lock_guard lock(mutex_);
  std::vector<std::string> names;
  for (const auto& [name, route] : routes_) names.push_back(name);
  return names;
}

}  // namespace telekern::kernel
