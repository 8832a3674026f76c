// Unary no-op RPC throughput through the kernel against a bare grpc++ server
// with the same handler, all in this process and driven by the same client
// code. Two kernel paths are measured: a module's service (call gate with
// API-key auth + RPC metrics interceptor + the module's direct route) and a
// service the kernel serves itself (the same, on the kernel's handler). A
// partial peer, a bare server with the metrics interceptor, shows what gRPC's
// interceptor machinery alone costs. Every target runs once per round, in a rotated
// order, and the ratios are medians over the rounds, so machine noise and
// order effects cancel out. (Running two targets at once would not do: both
// servers share gRPC's executor threads, so one's cost slows the other too.)
// Prints calls/s and ratios (target >= 0.90).
// Arguments: [callers per target] [ms per target] [rounds].
#include <absl/synchronization/mutex.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/server_builder.h>
#include <sys/resource.h>

#include <atomic>
#include <fstream>
#include <iostream>
#include <thread>

#include "kernel/kernel_config.h"
#include "kernel/kernel_service.h"
#include "kernel/lifecycle/module_manager.h"
#include "telekern/log.h"
#include "telekern/testing/v1/ping.grpc.pb.h"
#include "tests/bench/bench_kernel.h"
#include "tests/support/process.h"

namespace {

using namespace telekern;
using namespace telekern::kernel;
namespace tv1 = telekern::testing::v1;

class BarePing final : public tv1::Ping::CallbackService {
  grpc::ServerUnaryReactor* Ping(grpc::CallbackServerContext* context,
                                 const tv1::PingRequest* request,
                                 tv1::PingResponse* response) override {
    response->set_sequence(request->sequence());
    auto* reactor = context->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }
};

struct Result {
  double calls_per_second = 0;
  double calls_per_cpu_second = 0;  // whole process: client and server
  uint64_t failures = 0;
};

double process_cpu_seconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  auto seconds = [](const timeval& t) { return t.tv_sec + t.tv_usec / 1e6; };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

struct Endpoint {
  std::string address;
  std::string api_key;
};

// `threads` closed-loop callers per endpoint, each on its own channel, all
// endpoints at once, for `duration`.
std::vector<Result> drive_together(const std::vector<Endpoint>& endpoints, int threads,
                                   std::chrono::milliseconds duration) {
  struct Counts {
    std::atomic<uint64_t> calls{0}, failures{0};
  };
  std::vector<Counts> counts(endpoints.size());
  std::atomic<bool> stop{false};
  double cpu_before = process_cpu_seconds();
  std::vector<std::thread> workers;
  for (size_t e = 0; e < endpoints.size(); ++e) {
    for (int t = 0; t < threads; ++t) {
      workers.emplace_back([&, e, t] {
        grpc::ChannelArguments arguments;
        arguments.SetInt("telekern.bench.channel", t);  // distinct connections
        auto stub = tv1::Ping::NewStub(grpc::CreateCustomChannel(
            endpoints[e].address, grpc::InsecureChannelCredentials(), arguments));
        uint64_t sequence = 0;
        while (!stop.load(std::memory_order_relaxed)) {
          grpc::ClientContext context;
          if (!endpoints[e].api_key.empty()) context.AddMetadata("x-api-key", endpoints[e].api_key);
          tv1::PingRequest request;
          request.set_sequence(++sequence);
          tv1::PingResponse response;
          if (stub->Ping(&context, request, &response).ok()) {
            counts[e].calls.fetch_add(1, std::memory_order_relaxed);
          } else {
            counts[e].failures.fetch_add(1, std::memory_order_relaxed);
          }
        }
      });
    }
  }
  std::this_thread::sleep_for(duration);
  stop = true;
  for (auto& worker : workers) worker.join();
  double cpu = process_cpu_seconds() - cpu_before;
  std::vector<Result> results;
  for (auto& count : counts) {
    double calls = static_cast<double>(count.calls);
    results.push_back({calls / std::chrono::duration<double>(duration).count(),
                       cpu > 0 && endpoints.size() == 1 ? calls / cpu : 0, count.failures});
  }
  return results;
}

Result drive(const std::string& target, const std::string& api_key, int threads,
             std::chrono::milliseconds duration) {
  return drive_together({{target, api_key}}, threads, duration)[0];
}

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  size_t n = values.size();
  return n % 2 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

}  // namespace

