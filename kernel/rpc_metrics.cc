#include "kernel/rpc_metrics.h"

#include <google/protobuf/descriptor.h>

#include <chrono>
#include <string>

#include "telekern/status.h"

namespace telekern::kernel {
namespace {

std::pair<std::string, std::string> split_path(std::string_view path) {
  std::string_view trimmed = path.substr(path.empty() ? 0 : 1);
  auto slash = trimmed.find('/');
  if (slash == std::string_view::npos) return {std::string(trimmed), ""};
  return {std::string(trimmed.substr(0, slash)), std::string(trimmed.substr(slash + 1))};
}

// Whether some service the daemon has loaded declares the method "/pkg.Service/Method".
// The descriptor pool only grows when an admin loads a module, never from
// what a client sends, so labels chosen from it stay a bounded set.
bool is_declared_method(std::string_view path) {
  std::string full(path.substr(path.empty() ? 0 : 1));
  auto slash = full.rfind('/');
  if (slash == std::string::npos) return false;
  full[slash] = '.';
  return google::protobuf::DescriptorPool::generated_pool()->FindMethodByName(full) != nullptr;
}

class RpcMetricsInterceptor final : public grpc::experimental::Interceptor {
 public:
  RpcMetricsInterceptor(RpcMetrics& metrics, grpc::experimental::ServerRpcInfo* info)
      : metrics_(metrics), method_(info->method()), start_(std::chrono::steady_clock::now()) {
    metrics_.started();
  }

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    using Point = grpc::experimental::InterceptionHookPoints;
    if (methods->QueryInterceptionHookPoint(Point::PRE_SEND_STATUS)) {
      code_ = methods->GetSendStatus().error_code();
      status_seen_ = true;
    }
    if (methods->QueryInterceptionHookPoint(Point::POST_RECV_CLOSE) && !status_seen_) {
      code_ = grpc::StatusCode::CANCELLED;
    }
    methods->Proceed();
  }

  ~RpcMetricsInterceptor() override {
    double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    metrics_.record(method_, code_, seconds);
    metrics_.finished();
  }

 private:
  RpcMetrics& metrics_;
  std::string method_;
  std::chrono::steady_clock::time_point start_;
  grpc::StatusCode code_ = grpc::StatusCode::UNKNOWN;
  bool status_seen_ = false;
};

class RpcMetricsFactory final : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit RpcMetricsFactory(RpcMetrics& metrics) : metrics_(metrics) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    // gRPC takes ownership of the interceptor and deletes it when the call ends.
    return new RpcMetricsInterceptor(metrics_, info);
  }

 private:
  RpcMetrics& metrics_;
};

}  // namespace

RpcMetrics::RpcMetrics(MetricsRegistry& registry)
    : requests_(registry.counter("telekern_rpc_requests_total",
                                 "RPCs handled, by service, method and status code",
                                 {"service", "method", "code"})),
      durations_(registry.histogram("telekern_rpc_duration_seconds",
                                    "RPC latency from headers received to status sent",
                                    {"service", "method", "code"})),
      in_flight_(registry.gauge("telekern_rpc_in_flight", "RPCs currently being handled").with()) {}

RpcMetrics::Series RpcMetrics::series(std::string_view path, grpc::StatusCode code) {
  int index = static_cast<int>(code);
  if (index < 0 || index >= kCodes) index = static_cast<int>(grpc::StatusCode::UNKNOWN);
  {
    std::shared_lock lock(cache_mutex_);
    if (auto it = cache_.find(path); it != cache_.end() && it->second[index].requests)
      return it->second[index];
  }
  const char* code_name = status_code_name(static_cast<grpc::StatusCode>(index));
  if (!is_declared_method(path)) {
    // Not served: every such call shares one series per code, whatever name
    // the client made up, and its path is not cached either.
    LabelValues labels{kUnservedLabel, kUnservedLabel, code_name};
    return Series{&requests_.with(labels), &durations_.with(labels)};
  }
  auto [service, method] = split_path(path);
  LabelValues labels{service, method, code_name};
  Series fresh{&requests_.with(labels), &durations_.with(labels)};
  std::unique_lock lock(cache_mutex_);
  if (cache_.size() >= 4096) cache_.clear();
  auto it = cache_.find(path);
  if (it == cache_.end())
    it = cache_.emplace(std::string(path), std::array<Series, kCodes>{}).first;
  it->second[index] = fresh;
  return fresh;
}

void RpcMetrics::record(std::string_view path, grpc::StatusCode code, double seconds) {
  Series entry = series(path, code);
  entry.requests->inc();
  entry.duration->observe(seconds);
}

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>
RpcMetrics::interceptor_factory() {
  return std::make_unique<RpcMetricsFactory>(*this);
}

}  // namespace telekern::kernel
