// The agent publishes through telekern::stream; when publishing fails it
// keeps up to `agent.buffer` samples (oldest dropped, counted) and sends
// them on the next round that works.
#include "agent.h"

#include <gtest/gtest.h>
#include <spdlog/sinks/null_sink.h>

#include "monitor_engine.h"

namespace telekern::monitor {
namespace {

struct FakeProducer final : stream::Producer {
  bool failing = true;
  std::vector<stream::Record>* delivered;
  std::vector<stream::Record> queued;
  absl::Status send(stream::Record record) override {
    queued.push_back(std::move(record));
    return absl::OkStatus();
  }
  absl::Status flush(std::chrono::milliseconds) override {
    if (failing) {
      queued.clear();
      return absl::UnavailableError("broker unreachable");
    }
    for (auto& record : queued) delivered->push_back(std::move(record));
    queued.clear();
    return absl::OkStatus();
  }
};

TEST(AgentTest, BuffersWhilePublishingFailsThenDelivers) {
  MonitorOptions options;
  options.node_id = "host-1";
  options.agent_buffer = 3;
  options.agent_interval = std::chrono::milliseconds(10);
  MetricsRegistry metrics;
  std::vector<stream::Record> delivered;
  FakeProducer* producer = nullptr;
  Agent agent(
      options,
      [&]() -> absl::StatusOr<std::unique_ptr<stream::Producer>> {
        auto made = std::make_unique<FakeProducer>();
        made->delivered = &delivered;
        producer = made.get();
        return std::unique_ptr<stream::Producer>(std::move(made));
      },
      std::make_shared<spdlog::logger>("agent", std::make_shared<spdlog::sinks::null_sink_mt>()),
      metrics);
  for (int i = 0; i < 5; ++i) agent.round();
  EXPECT_EQ(agent.buffered(), 3u);
  EXPECT_NE(agent.last_error().find("broker unreachable"), std::string::npos);
  EXPECT_NE(metrics.expose().find("telekern_monitor_agent_samples_total{outcome=\"dropped\"} 2"),
            std::string::npos);
  producer->failing = false;
  agent.round();
  EXPECT_EQ(agent.buffered(), 0u);
  ASSERT_EQ(delivered.size(), 3u);  // the three newest of six samples
  for (const auto& record : delivered) {
    EXPECT_EQ(record.topic, "metrics");
    EXPECT_EQ(record.key, "host-1");
    auto sample = parse_sample(record.value);
    ASSERT_TRUE(sample.ok()) << sample.status();
    EXPECT_EQ(sample->node_id(), "host-1");
    EXPECT_TRUE(sample->has_time());
  }
  EXPECT_TRUE(agent.last_error().empty());
}

}  // namespace
}  // namespace telekern::monitor
