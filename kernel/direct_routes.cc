#include "kernel/direct_routes.h"

#include <google/protobuf/descriptor.h>
#include <grpcpp/impl/codegen/server_callback_handlers.h>
#include <grpcpp/support/byte_buffer.h>

namespace telekern::kernel {
namespace {

// grpc::Service keeps its method handlers behind a protected accessor; a
// pointer to that member, named through a derived class, reads them from any
// service object.
struct HandlerAccess : grpc::Service {
  static grpc::internal::MethodHandler* handler(grpc::Service& service, int index) {
    return (service.*&HandlerAccess::GetHandler)(index);
  }
};

// Only protoc-generated callback services: their handlers run on any server's
// callback call. Sync and async handlers need their own server's queues.
bool all_callback(const grpc::Service& service) {
  return service.has_callback_methods() && !service.has_synchronous_methods() &&
         !service.has_async_methods() && !service.has_generic_methods();
}

}  // namespace

void CallTracker::finished() {
  if (running_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
    std::lock_guard lock(mutex_);
    idle_.notify_all();
  }
}

int CallTracker::wait_until_idle(std::chrono::steady_clock::time_point deadline) {
  std::unique_lock lock(mutex_);
  idle_.wait_until(lock, deadline, [&] { return running_.load(std::memory_order_acquire) == 0; });
  return running_.load(std::memory_order_acquire);
}

// The handler gRPC runs for one route. It picks the target when the request
// arrives (Deserialize) and hands the call to it unchanged, so the target
// handler sees exactly what it would on a server of its own; the call's
// requester callback, which gRPC runs after the call is completely done, tells
// the module's tracker.
class DirectRoutes::Method final : public grpc::internal::MethodHandler {
 public:
  Method(const DirectRoutes& routes, size_t index) : routes_(routes), index_(index) {}

  void* Deserialize(grpc_call* call, grpc_byte_buffer* request, grpc::Status* status,
                    void** handler_data) override {
    auto dispatch = std::make_unique<Dispatch>(Dispatch{routes_.pick(index_), nullptr});
    void* message =
        dispatch->target.handler->Deserialize(call, request, status, &dispatch->handler_data);
    *handler_data = dispatch.release();  // back in RunHandler
    return message;
  }

  void RunHandler(const HandlerParameter& param) override {
    std::unique_ptr<Dispatch> dispatch(static_cast<Dispatch*>(param.internal_data));
    grpc::Status status = param.status;
    void* message = param.request;
    if (!dispatch) {  // gRPC deserializes every unary request first; stay safe regardless
      dispatch = std::make_unique<Dispatch>(Dispatch{routes_.pick(index_), nullptr});
      message = dispatch->target.handler->Deserialize(param.call->call(), nullptr, &status,
                                                      &dispatch->handler_data);
    }
    std::function<void()> requester = param.call_requester;
    if (dispatch->target.calls) {
      requester = [requester = std::move(requester), calls = dispatch->target.calls] {
        requester();
        calls->finished();
      };
    }
    dispatch->target.handler->RunHandler(HandlerParameter(param.call, param.server_context, message,
                                                          status, dispatch->handler_data,
                                                          std::move(requester)));
  }

 private:
  struct Dispatch {
    Target target;
    void* handler_data;
  };
  const DirectRoutes& routes_;
  const size_t index_;
};

DirectRoutes::DirectRoutes(const std::vector<std::string>& services, ModuleRouter& router)
    : router_(router) {
  const auto* pool = google::protobuf::DescriptorPool::generated_pool();
  for (const auto& name : services) {
    const auto* service = pool->FindServiceByName(name);
    if (service == nullptr) continue;
    for (int i = 0; i < service->method_count(); ++i) {
      const auto* method = service->method(i);
      if (method->client_streaming() || method->server_streaming()) continue;
      auto route = std::make_unique<Route>();
      route->path = "/" + name + "/" + method->name();
      route->service = name;
      route->method_index = i;
      const std::string& path = route->path;
      route->fallback = std::make_unique<
          grpc::internal::CallbackUnaryHandler<grpc::ByteBuffer, grpc::ByteBuffer>>(
          [this, &path](grpc::CallbackServerContext* context, const grpc::ByteBuffer* request,
                        grpc::ByteBuffer* response) {
            return router_.route_unary(context, path, request, response);
          });
      route->direct = {};
      routes_.push_back(std::move(route));
    }
  }
  for (size_t i = 0; i < routes_.size(); ++i) {
    // grpc::Service takes ownership of both.
    AddMethod(std::make_unique<grpc::internal::RpcServiceMethod>(
                  routes_[i]->path.c_str(), grpc::internal::RpcMethod::NORMAL_RPC, nullptr)
                  .release());
    MarkMethodCallback(static_cast<int>(i), std::make_unique<Method>(*this, i).release());
  }
}

DirectRoutes::~DirectRoutes() = default;

DirectRoutes::Target DirectRoutes::pick(size_t index) const {
  std::shared_lock lock(mutex_);
  const Route& route = *routes_[index];
  if (route.direct.handler == nullptr) return {route.fallback.get(), nullptr};
  route.direct.calls->started();
  return route.direct;
}

bool DirectRoutes::attach(const ServiceBinding& binding, std::shared_ptr<CallTracker> calls) {
  if (binding.service == nullptr || !all_callback(*binding.service)) return false;
  bool any = false;
  std::unique_lock lock(mutex_);
  for (auto& route : routes_) {
    if (route->service != binding.name) continue;
    route->direct = {HandlerAccess::handler(*binding.service, route->method_index), calls};
    any = true;
  }
  return any;
}

void DirectRoutes::detach(const std::vector<std::string>& services) {
  std::unique_lock lock(mutex_);
  for (auto& route : routes_) {
    if (std::find(services.begin(), services.end(), route->service) != services.end()) {
      route->direct = {};
    }
  }
}

int DirectRoutes::attached() const {
  std::shared_lock lock(mutex_);
  int count = 0;
  for (const auto& route : routes_) count += route->direct.handler != nullptr;
  return count;
}

}  // namespace telekern::kernel
