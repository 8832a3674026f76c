// The bench module's own costs: (1) HDR histogram record cost against the
// SDK's LatencyHistogram (target <= 10 ns/record); (2) the load generator's
// ceiling: max publish rate of the runner to a sink driver that discards,
// against a bare loop building the same messages, so reports can tell when
// the client, not the broker, is the limit. Rotated rounds, median and spread.
//
//   telekern_bench_module_bench [records] [rounds]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

#include "driver.h"
#include "runner.h"
#include "telekern/hdr_histogram.h"
#include "telekern/latency_histogram.h"
#include "workload.h"

namespace {

using Clock = std::chrono::steady_clock;
using namespace telekern;
using namespace telekern::bench;

struct Spread {
  double median, low, high;
};
Spread spread(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return {values[values.size() / 2], values.front(), values.back()};
}

template <typename Histogram>
double ns_per_record(const std::vector<uint64_t>& values) {
  Histogram histogram;
  auto start = Clock::now();
  for (uint64_t v : values) histogram.record(v);
  auto ns = std::chrono::duration<double, std::nano>(Clock::now() - start).count();
  // Keep the work observable.
  if (histogram.count() != values.size()) std::abort();
  return ns / double(values.size());
}

double runner_rate(double seconds) {
  auto workload = parse_workload(
      "name: ceiling\nmessageSize: 1024\nproducersPerTopic: 1\nproducerRate: 0\n"
      "testDurationMinutes: " +
      std::to_string(seconds) + "s\nwarmupDurationMinutes: 0.2s\n");
  auto sink = make_sink_driver();
  DriverSpec spec;
  spec.kind = DriverKind::kSink;
  RunOptions options;
  options.window = std::chrono::milliseconds(500);
  auto result = run_workload(*workload, spec, *sink, options, std::stop_token(), nullptr);
  return double(result->published) / result->measured_seconds;
}

// The same messages (1 KiB payload copy + send time) handed to the sink, no
// histograms, no pacing, no stats lock.
double bare_rate(double seconds) {
  auto sink = make_sink_driver();
  auto producer = std::move(*sink->producer("t"));
  std::string payload(1024, 'x');
  std::vector<Message> batch(500);
  uint64_t sent = 0;
  auto start = Clock::now();
  auto end = start + std::chrono::duration<double>(seconds);
  while (Clock::now() < end) {
    int64_t t = Clock::now().time_since_epoch().count();
    for (auto& message : batch) {
      message.payload = payload;
      std::memcpy(message.payload.data(), &t, sizeof t);
    }
    (void)producer->send_batch(batch);
    sent += batch.size();
  }
  return double(sent) / std::chrono::duration<double>(Clock::now() - start).count();
}

}  // namespace

int main(int argc, char** argv) {
  size_t records = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 20'000'000;
  int rounds = argc > 2 ? std::atoi(argv[2]) : 5;
  std::mt19937_64 random(1);
  std::lognormal_distribution<double> latency(7.0, 1.5);
  std::vector<uint64_t> values(records);
  for (auto& v : values) v = static_cast<uint64_t>(latency(random));

  std::vector<double> hdr, peer, ratio;
  for (int round = 0; round < rounds; ++round) {
    double a, b;
    if (round % 2 == 0) {
      a = ns_per_record<HdrHistogram>(values);
      b = ns_per_record<LatencyHistogram>(values);
    } else {
      b = ns_per_record<LatencyHistogram>(values);
      a = ns_per_record<HdrHistogram>(values);
    }
    hdr.push_back(a);
    peer.push_back(b);
    ratio.push_back(a / b);
  }
  auto h = spread(hdr), p = spread(peer), r = spread(ratio);
  std::printf(
      "histogram record: HdrHistogram %.2f ns (%.2f-%.2f), LatencyHistogram %.2f ns "
      "(%.2f-%.2f), ratio %.2f (%.2f-%.2f); target <= 10 ns: %s\n",
      h.median, h.low, h.high, p.median, p.low, p.high, r.median, r.low, r.high,
      h.median <= 10 ? "met" : "NOT met");

  std::vector<double> runner, bare, share;
  for (int round = 0; round < std::max(3, rounds / 2); ++round) {
    double a, b;
    if (round % 2 == 0) {
      a = runner_rate(1.5);
      b = bare_rate(1.5);
    } else {
      b = bare_rate(1.5);
      a = runner_rate(1.5);
    }
    runner.push_back(a);
    bare.push_back(b);
    share.push_back(a / b);
  }
  auto ru = spread(runner), ba = spread(bare), sh = spread(share);
  std::printf(
      "driver ceiling (1 producer, 1 KiB, sink): runner %.0f msg/s (%.0f-%.0f), bare "
      "loop %.0f msg/s (%.0f-%.0f), runner/bare %.2f (%.2f-%.2f)\n",
      ru.median, ru.low, ru.high, ba.median, ba.low, ba.high, sh.median, sh.low, sh.high);
  return 0;
}
