// Unary no-op over the HTTP/JSON gateway (HTTP/1.1 keep-alive, JSON body,
// API-key auth, call gate, metrics, the ping module's handler run as a local
// call, without gRPC) against
// the same JSON answered by a bare cpp-httplib handler in this process, and
// against native gRPC to the same kernel. Targets run one at a time, once per
// round in a rotated order; ratios are medians over the rounds with their
// spread. Prints calls/s and ratios (gateway target >= 0.80 of bare).
// Also prints, per target, context switches and CPU microseconds per call
// over every thread of the process (and by thread name with `threads`).
// Arguments: [callers per target] [ms per target] [rounds] [threads]; with
// TELEKERN_BENCH_ONLY=TEXT only targets whose label holds TEXT run (profiling).
#include <absl/synchronization/mutex.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/health_check_service_interface.h>
#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <fstream>
#include <functional>
#include <iostream>
#include <nlohmann/json.hpp>
#include <thread>

#include "kernel/auth/call_gate.h"
#include "kernel/http_endpoint.h"
#include "kernel/kernel_config.h"
#include "kernel/kernel_service.h"
#include "kernel/lifecycle/module_manager.h"
#include "telekern/log.h"
#include "telekern/testing/v1/ping.grpc.pb.h"
#include "tests/bench/bench_kernel.h"
#include "tests/bench/thread_census.h"
#include "tests/support/process.h"

namespace {

using namespace telekern;
using namespace telekern::kernel;
namespace tv1 = telekern::testing::v1;

// One caller's loop: returns whether a call succeeded.
using CallerFactory = std::function<std::function<bool(uint64_t)>()>;

// The threads' work while calls ran, summed over rounds, and the calls made.
struct Census {
  std::map<std::string, bench::ThreadCounts> by_name;
  uint64_t calls = 0;
  void add(const std::map<std::string, bench::ThreadCounts>& delta, uint64_t more_calls) {
    calls += more_calls;
    bench::ThreadCensus::add(by_name, delta);
  }
};

double drive(const CallerFactory& make_caller, int threads, std::chrono::milliseconds duration,
             uint64_t* failures, Census* census = nullptr) {
  std::atomic<uint64_t> calls{0}, failed{0};
  std::atomic<bool> stop{false};
  std::vector<std::thread> workers;
  auto before = bench::ThreadCensus::take();
  uint64_t calls_before = 0;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&] {
      pthread_setname_np(pthread_self(), "bench-caller");
      auto call = make_caller();
      uint64_t sequence = 0;
      while (!stop.load(std::memory_order_relaxed)) {
        if (call(++sequence)) {
          calls.fetch_add(1, std::memory_order_relaxed);
        } else {
          failed.fetch_add(1, std::memory_order_relaxed);
        }
      }
    });
  }
  std::this_thread::sleep_for(duration);
  if (census)
    census->add(bench::ThreadCensus::delta(before, bench::ThreadCensus::take()),
                calls.load() + failed.load() - calls_before);
  stop = true;
  for (auto& worker : workers) worker.join();
  *failures += failed;
  return static_cast<double>(calls) / std::chrono::duration<double>(duration).count();
}

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  size_t n = values.size();
  return n % 2 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

CallerFactory http_caller(int port, std::string path, std::string api_key) {
  return [=] {
    auto client = std::make_shared<httplib::Client>("127.0.0.1", port);
    client->set_keep_alive(true);
    client->set_tcp_nodelay(true);
    httplib::Headers headers;
    if (!api_key.empty()) headers.emplace("X-API-Key", api_key);
    return std::function<bool(uint64_t)>([client, headers, path](uint64_t sequence) {
      auto result = client->Post(
          path, headers, "{\"sequence\":\"" + std::to_string(sequence) + "\"}", "application/json");
      return result && result->status == 200 && result->body.find("sequence") != std::string::npos;
    });
  };
}

}  // namespace