int main(int argc, char** argv) {
  int threads = argc > 1 ? std::atoi(argv[1]) : 4;
  auto duration = std::chrono::milliseconds(argc > 2 ? std::atoi(argv[2]) : 8000);
  int rounds = argc > 3 ? std::atoi(argv[3]) : 16;
  configure_logging(LogFormat::kText, "error");
  // As telekernd does (kernel/main.cc); it applies to every server in here.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  grpc::EnableDefaultHealthCheckService(true);

  // Peers: bare, and bare with the kernel's metrics interceptor.
  struct Peer {
    BarePing service;
    std::unique_ptr<grpc::Server> server;
    int port = 0;
  };
  MetricsRegistry peer_metrics;
  RpcMetrics peer_rpc_metrics(peer_metrics);
  auto make_peer = [&](std::shared_ptr<grpc::ServerCredentials> credentials, bool interceptor) {
    auto peer = std::make_unique<Peer>();
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", credentials, &peer->port);
    builder.RegisterService(&peer->service);
    if (interceptor) {
      std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> creators;
      creators.push_back(peer_rpc_metrics.interceptor_factory());
      builder.experimental().SetInterceptorCreators(std::move(creators));
    }
    peer->server = builder.BuildAndStart();
    return peer;
  };
  auto bare = make_peer(grpc::InsecureServerCredentials(), false);
  auto intercepted = make_peer(grpc::InsecureServerCredentials(), true);

  // Full kernel path with auth on.
  telekern::testing::TempDir dir("kernel-bench");
  const std::string key = "bench-key";
  auto started = BenchKernel::start(dir.path(), key);
  if (!started.ok()) {
    std::cerr << started.status() << "\n";
    return 1;
  }
  BenchKernel& kernel = **started;
  auto& config = kernel.config;
  auto& metrics = kernel.metrics;
  auto& manager = kernel.manager;
  // A second kernel with no modules that serves the ping handler itself.
  BarePing kernel_ping;
  auto direct_config = config;
  direct_config.load = {};
  direct_config.modules_dir = dir.path() / "no-modules";
  direct_config.data_dir = dir.path() / "direct-data";
  ModuleManager kernel_manager(direct_config, metrics, kernel.rpc_metrics, kernel.authenticator);
  if (auto status = kernel_manager.start({bind_service<tv1::Ping>(kernel_ping)}); !status.ok()) {
    std::cerr << status << "\n";
    return 1;
  }

  struct Target {
    const char* label;
    std::string address;
    std::string api_key;
    std::vector<double> rates;
    std::vector<double> efficiency;
    uint64_t failures = 0;
  };
  auto local = [](int port) { return "127.0.0.1:" + std::to_string(port); };
  std::vector<Target> targets = {
      {"bare grpc++ server", local(bare->port), ""},
      {"module service (auth+metrics+route)", local(manager.port()), key},
      {"kernel service (auth+metrics)", local(kernel_manager.port()), key},
      {"bare + metrics interceptor", local(intercepted->port), ""},
  };
  for (auto& target : targets) drive(target.address, target.api_key, threads, duration / 10);
  auto slice = duration / rounds;
  for (int round = 0; round < rounds; ++round) {
    for (size_t i = 0; i < targets.size(); ++i) {
      auto& target = targets[(i + round) % targets.size()];
      auto result = drive(target.address, target.api_key, threads, slice);
      target.rates.push_back(result.calls_per_second);
      target.efficiency.push_back(result.calls_per_cpu_second);
      target.failures += result.failures;
    }
  }
  std::printf("unary no-op, %d closed-loop callers, %d rounds of %lld ms per target\n", threads,
              rounds, static_cast<long long>(slice.count()));
  uint64_t failures = 0;
  for (const auto& target : targets) {
    std::printf("  %-38s: %8.0f calls/s, %8.0f calls per CPU-second (%llu failed)\n", target.label,
                median(target.rates), median(target.efficiency),
                static_cast<unsigned long long>(target.failures));
    failures += target.failures;
  }
  for (size_t t = 1; t < targets.size(); ++t) {
    std::vector<double> ratios, cpu_ratios;
    for (int round = 0; round < rounds; ++round) {
      ratios.push_back(targets[t].rates[round] / targets[0].rates[round]);
      cpu_ratios.push_back(targets[t].efficiency[round] / targets[0].efficiency[round]);
    }
    auto [low, high] = std::minmax_element(ratios.begin(), ratios.end());
    std::printf("  ratio %-32s: %5.2f median (%.2f-%.2f over rounds), per CPU-second %.2f%s\n",
                targets[t].label, median(ratios), *low, *high, median(cpu_ratios),
                t <= 2 ? "  target >= 0.90" : "");
  }
  manager.shutdown();
  kernel_manager.shutdown();
  for (auto* peer : {bare.get(), intercepted.get()}) peer->server->Shutdown();
  return failures == 0 ? 0 : 1;
}
