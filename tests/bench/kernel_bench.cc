// Unary no-op RPC throughput through the kernel against a bare grpc++ server
// with the same handler, all in this process and driven by the same client
// code. Two kernel paths are measured: a service the kernel serves itself
// (call gate with API-key auth + RPC metrics interceptor), and a module's
// service (the same plus the module router and the module's in-process
// server). Prints calls/s for each and the ratios (target >= 0.90).
#include <grpcpp/create_channel.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/server_builder.h>

#include <atomic>
#include <fstream>
#include <iostream>
#include <thread>

#include "kernel/auth/crypto.h"
#include "kernel/kernel_config.h"
#include "kernel/kernel_service.h"
#include "kernel/module_manager.h"
#include "telekern/log.h"
#include "telekern/testing/v1/ping.grpc.pb.h"
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
  uint64_t failures = 0;
};

// `threads` closed-loop callers, each on its own channel, for `duration`.
Result drive(const std::string& target, const std::string& api_key, int threads,
             std::chrono::milliseconds duration) {
  std::atomic<uint64_t> calls{0}, failures{0};
  std::atomic<bool> stop{false};
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      grpc::ChannelArguments arguments;
      arguments.SetInt("telekern.bench.channel", t);  // distinct connections
      auto stub = tv1::Ping::NewStub(
          grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), arguments));
      uint64_t sequence = 0;
      while (!stop.load(std::memory_order_relaxed)) {
        grpc::ClientContext context;
        if (!api_key.empty()) context.AddMetadata("x-api-key", api_key);
        tv1::PingRequest request;
        request.set_sequence(++sequence);
        tv1::PingResponse response;
        if (stub->Ping(&context, request, &response).ok()) {
          calls.fetch_add(1, std::memory_order_relaxed);
        } else {
          failures.fetch_add(1, std::memory_order_relaxed);
        }
      }
    });
  }
  std::this_thread::sleep_for(duration);
  stop = true;
  for (auto& worker : workers) worker.join();
  return {static_cast<double>(calls) / std::chrono::duration<double>(duration).count(), failures};
}

}  // namespace

int main(int argc, char** argv) {
  int threads = argc > 1 ? std::atoi(argv[1]) : 4;
  auto duration = std::chrono::milliseconds(argc > 2 ? std::atoi(argv[2]) : 3000);
  configure_logging(LogFormat::kText, "warn");
  grpc::EnableDefaultHealthCheckService(true);

  // Bare server.
  BarePing bare_service;
  grpc::ServerBuilder builder;
  int bare_port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &bare_port);
  builder.RegisterService(&bare_service);
  auto bare = builder.BuildAndStart();

  // Full kernel path with auth on.
  telekern::testing::TempDir dir("kernel-bench");
  const std::string key = "bench-key";
  {
    std::ofstream(dir.path() / "telekernd.yaml")
        << "listen: 127.0.0.1:0\nhttp: ''\nload: [" << TELEKERN_BUILD_DIR
        << "/test-modules/telekern_ping.so]\nauth:\n  api_keys:\n    - {name: bench, sha256: "
        << auth::sha256_hex(key) << ", role: viewer}\n";
  }
  auto config = load_kernel_config((dir.path() / "telekernd.yaml").string(), {},
                                   {"", "", "", (dir.path() / "data").string()}, "");
  if (!config.ok()) {
    std::cerr << config.status() << "\n";
    return 1;
  }
  // The kernel serves the same handler itself under another service name, so
  // the gate + metrics path can be measured without the router.
  MetricsRegistry metrics;
  RpcMetrics rpc_metrics(metrics);
  BarePing kernel_ping;
  auto settings =
      auth::parse_auth_settings(config->api_keys, config->users, "", std::chrono::seconds(3600));
  auto authenticator = std::make_shared<const auth::Authenticator>(*settings, "internal");
  ModuleManager manager(*config, metrics, rpc_metrics, authenticator);
  KernelService kernel_service(manager, [&] { return authenticator; }, {"bench", "bench", "", {}});
  if (auto status = manager.start({bind_service<telekern::kernel::v1::Kernel>(kernel_service)});
      !status.ok()) {
    std::cerr << status << "\n";
    return 1;
  }
  // A second kernel with no modules that serves the ping handler itself.
  auto direct_config = *config;
  direct_config.load = {};
  direct_config.modules_dir = dir.path() / "no-modules";
  direct_config.data_dir = dir.path() / "direct-data";
  ModuleManager direct_manager(direct_config, metrics, rpc_metrics, authenticator);
  if (auto status = direct_manager.start({bind_service<tv1::Ping>(kernel_ping)}); !status.ok()) {
    std::cerr << status << "\n";
    return 1;
  }
  std::string direct_target = "127.0.0.1:" + std::to_string(direct_manager.port());
  std::string kernel_target = "127.0.0.1:" + std::to_string(manager.port());
  std::string bare_target = "127.0.0.1:" + std::to_string(bare_port);

  // Warm up both, then measure alternately to spread machine noise.
  drive(bare_target, "", threads, std::chrono::milliseconds(300));
  drive(kernel_target, key, threads, std::chrono::milliseconds(300));
  drive(direct_target, key, threads, std::chrono::milliseconds(300));
  Result bare_result, kernel_result, direct_result;
  auto add = [](Result& total, const Result& part) {
    total.calls_per_second += part.calls_per_second / 2;
    total.failures += part.failures;
  };
  for (int round = 0; round < 2; ++round) {
    add(bare_result, drive(bare_target, "", threads, duration / 2));
    add(direct_result, drive(direct_target, key, threads, duration / 2));
    add(kernel_result, drive(kernel_target, key, threads, duration / 2));
  }
  double ratio = kernel_result.calls_per_second / bare_result.calls_per_second;
  double direct_ratio = direct_result.calls_per_second / bare_result.calls_per_second;
  std::printf("unary no-op, %d closed-loop callers, %lld ms per side\n", threads,
              static_cast<long long>(duration.count()));
  std::printf("  bare grpc++ server                    : %10.0f calls/s (%llu failed)\n",
              bare_result.calls_per_second, static_cast<unsigned long long>(bare_result.failures));
  std::printf("  kernel service (auth+metrics)         : %10.0f calls/s (%llu failed)\n",
              direct_result.calls_per_second,
              static_cast<unsigned long long>(direct_result.failures));
  std::printf("  module service (auth+metrics+router)  : %10.0f calls/s (%llu failed)\n",
              kernel_result.calls_per_second,
              static_cast<unsigned long long>(kernel_result.failures));
  std::printf("  ratio kernel service / bare           : %10.2f (target >= 0.90)\n", direct_ratio);
  std::printf("  ratio module service / bare           : %10.2f (target >= 0.90)\n", ratio);
  manager.shutdown();
  direct_manager.shutdown();
  bare->Shutdown();
  return kernel_result.failures + bare_result.failures + direct_result.failures == 0 ? 0 : 1;
}
