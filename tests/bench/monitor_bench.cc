// Monitor backend benchmark at 1,000 simulated nodes:
//  1. samples ingested per second by the engine (store + liveness + threshold
//     evaluation + gauges) on SQLite and on PostgreSQL, each against its peer
//     measured in the same run: the bare store insert of the same batches
//     (what any backend writing these rows pays); rotated rounds, medians
//     with min-max.
//  2. threshold evaluation cost per sample (two global thresholds per node).
//  3. alert latency: every node breaches at t0 with `for: 1s`; the time from
//     t0 + 1s until its FIRING event reaches a WatchAlerts subscription, p50
//     and p99 (target p99 < 1 s), with samples arriving every 100 ms.
// Usage: telekern_monitor_bench [rounds] [batches_per_round] [all|sqlite]
#include <spdlog/sinks/null_sink.h>

#include <algorithm>
#include <cstdio>
#include <random>
#include <thread>

#include "alert_book.h"
#include "monitor_engine.h"
#include "telekern/proto_time.h"
#include "tests/support/postgres_server.h"

namespace telekern::monitor {
namespace {

using namespace std::chrono_literals;
using Steady = std::chrono::steady_clock;
constexpr int kNodes = 1000;

std::vector<v1::MetricSample> batch(int round, std::mt19937& random) {
  std::uniform_real_distribution<double> percent(0, 80);
  std::vector<v1::MetricSample> out(kNodes);
  auto time = TimePoint(std::chrono::seconds(1'800'000'000)) + std::chrono::milliseconds(round);
  for (int node = 0; node < kNodes; ++node) {
    auto& s = out[node];
    s.set_node_id("node-" + std::to_string(node));
    s.set_node_name("Node " + std::to_string(node));
    *s.mutable_time() = to_timestamp(time);
    s.set_cpu_percent(percent(random));
    s.set_memory_percent(percent(random));
    s.set_disk_read_mbps(percent(random) / 10);
    s.set_network_rx_mbps(percent(random));
    s.set_load1(1.5);
    s.mutable_interval()->set_seconds(5);
  }
  return out;
}

void add_thresholds(MonitorEngine& engine) {
  for (const char* metric : {"cpu", "memory"}) {
    v1::UpsertThresholdRequest request;
    request.set_node_id("*");
    request.set_metric(metric);
    request.set_condition(">");
    request.set_value(90);
    request.mutable_for_()->set_seconds(30);
    (void)engine.upsert_threshold(request, "bench");
  }
}

std::shared_ptr<spdlog::logger> quiet() {
  return std::make_shared<spdlog::logger>("bench", std::make_shared<spdlog::sinks::null_sink_mt>());
}

using StoreFactory = std::function<std::unique_ptr<MonitorStore>()>;

// Samples per second through the engine, and through the bare store.
std::pair<double, double> one_round(const StoreFactory& make_store, int batches,
                                    bool engine_first) {
  std::mt19937 random(42);
  std::vector<std::vector<v1::MetricSample>> data;
  for (int b = 0; b < batches; ++b) data.push_back(batch(b, random));
  auto engine_rate = [&] {
    MetricsRegistry metrics;
    MonitorOptions options;
    options.retention = 0ms;
    TimePoint now = TimePoint(std::chrono::seconds(1'800'000'000));
    MonitorEngine engine(options, make_store(), quiet(), &metrics, [&] { return now; });
    (void)engine.load();
    add_thresholds(engine);
    // The consumer hands ingest() the batch it parsed; copying it is not
    // part of the work measured.
    auto batches_to_ingest = data;
    auto start = Steady::now();
    for (auto& b : batches_to_ingest) {
      if (auto s = engine.ingest(std::move(b)); !s.ok())
        std::fprintf(stderr, "ingest: %s\n", s.ToString().c_str());
    }
    return batches * kNodes / std::chrono::duration<double>(Steady::now() - start).count();
  };
  auto store_rate = [&] {
    auto store = make_store();
    auto start = Steady::now();
    for (auto& b : data) (void)store->insert_samples(b);
    return batches * kNodes / std::chrono::duration<double>(Steady::now() - start).count();
  };
  double engine = 0, bare = 0;
  if (engine_first) {
    engine = engine_rate();
    bare = store_rate();
  } else {
    bare = store_rate();
    engine = engine_rate();
  }
  return {engine, bare};
}

struct Spread {
  double median, low, high;
};
Spread spread(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return {values[values.size() / 2], values.front(), values.back()};
}

void ingest_bench(const char* name, const StoreFactory& make_store, int rounds, int batches) {
  std::vector<double> engine, bare, ratio;
  for (int round = 0; round < rounds; ++round) {
    auto [e, b] = one_round(make_store, batches, round % 2 == 0);
    engine.push_back(e);
    bare.push_back(b);
    ratio.push_back(e / b);
  }
  auto e = spread(engine), b = spread(bare), r = spread(ratio);
  std::printf(
      "ingest %-10s engine %9.0f samples/s (%.0f-%.0f)  bare store %9.0f (%.0f-%.0f)  "
      "engine/store %.2f (%.2f-%.2f)\n",
      name, e.median, e.low, e.high, b.median, b.low, b.high, r.median, r.low, r.high);
}

void evaluation_bench() {
  AlertBook book;
  for (uint64_t id : {1, 2}) {
    v1::Threshold t;
    t.set_id(id);
    t.set_metric(id == 1 ? "cpu" : "memory");
    t.set_condition(">");
    t.set_value(90);
    t.mutable_for_()->set_seconds(30);
    t.set_enabled(true);
    (void)normalize_threshold(t);
    book.set_threshold(t);
  }
  std::mt19937 random(7);
  auto data = batch(0, random);
  const int repeats = 200;
  auto start = Steady::now();
  size_t changes = 0;
  for (int r = 0; r < repeats; ++r)
    for (const auto& s : data)
      changes += book.evaluate(s, TimePoint(std::chrono::seconds(r))).size();
  double ns =
      std::chrono::duration<double, std::nano>(Steady::now() - start).count() / (repeats * kNodes);
  std::printf(
      "threshold evaluation: %.0f ns per sample (11 metrics, 2 thresholds in effect; %zu "
      "changes)\n",
      ns, changes);
}

void latency_bench() {
  MetricsRegistry metrics;
  MonitorOptions options;
  options.retention = 0ms;
  testing::TempDir dir("monitor-bench-latency");
  auto store = open_sqlite_store((dir.path() / "m.db").string());
  MonitorEngine engine(options, std::move(*store), quiet(), &metrics);
  (void)engine.load();
  v1::UpsertThresholdRequest request;
  request.set_node_id("*");
  request.set_metric("cpu");
  request.set_condition(">");
  request.set_value(90);
  request.mutable_for_()->set_seconds(1);
  (void)engine.upsert_threshold(request, "bench");
  engine.start(nullptr);  // the evaluation timer only
  std::vector<v1::Alert> open;
  auto subscription = engine.watch_alerts(&open);
  std::mt19937 random(3);
  std::atomic<bool> breach{false};
  std::atomic<bool> stop{false};
  Steady::time_point t0;
  std::thread feeder([&] {
    int round = 0;
    while (!stop) {
      auto samples = batch(0, random);
      auto now = to_timestamp(Clock::now());
      for (auto& s : samples) {
        *s.mutable_time() = now;
        if (breach) s.set_cpu_percent(95);
      }
      (void)engine.ingest(samples);
      ++round;
      std::this_thread::sleep_for(100ms);
    }
  });
  std::this_thread::sleep_for(500ms);
  t0 = Steady::now();
  breach = true;
  std::vector<double> latencies;
  while (latencies.size() < kNodes && Steady::now() - t0 < 30s) {
    auto event = subscription->next(100ms);
    if (event && event->event().state() == v1::ALERT_STATE_FIRING)
      latencies.push_back(std::chrono::duration<double>(Steady::now() - t0).count() - 1.0);
  }
  stop = true;
  feeder.join();
  engine.shutdown();
  std::sort(latencies.begin(), latencies.end());
  if (latencies.size() < kNodes) {
    std::printf("alert latency: only %zu of %d alerts within 30 s\n", latencies.size(), kNodes);
    return;
  }
  std::printf(
      "alert latency beyond for=1s (breach ingested -> FIRING on WatchAlerts), %d nodes: "
      "p50 %.3f s, p99 %.3f s, max %.3f s (target p99 < 1 s)\n",
      kNodes, latencies[kNodes / 2], latencies[kNodes * 99 / 100], latencies.back());
}

}  // namespace
}  // namespace telekern::monitor

int main(int argc, char** argv) {
  using namespace telekern::monitor;
  int rounds = argc > 1 ? std::atoi(argv[1]) : 5;
  int batches = argc > 2 ? std::atoi(argv[2]) : 50;
  bool sqlite_only = argc > 3 && std::string(argv[3]) == "sqlite";
  telekern::testing::TempDir dir("monitor-bench");
  int counter = 0;
  ingest_bench(
      "sqlite",
      [&] {
        auto store =
            open_sqlite_store((dir.path() / ("m" + std::to_string(++counter) + ".db")).string());
        return std::move(*store);
      },
      rounds, batches);
  if (sqlite_only) return 0;
  telekern::testing::PostgresServer postgres;
  if (!postgres.ready()) {
    std::printf("postgresql: %s\n", postgres.error().c_str());
  } else {
    ingest_bench(
        "postgresql",
        [&] {
          auto conninfo = postgres.create_database("bench_" + std::to_string(++counter));
          auto store = open_postgres_store(conninfo);
          if (!store.ok()) std::fprintf(stderr, "%s\n", store.status().ToString().c_str());
          return std::move(*store);
        },
        rounds, std::max(1, batches / 5));
  }
  evaluation_bench();
  latency_bench();
  return 0;
}