int main(int argc, char** argv) {
  int threads = argc > 1 ? std::atoi(argv[1]) : 4;
  auto duration = std::chrono::milliseconds(argc > 2 ? std::atoi(argv[2]) : 8000);
  int rounds = argc > 3 ? std::atoi(argv[3]) : 8;
  configure_logging(LogFormat::kText, "error");
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  grpc::EnableDefaultHealthCheckService(true);

  // The bare peer: the same JSON from a plain cpp-httplib handler.
  httplib::Server bare;
  bare.Post("/rpc/telekern.testing.v1.Ping/Ping",
            [](const httplib::Request& request, httplib::Response& response) {
              auto body = nlohmann::json::parse(request.body, nullptr, false);
              std::string sequence = body.is_object() ? body.value("sequence", "0") : "0";
              response.set_content("{\"sequence\":\"" + sequence + "\"}", "application/json");
            });
  bare.set_tcp_nodelay(true);  // as the kernel's endpoint does
  int bare_port = bare.bind_to_any_port("127.0.0.1");
  std::thread bare_thread([&] { bare.listen_after_bind(); });

  telekern::testing::TempDir dir("gateway-bench");
  const std::string key = "bench-key";
  auto started = BenchKernel::start(dir.path(), key);
  if (!started.ok()) {
    std::cerr << started.status() << "\n";
    return 1;
  }
  BenchKernel& kernel = **started;
  auto& metrics = kernel.metrics;
  auto& manager = kernel.manager;
  HttpEndpoint endpoint(
      metrics, HttpHandlers{[](bool) { return std::string("{}"); },
                            [](std::string*) { return true; }, nullptr, [] { return true; }});
  // As telekernd wires it: credentials checked before the body is parsed,
  // then again by the call gate; no rate limits (they would cap the bench).
  endpoint.enable_gateway(
      {[&] { return manager.gateway_channel(); }, [&] { return manager.service_names(); },
       [&](std::string_view api_key, std::string_view authorization, std::string_view path) {
         return auth::check_credentials(*kernel.authenticator, api_key, authorization, path);
       },
       [&] { return manager.local_calls(); }},
      {.per_credential = {}, .per_address = {}});
  if (auto status = endpoint.start("127.0.0.1:0"); !status.ok()) {
    std::cerr << status << "\n";
    return 1;
  }

  struct Target {
    const char* label;
    CallerFactory caller;
    std::vector<double> rates;
    uint64_t failures = 0;
    Census census;
  };
  const std::string grpc_address = "127.0.0.1:" + std::to_string(manager.port());
  std::vector<Target> targets = {
      {"bare cpp-httplib handler (JSON)",
       http_caller(bare_port, "/rpc/telekern.testing.v1.Ping/Ping", "")},
      {"gateway POST /rpc (JSON, auth)",
       http_caller(endpoint.port(), "/rpc/telekern.testing.v1.Ping/Ping", key)},
      {"native gRPC, same kernel",
       [&] {
         auto stub = std::shared_ptr<tv1::Ping::Stub>(tv1::Ping::NewStub(
             grpc::CreateChannel(grpc_address, grpc::InsecureChannelCredentials())));
         return std::function<bool(uint64_t)>([stub, key](uint64_t sequence) {
           grpc::ClientContext context;
           context.AddMetadata("x-api-key", key);
           tv1::PingRequest request;
           request.set_sequence(sequence);
           tv1::PingResponse response;
           return stub->Ping(&context, request, &response).ok();
         });
       }},
  };
  if (const char* only = std::getenv("TELEKERN_BENCH_ONLY"); only != nullptr && *only != 0) {
    std::erase_if(targets, [&](const Target& target) {
      return std::string_view(target.label).find(only) == std::string_view::npos;
    });
  }
  uint64_t warmup_failures = 0;
  for (auto& target : targets) drive(target.caller, threads, duration / 10, &warmup_failures);
  auto slice = duration / rounds;
  for (int round = 0; round < rounds; ++round) {
    for (size_t i = 0; i < targets.size(); ++i) {
      auto& target = targets[(i + round) % targets.size()];
      target.rates.push_back(
          drive(target.caller, threads, slice, &target.failures, &target.census));
    }
  }
  std::printf("unary no-op, %d closed-loop callers, %d rounds of %lld ms per target\n", threads,
              rounds, static_cast<long long>(slice.count()));
  uint64_t failures = 0;
  for (const auto& target : targets) {
    std::printf("  %-34s: %8.0f calls/s (%llu failed)\n", target.label, median(target.rates),
                static_cast<unsigned long long>(target.failures));
    failures += target.failures;
  }
  bool by_thread = argc > 4 && std::string(argv[4]) == "threads";
  for (const auto& target : targets) {
    uint64_t switches = 0, cpu_ns = 0;
    for (const auto& [name, counts] : target.census.by_name) {
      switches += counts.switches;
      cpu_ns += counts.cpu_ns;
    }
    double calls = std::max<double>(1, static_cast<double>(target.census.calls));
    std::printf("  %-34s: %5.1f context switches, %6.1f us CPU per call (all threads)\n",
                target.label, switches / calls, cpu_ns / calls / 1000);
    if (!by_thread) continue;
    for (const auto& [name, counts] : target.census.by_name) {
      if (counts.switches / calls < 0.05 && counts.cpu_ns / calls < 500) continue;
      std::printf("      %-16s %5.2f switches (%5.2f voluntary) %6.1f us CPU per call\n",
                  name.c_str(), counts.switches / calls, counts.voluntary / calls,
                  counts.cpu_ns / calls / 1000);
    }
  }
  auto ratio = [&](size_t a, size_t b, const char* label, const char* note) {
    std::vector<double> ratios;
    for (int round = 0; round < rounds; ++round) {
      ratios.push_back(targets[a].rates[round] / targets[b].rates[round]);
    }
    auto [low, high] = std::minmax_element(ratios.begin(), ratios.end());
    std::printf("  ratio %-28s: %5.2f median (%.2f-%.2f over rounds)%s\n", label, median(ratios),
                *low, *high, note);
  };
  if (targets.size() == 3) {
    ratio(1, 0, "gateway / bare httplib", "  target >= 0.80");
    ratio(1, 2, "gateway / native gRPC", "");
  }
  endpoint.stop();
  bare.stop();
  bare_thread.join();
  manager.shutdown();
  return failures == 0 ? 0 : 1;
}
