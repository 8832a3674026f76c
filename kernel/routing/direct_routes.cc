#include "kernel/routing/direct_routes.h"

#include <google/protobuf/descriptor.h>
#include <grpcpp/impl/codegen/server_callback_handlers.h>
#include <grpcpp/support/byte_buffer.h>

#include <algorithm>

#include "telekern/strings.h"

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

// The handler gRPC runs for one route. It keeps the request bytes as they
// arrived (Deserialize), checks the call at the gate, then picks the target
// and hands it the call unchanged, so the target handler sees exactly what it
// would on a server of its own. The call's requester callback, which gRPC
// runs once the call is completely done, tells the module's tracker.
class DirectRoutes::Method final : public grpc::internal::MethodHandler {
 public:
  Method(const DirectRoutes& routes, size_t index) : routes_(routes), index_(index) {}

  void* Deserialize(grpc_call*, grpc_byte_buffer* request, grpc::Status* status,
                    void** handler_data) override {
    *handler_data = request;  // ours now; the target's Deserialize consumes it
    *status = grpc::Status::OK;
    return nullptr;
  }

  void RunHandler(const HandlerParameter& param) override {
    auto* request = static_cast<grpc_byte_buffer*>(param.internal_data);
    const Route& route = *routes_.routes_[index_];
    grpc::Status admitted = routes_.gate_.check(*param.server_context, route.path);
    if (!admitted.ok()) return reject(param, request, std::move(admitted));
    Target target = routes_.pick(index_);
    grpc::Status status;
    void* handler_data = nullptr;
    void* message =
        target.handler->Deserialize(param.call->call(), request, &status, &handler_data);
    std::function<void()> requester = param.call_requester;
    if (target.calls) {
      requester = [requester = std::move(requester), calls = std::move(target.calls)] {
        requester();
        calls->finished();
      };
    }
    target.handler->RunHandler(HandlerParameter(param.call, param.server_context, message, status,
                                                handler_data, std::move(requester)));
  }

 private:
  // Ends the call with `status` without running anything of the target's.
  static void reject(const HandlerParameter& param, grpc_byte_buffer* request,
                     grpc::Status status) {
    grpc::internal::CallbackUnaryHandler<grpc::ByteBuffer, grpc::ByteBuffer> refusal(
        [&status](grpc::CallbackServerContext* context, const grpc::ByteBuffer*,
                  grpc::ByteBuffer*) {
          auto* reactor = context->DefaultReactor();
          reactor->Finish(status);
          return reactor;
        });
    grpc::Status parsed;
    void* handler_data = nullptr;
    void* message = refusal.Deserialize(param.call->call(), request, &parsed, &handler_data);
    // The call keeps nothing of the handler object once RunHandler returns.
    refusal.RunHandler(HandlerParameter(param.call, param.server_context, message, parsed,
                                        handler_data, param.call_requester));
  }

  const DirectRoutes& routes_;
  const size_t index_;
};

DirectRoutes::DirectRoutes(ModuleRouter& router, const auth::CallGate& gate)
    : router_(router), gate_(gate) {}

absl::StatusOr<std::unique_ptr<DirectRoutes>> DirectRoutes::create(
    const std::vector<ServiceBinding>& kernel_services,
    const std::vector<std::string>& module_services, ModuleRouter& router,
    const auth::CallGate& gate) {
  std::unique_ptr<DirectRoutes> routes(new DirectRoutes(router, gate));
  const auto* pool = google::protobuf::DescriptorPool::generated_pool();
  for (const auto& binding : kernel_services) {
    const auto* service = pool->FindServiceByName(binding.name);
    if (service == nullptr || binding.service == nullptr || !all_callback(*binding.service)) {
      return absl::InternalError(
          str_cat("kernel service ", binding.name, " must be a generated callback service"));
    }
    for (int i = 0; i < service->method_count(); ++i) {
      if (service->method(i)->client_streaming() || service->method(i)->server_streaming()) {
        return absl::InternalError(str_cat("kernel method ", service->method(i)->full_name(),
                                           " streams; the call gate covers unary kernel "
                                           "methods only"));
      }
    }
    routes->add_routes(binding.name);
    routes->attach(binding, nullptr);
  }
  for (const auto& name : module_services) routes->add_routes(name);
  for (size_t i = 0; i < routes->routes_.size(); ++i) {
    // grpc::Service takes ownership of both.
    routes->AddMethod(
        std::make_unique<grpc::internal::RpcServiceMethod>(
            routes->routes_[i]->path.c_str(), grpc::internal::RpcMethod::NORMAL_RPC, nullptr)
            .release());
    routes->MarkMethodCallback(static_cast<int>(i), std::make_unique<Method>(*routes, i).release());
  }
  return routes;
}

void DirectRoutes::add_routes(const std::string& name) {
  const auto* service = google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(name);
  if (service == nullptr) return;
  for (int i = 0; i < service->method_count(); ++i) {
    const auto* method = service->method(i);
    if (method->client_streaming() || method->server_streaming()) continue;
    auto route = std::make_unique<Route>();
    route->path = "/" + name + "/" + method->name();
    route->service = name;
    route->method = method->name();
    route->method_index = i;
    const std::string& path = route->path;
    route->fallback =
        std::make_unique<grpc::internal::CallbackUnaryHandler<grpc::ByteBuffer, grpc::ByteBuffer>>(
            [this, &path](grpc::CallbackServerContext* context, const grpc::ByteBuffer* request,
                          grpc::ByteBuffer* response) {
              return router_.route_unary(context, path, request, response);
            });
    by_path_.emplace(route->path, routes_.size());
    routes_.push_back(std::move(route));
  }
}

DirectRoutes::~DirectRoutes() = default;

DirectRoutes::Target DirectRoutes::pick(size_t index) const {
  std::shared_lock lock(mutex_);
  const Route& route = *routes_[index];
  if (route.direct.handler == nullptr) return {route.fallback.get(), nullptr};
  if (route.direct.calls) route.direct.calls->started();
  return route.direct;
}

bool DirectRoutes::attach(const ServiceBinding& binding, std::shared_ptr<CallTracker> calls) {
  if (binding.service == nullptr || !all_callback(*binding.service)) return false;
  auto* local = dynamic_cast<LocalUnary*>(binding.service);
  std::vector<std::string> local_methods;
  if (local != nullptr) local_methods = local->local_methods();
  bool any = false;
  std::unique_lock lock(mutex_);
  for (auto& route : routes_) {
    if (route->service != binding.name) continue;
    bool served_locally =
        std::find(local_methods.begin(), local_methods.end(), route->method) != local_methods.end();
    route->direct = {HandlerAccess::handler(*binding.service, route->method_index), calls,
                     served_locally ? local : nullptr};
    any = true;
  }
  return any;
}

std::optional<DirectRoutes::LocalTarget> DirectRoutes::local_target(std::string_view path) const {
  auto found = by_path_.find(path);
  if (found == by_path_.end()) return std::nullopt;
  std::shared_lock lock(mutex_);
  const Route& route = *routes_[found->second];
  if (route.direct.local == nullptr) return std::nullopt;
  if (route.direct.calls) route.direct.calls->started();
  return LocalTarget{route.direct.local, route.method, route.direct.calls};
}

void DirectRoutes::detach(const std::vector<std::string>& services) {
  std::unique_lock lock(mutex_);
  for (auto& route : routes_) {
    if (std::find(services.begin(), services.end(), route->service) != services.end()) {
      route->direct = {};
    }
  }
}

}  // namespace telekern::kernel
