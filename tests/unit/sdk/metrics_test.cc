#include "telekern/metrics.h"

#include <gtest/gtest.h>

namespace telekern {
namespace {

TEST(MetricsTest, CounterGaugeHistogramExposition) {
  MetricsRegistry registry;
  registry.counter("demo_events_total", "Events seen", {"kind"}).with({"a\"b"}).inc(3);
  registry.gauge("demo_backlog", "Backlog").with().set(7.5);
  auto& histogram = registry.histogram("demo_latency_seconds", "Latency", {}, {0.1, 1});
  histogram.with().observe(0.05);
  histogram.with().observe(0.5);
  histogram.with().observe(5);
  std::string text = registry.expose();
  EXPECT_NE(text.find("# TYPE demo_events_total counter\n"), std::string::npos) << text;
  EXPECT_NE(text.find("demo_events_total{kind=\"a\\\"b\"} 3\n"), std::string::npos) << text;
  EXPECT_NE(text.find("demo_backlog 7.5\n"), std::string::npos) << text;
  EXPECT_NE(text.find("demo_latency_seconds_bucket{le=\"0.1\"} 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("demo_latency_seconds_bucket{le=\"1\"} 2\n"), std::string::npos) << text;
  EXPECT_NE(text.find("demo_latency_seconds_bucket{le=\"+Inf\"} 3\n"), std::string::npos) << text;
  EXPECT_NE(text.find("demo_latency_seconds_count 3\n"), std::string::npos) << text;
  EXPECT_NE(text.find("demo_latency_seconds_sum 5.55"), std::string::npos) << text;
}

TEST(MetricsTest, SameNameReturnsSameFamily) {
  MetricsRegistry registry;
  auto& first = registry.counter("x_total", "x", {"a"});
  auto& second = registry.counter("x_total", "x", {"a"});
  EXPECT_EQ(&first, &second);
  first.with({"1"}).inc();
  second.with({"1"}).inc();
  EXPECT_EQ(first.with({"1"}).value(), 2);
}

TEST(MetricsTest, CountersNeverDecrease) {
  Counter counter;
  counter.inc(2);
  counter.inc(-5);
  EXPECT_EQ(counter.value(), 2);
}

TEST(MetricsTest, CollectorRemovedWithHandle) {
  MetricsRegistry registry;
  auto handle = registry.add_collector([] {
    return std::vector<CollectedFamily>{{"demo_collected", "c", "gauge", {{"", {{"k", "v"}}, 4}}}};
  });
  EXPECT_NE(registry.expose().find("demo_collected{k=\"v\"} 4"), std::string::npos);
  handle.reset();
  EXPECT_EQ(registry.expose().find("demo_collected"), std::string::npos);
}

}  // namespace
}  // namespace telekern
