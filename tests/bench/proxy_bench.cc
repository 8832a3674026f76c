// Two figures for the proxy module, each beside its peer from the same run:
//  1. produce throughput through a proxy telekernd in front of one broker
//     telekernd vs the same client straight to that broker (target >= 0.85),
//     and through a second proxy forwarding each produce as a unary call
//     (produce_streams: 0) to show what the stream lanes bring;
//  2. placement lookups per second on one core: the ring (150 virtual nodes)
//     and the Maglev table vs jump consistent hash (Lamping & Veach), the
//     usual baseline (target >= 10 M/s).
//  3. the floor under figure 1: a bare gRPC forwarder with no telekern code
//     (grpc_forwarder.cc: gRPC's async API on one thread, the same batching
//     lanes), alone in its process and beside an idle callback service, as
//     every telekernd has one; see the proxy README for what it shows.
// Targets run once per round in a rotated order; figures are medians over the
// rounds with the spread of the per-round ratios. Then, per target, the CPU
// time and context switches per produce call of this client and of each
// daemon (by thread name), and how busy the machine was: on a machine the
// three share, the ratio follows (client + broker) / (client + broker +
// proxy) CPU per call.
// Arguments: [rounds] [ms per target per round] [callers].
#include <grpcpp/create_channel.h>
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <thread>
#include <vector>

#include "hash.h"
#include "placement.h"
#include "telekern/broker/v1/broker.grpc.pb.h"
#include "tests/bench/thread_census.h"
#include "tests/support/process.h"
#include "tests/support/telekernd.h"

namespace {

using namespace telekern;
using namespace std::chrono_literals;
namespace bv1 = telekern::broker::v1;

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  if (values.empty()) return 0;
  size_t mid = values.size() / 2;
  return values.size() % 2 ? values[mid] : (values[mid - 1] + values[mid]) / 2;
}

std::pair<double, double> spread(std::vector<double> values) {
  auto [low, high] = std::minmax_element(values.begin(), values.end());
  return {*low, *high};
}

int32_t jump_consistent_hash(uint64_t key, int32_t buckets) {
  int64_t b = -1, j = 0;
  while (j < buckets) {
    b = j;
    key = key * 2862933555777941757ULL + 1;
    j = static_cast<int64_t>((b + 1) * (double(1LL << 31) / double((key >> 33) + 1)));
  }
  return static_cast<int32_t>(b);
}

// CPU and context switches per process (by thread name) summed over a
// target's rounds, and the produce calls made meanwhile.
struct CpuTally {
  std::map<std::string, std::map<std::string, bench::ThreadCounts>> by_process;
  uint64_t calls = 0;
  uint64_t machine_busy = 0, machine_total = 0;  // jiffies, all CPUs
};

// The processes a run is measured in: label -> pid ("self" for this one).
using Processes = std::vector<std::pair<std::string, std::string>>;

// Busy and total jiffies of the whole machine so far (/proc/stat).
std::pair<uint64_t, uint64_t> machine_jiffies() {
  std::ifstream stat("/proc/stat");
  std::string cpu;
  stat >> cpu;
  uint64_t value = 0, busy = 0, total = 0;
  for (int field = 0; stat >> value && field < 8; ++field) {
    total += value;
    if (field != 3 && field != 4) busy += value;  // idle, iowait
  }
  return {busy, total};
}

// CPU time and context switches of this process so far, ended threads included.
bench::ThreadCounts process_counts() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  auto ns = [](const timeval& t) { return uint64_t(t.tv_sec) * 1000000000 + t.tv_usec * 1000; };
  bench::ThreadCounts counts;
  counts.name = "callers";
  counts.cpu_ns = ns(usage.ru_utime) + ns(usage.ru_stime);
  counts.voluntary = usage.ru_nvcsw;
  counts.switches = usage.ru_nvcsw + usage.ru_nivcsw;
  return counts;
}

