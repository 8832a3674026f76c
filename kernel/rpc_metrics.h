// Counts and times every RPC by service, method and status code, with a server
// interceptor on the public server (calls the call gate turns away included).
#pragma once

#include <grpcpp/support/server_interceptor.h>

#include <array>
#include <memory>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "telekern/metrics.h"

namespace telekern::kernel {

class RpcMetrics {
 public:
  // The service and method labels of calls to methods no loaded service
  // declares, so junk method names cannot add series.
  static constexpr const char* kUnservedLabel = "unserved";

  explicit RpcMetrics(MetricsRegistry& registry);
  void record(std::string_view path, grpc::StatusCode code, double seconds);
  void started() { in_flight_.inc(); }
  void finished() { in_flight_.dec(); }

  std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> interceptor_factory();

 private:
  struct Series {
    Counter* requests = nullptr;
    Histogram* duration = nullptr;
  };
  // Hashes std::string and std::string_view alike, so lookups do not allocate.
  struct PathHash {
    using is_transparent = void;
    size_t operator()(std::string_view path) const { return std::hash<std::string_view>{}(path); }
  };
  static constexpr int kCodes = 17;  // OK .. UNAUTHENTICATED
  // The series of one path and code, cached so the hot path takes no exclusive lock.
  Series series(std::string_view path, grpc::StatusCode code);

  CounterFamily& requests_;
  HistogramFamily& durations_;
  Gauge& in_flight_;
  std::shared_mutex cache_mutex_;
  std::unordered_map<std::string, std::array<Series, kCodes>, PathHash, std::equal_to<>> cache_;
};

// "OK", "UNAVAILABLE", ... as in the gRPC spec.

}  // namespace telekern::kernel