// Records per second produced by `callers` closed-loop producers for
// `duration`; when `tally` is given, what each of `processes` spent on it.
double produce_rate(const std::string& address, int callers, std::chrono::milliseconds duration,
                    uint64_t* failures, const Processes& processes = {},
                    CpuTally* tally = nullptr) {
  std::atomic<uint64_t> records{0}, failed{0};
  std::atomic<bool> stop{false};
  std::vector<std::map<int, bench::ThreadCounts>> before;
  for (const auto& [_, pid] : processes) before.push_back(bench::ThreadCensus::take(pid));
  auto client_before = process_counts();
  auto machine_before = machine_jiffies();
  std::vector<std::thread> workers;
  for (int c = 0; c < callers; ++c) {
    workers.emplace_back([&, c] {
      grpc::ChannelArguments args;
      args.SetInt("telekern.bench.caller", c);  // a channel (connection) per caller
      auto stub = bv1::Broker::NewStub(
          grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args));
      bv1::ProduceRequest request;
      request.set_topic("bench");
      request.set_durability(bv1::DURABILITY_NONE);
      for (int i = 0; i < 100; ++i) request.add_records()->set_value(std::string(100, 'x'));
      uint32_t partition = c;
      while (!stop.load(std::memory_order_relaxed)) {
        request.set_partition(partition++ % 8);
        grpc::ClientContext context;
        context.set_deadline(std::chrono::system_clock::now() + 10s);
        bv1::ProduceResponse response;
        if (stub->Produce(&context, request, &response).ok()) {
          records += 100;
        } else {
          ++failed;
        }
      }
    });
  }
  auto start = std::chrono::steady_clock::now();
  std::this_thread::sleep_for(duration);
  stop = true;
  for (auto& worker : workers) worker.join();
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (tally) {
    // The callers' threads have ended: this process counts as a whole.
    auto client_after = process_counts();
    auto& client = tally->by_process["bench client"]["callers"];
    client.name = "callers";
    client.cpu_ns += client_after.cpu_ns - client_before.cpu_ns;
    client.voluntary += client_after.voluntary - client_before.voluntary;
    client.switches += client_after.switches - client_before.switches;
    for (size_t p = 0; p < processes.size(); ++p) {
      auto delta =
          bench::ThreadCensus::delta(before[p], bench::ThreadCensus::take(processes[p].second));
      bench::ThreadCensus::add(tally->by_process[processes[p].first], delta);
    }
    tally->calls += records.load() / 100 + failed.load();
    auto machine_after = machine_jiffies();
    tally->machine_busy += machine_after.first - machine_before.first;
    tally->machine_total += machine_after.second - machine_before.second;
  }
  *failures += failed.load();
  return records.load() / seconds;
}

// Lookups per second of `lookup` over precomputed partition hashes.
template <typename Lookup>
double lookup_rate(const std::vector<uint64_t>& keys, std::chrono::milliseconds duration,
                   Lookup lookup) {
  uint64_t done = 0, sink = 0;
  auto start = std::chrono::steady_clock::now();
  auto until = start + duration;
  while (std::chrono::steady_clock::now() < until) {
    for (uint64_t key : keys) sink += lookup(key);
    done += keys.size();
  }
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (sink == 42) std::printf(" ");  // keeps the loop from being optimised away
  return done / seconds;
}

}  // namespace

int main(int argc, char** argv) {
  int rounds = argc > 1 ? std::atoi(argv[1]) : 8;
  auto slice = std::chrono::milliseconds(argc > 2 ? std::atoi(argv[2]) : 1000);
  int callers = argc > 3 ? std::atoi(argv[3]) : 16;

  // ---- placement lookups ----
  std::vector<uint64_t> keys;
  for (uint32_t p = 0; p < 4096; ++p) keys.push_back(proxy::partition_hash("bench", p));
  std::vector<std::string> members;
  for (int i = 0; i < 4; ++i) members.push_back("msg-queue-" + std::to_string(i) + ":7070");
  proxy::Ring ring(members, 150);
  proxy::Maglev maglev(members);
  struct LookupTarget {
    const char* label;
    std::function<double()> run;
    std::vector<double> rates;
  };
  auto lookup_slice = std::max(slice / 4, std::chrono::milliseconds(50));
  std::vector<LookupTarget> lookups = {
      {"jump consistent hash (baseline)",
       [&] {
         return lookup_rate(keys, lookup_slice,
                            [](uint64_t k) { return jump_consistent_hash(k, 4); });
       }},
      {"ring, 4 x 150 vnodes",
       [&] { return lookup_rate(keys, lookup_slice, [&](uint64_t k) { return ring.owner(k); }); }},
      {"maglev, 65537 slots",
       [&] {
         return lookup_rate(keys, lookup_slice, [&](uint64_t k) { return maglev.owner(k); });
       }},
      {"ring + hashing \"topic/partition\"",
       [&] {
         return lookup_rate(keys, lookup_slice, [&](uint64_t k) {
           return ring.owner(proxy::partition_hash("bench", static_cast<uint32_t>(k & 4095)));
         });
       }},
  };
  for (int round = 0; round < rounds; ++round) {
    for (size_t i = 0; i < lookups.size(); ++i) {
      auto& target = lookups[(i + round) % lookups.size()];
      target.rates.push_back(target.run());
    }
  }
  std::printf("placement lookups, one thread, %d rounds of %lld ms per target\n", rounds,
              static_cast<long long>(lookup_slice.count()));
  for (auto& target : lookups) {
    std::vector<double> ratios;
    for (int r = 0; r < rounds; ++r) ratios.push_back(target.rates[r] / lookups[0].rates[r]);
    auto [low, high] = spread(ratios);
    std::printf("  %-34s: %7.1f M lookups/s (vs jump %.2f, %.2f-%.2f over rounds)\n", target.label,
                median(target.rates) / 1e6, median(ratios), low, high);
  }

  // ---- produce through the proxy vs direct ----
  testing::TelekerndOptions broker_options;
  broker_options.modules_dir = std::string(TELEKERN_BUILD_DIR) + "/modules";
  broker_options.load = {"broker"};
  testing::Telekernd broker(broker_options);
  if (!broker.ready()) {
    std::fprintf(stderr, "broker telekernd did not start:\n%s\n", broker.log().c_str());
    return 1;
  }
  // Two proxies in front of the same broker: the module's defaults (produces
  // over ProduceStream lanes) and unary forwarding (produce_streams: 0).
  auto start_proxy = [&](const std::string& extra) {
    testing::TelekerndOptions options;
    options.modules_dir = broker_options.modules_dir;
    options.load = {"proxy"};
    options.config_yaml =
        "modules:\n  proxy:\n    upstreams: [" + broker.grpc_address() + "]\n" + extra;
    return std::make_unique<testing::Telekernd>(options);
  };
  auto proxy = start_proxy("");
  auto unary_proxy = start_proxy("    produce_streams: 0\n");
  for (auto* daemon : {proxy.get(), unary_proxy.get()}) {
    if (!daemon->ready()) {
      std::fprintf(stderr, "proxy telekernd did not start:\n%s\n", daemon->log().c_str());
      return 1;
    }
  }
  struct Target {
    const char* label;
    std::string address;
    std::vector<double> rates;
    CpuTally tally;
  };
  Processes processes = {{"broker", std::to_string(broker.process().pid())},
                         {"proxy", std::to_string(proxy->process().pid())},
                         {"unary proxy", std::to_string(unary_proxy->process().pid())}};
  std::vector<Target> targets = {
      {"direct to the broker", broker.grpc_address(), {}},
      {"through the proxy", proxy->grpc_address(), {}},
      {"through the proxy, unary forwarding", unary_proxy->grpc_address(), {}},
  };
  // The floor: the bare forwarder, alone and beside a callback service.
  testing::TempDir scratch("proxy-bench");
  std::vector<std::unique_ptr<testing::Process>> forwarders;
  for (bool callback_service : {false, true}) {
    auto port_file = scratch.path() / (callback_service ? "port-callback" : "port-alone");
    std::vector<std::string> argv = {
        std::string(TELEKERN_BUILD_DIR) + "/bench-tools/telekern_grpc_forwarder",
        broker.grpc_address(), port_file.string()};
    if (callback_service) argv.push_back("--callback-service");
    forwarders.push_back(std::make_unique<testing::Process>(argv));
    std::string port;
    if (!testing::wait_for([&] { return bool(std::ifstream(port_file) >> port); }, 10s)) {
      std::fprintf(stderr, "%s did not start\n", argv[0].c_str());
      return 1;
    }
    const char* name = callback_service ? "fwd+callback" : "forwarder";
    targets.push_back(
        {callback_service ? "bare forwarder + callback service" : "bare forwarder, alone",
         "127.0.0.1:" + port,
         {}});
    processes.push_back({name, std::to_string(forwarders.back()->pid())});
  }
  uint64_t failures = 0;
  for (auto& target : targets) produce_rate(target.address, callers, 300ms, &failures);  // warm up
  failures = 0;
  for (int round = 0; round < rounds; ++round) {
    for (size_t i = 0; i < targets.size(); ++i) {
      auto& target = targets[(i + round) % targets.size()];
      target.rates.push_back(
          produce_rate(target.address, callers, slice, &failures, processes, &target.tally));
    }
  }
  std::printf(
      "produce, batches of 100 x 100-byte records (DURABILITY_NONE), %d closed-loop callers, %d "
      "rounds of %lld ms per target\n",
      callers, rounds, static_cast<long long>(slice.count()));
  for (const auto& target : targets) {
    std::printf("  %-36s: %9.0f records/s\n", target.label, median(target.rates));
  }
  auto ratio = [&](size_t a, size_t b, const char* label, const char* note) {
    std::vector<double> ratios;
    for (int r = 0; r < rounds; ++r) ratios.push_back(targets[a].rates[r] / targets[b].rates[r]);
    auto [low, high] = spread(ratios);
    std::printf("  ratio %-30s: %5.2f median (%.2f-%.2f over rounds)%s\n", label, median(ratios),
                low, high, note);
  };
  ratio(1, 0, "proxy / direct", "; target 0.85");
  ratio(2, 0, "unary forwarding / direct", "");
  ratio(3, 0, "bare forwarder, alone / direct", "");
  ratio(4, 0, "bare fwd + callback / direct", "");
  std::printf("  failed calls: %llu\n", static_cast<unsigned long long>(failures));
  // Where the CPU goes: per produce call, each process (and its busiest
  // thread groups) over all rounds of a target.
  std::printf("CPU per produce call (100 records), all rounds; by process, then thread name\n");
  for (const auto& target : targets) {
    uint64_t calls = std::max<uint64_t>(target.tally.calls, 1);
    std::printf(
        "  %s (%llu calls; machine busy %.0f%% of %u CPUs):\n", target.label,
        static_cast<unsigned long long>(calls),
        100.0 * target.tally.machine_busy / std::max<uint64_t>(target.tally.machine_total, 1),
        std::thread::hardware_concurrency());
    for (const auto& [process, threads] : target.tally.by_process) {
      uint64_t cpu_ns = 0, switches = 0;
      std::vector<bench::ThreadCounts> groups;
      for (const auto& [_, counts] : threads) {
        cpu_ns += counts.cpu_ns;
        switches += counts.switches;
        groups.push_back(counts);
      }
      if (cpu_ns < calls * 500) continue;  // idle in this target (< 0.5 us per call)
      std::printf("    %-12s: %6.1f us CPU, %5.2f context switches per call\n", process.c_str(),
                  cpu_ns / 1e3 / calls, double(switches) / calls);
      std::sort(groups.begin(), groups.end(),
                [](const auto& a, const auto& b) { return a.cpu_ns > b.cpu_ns; });
      for (size_t g = 0; g < groups.size() && g < 4; ++g) {
        if (groups[g].cpu_ns < calls * 500) break;
        std::printf("      %-16s: %6.1f us, %5.2f switches\n", groups[g].name.c_str(),
                    groups[g].cpu_ns / 1e3 / calls, double(groups[g].switches) / calls);
      }
    }
  }
  return failures == 0 ? 0 : 1;
}
