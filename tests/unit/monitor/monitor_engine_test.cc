// The engine over a real SQLite store with a fake clock: ingestion, node
// liveness, alerts stored with history, no duplicates on redelivery or
// restart, CSV export equal to the stored samples, history and summary.
#include "monitor_engine.h"

#include <gtest/gtest.h>
#include <spdlog/sinks/null_sink.h>

#include <set>
#include <sstream>

#include "telekern/proto_time.h"
#include "tests/support/process.h"

namespace telekern::monitor {
namespace {

using namespace std::chrono_literals;

class EngineTest : public ::testing::Test {
 protected:
  void SetUp() override { open(); }

  void open() {
    engine_.reset();
    auto store = open_sqlite_store((dir_.path() / "monitor.db").string());
    ASSERT_TRUE(store.ok()) << store.status();
    MonitorOptions options;
    options.agent_interval = 5s;
    options.stale_intervals = 3;
    options.down_after = 60s;
    options.retention = 0ms;
    engine_ = std::make_unique<MonitorEngine>(options, std::move(*store), logger_, &metrics_,
                                              [this] { return now_; });
    ASSERT_TRUE(engine_->load().ok());
  }

  v1::MetricSample sample(const std::string& node, double cpu_value) {
    v1::MetricSample s;
    s.set_node_id(node);
    s.set_node_name("name-" + node);
    s.set_cpu_percent(cpu_value);
    s.set_memory_percent(40);
    s.set_disk_read_mbps(1.5);
    s.set_network_rx_mbps(2.25);
    s.set_load1(0.5);
    *s.mutable_time() = to_timestamp(now_);
    s.mutable_interval()->set_seconds(5);
    return s;
  }

  void ingest(const std::string& node, double cpu_value) {
    ASSERT_TRUE(engine_->ingest({sample(node, cpu_value)}).ok());
  }

  void threshold(const std::string& node, double value, double clear, int hold_seconds) {
    v1::UpsertThresholdRequest request;
    request.set_node_id(node);
    request.set_metric("cpu");
    request.set_condition(">");
    request.set_value(value);
    request.set_clear_threshold(clear);
    request.set_severity(v1::SEVERITY_CRITICAL);
    request.mutable_for_()->set_seconds(hold_seconds);
    auto result = engine_->upsert_threshold(request, "tester");
    ASSERT_TRUE(result.ok()) << result.status();
  }

  std::vector<v1::Alert> alerts(v1::AlertFilter filter) {
    v1::ListAlertsRequest request;
    request.set_filter(filter);
    auto result = engine_->list_alerts(request);
    EXPECT_TRUE(result.ok()) << result.status();
    return result.ok() ? *result : std::vector<v1::Alert>{};
  }

  testing::TempDir dir_{"monitor-engine"};
  TimePoint now_ = TimePoint(std::chrono::seconds(1'800'000'000));
  std::shared_ptr<spdlog::logger> logger_ =
      std::make_shared<spdlog::logger>("monitor", std::make_shared<spdlog::sinks::null_sink_mt>());
  MetricsRegistry metrics_;
  std::unique_ptr<MonitorEngine> engine_;
};

TEST_F(EngineTest, NodesRegisterOnFirstSampleAndTurnStaleThenDown) {
  ingest("a", 10);
  ingest("b", 20);
  auto nodes = engine_->list_nodes(v1::NODE_STATUS_UNSPECIFIED);
  ASSERT_EQ(nodes.size(), 2u);
  EXPECT_EQ(nodes[0].status(), v1::NODE_STATUS_ACTIVE);
  EXPECT_EQ(nodes[0].latest().cpu_percent(), 10);
  now_ += 14s;
  engine_->tick();
  EXPECT_EQ(engine_->list_nodes(v1::NODE_STATUS_ACTIVE).size(), 2u);
  now_ += 1s;  // 15 s = 3 intervals of 5 s
  ingest("b", 20);
  engine_->tick();
  auto stale = engine_->list_nodes(v1::NODE_STATUS_STALE);
  ASSERT_EQ(stale.size(), 1u);
  EXPECT_EQ(stale[0].node_id(), "a");
  auto open = alerts(v1::ALERT_FILTER_OPEN);
  ASSERT_EQ(open.size(), 1u);
  EXPECT_EQ(open[0].metric(), "node_status");
  EXPECT_EQ(open[0].severity(), v1::SEVERITY_WARNING);
  now_ += 50s;  // a silent 65 s: down; b silent 50 s: stale
  engine_->tick();
  ASSERT_EQ(engine_->list_nodes(v1::NODE_STATUS_DOWN).size(), 1u);
  ASSERT_EQ(engine_->list_nodes(v1::NODE_STATUS_STALE).size(), 1u);
  open = alerts(v1::ALERT_FILTER_OPEN);
  ASSERT_EQ(open.size(), 2u);  // one per node: a's escalated, not a second one
  for (const auto& alert : open)
    EXPECT_EQ(alert.severity(),
              alert.node_id() == "a" ? v1::SEVERITY_CRITICAL : v1::SEVERITY_WARNING);
  ingest("a", 10);
  EXPECT_EQ(engine_->list_nodes(v1::NODE_STATUS_ACTIVE).size(), 1u);
  EXPECT_EQ(alerts(v1::ALERT_FILTER_OPEN).size(), 1u);
}

TEST_F(EngineTest, ForDurationFiresExactlyOnceAndSurvivesRestartWithoutDuplicate) {
  threshold("*", 90, 80, 20);
  ingest("a", 99);  // a single spike
  now_ += 5s;
  ingest("a", 10);
  for (int i = 0; i < 10; ++i) {
    now_ += 5s;
    ingest("a", 95);
    engine_->tick();
  }
  auto firing = alerts(v1::ALERT_FILTER_UNACKNOWLEDGED);
  ASSERT_EQ(firing.size(), 1u);
  EXPECT_EQ(firing[0].node_id(), "a");
  // A restart keeps the open alert and does not raise a second one.
  open();
  now_ += 5s;
  ingest("a", 96);
  EXPECT_EQ(alerts(v1::ALERT_FILTER_ALL).size(), 1u);
  // Redelivery of an old sample is skipped.
  auto old = sample("a", 10);
  *old.mutable_time() = to_timestamp(now_ - 30s);
  ASSERT_TRUE(engine_->ingest({old}).ok());
  EXPECT_EQ(alerts(v1::ALERT_FILTER_OPEN).size(), 1u);
  auto acked = engine_->acknowledge(firing[0].id(), "alice", "on it");
  ASSERT_TRUE(acked.ok()) << acked.status();
  EXPECT_EQ(alerts(v1::ALERT_FILTER_ACKNOWLEDGED).size(), 1u);
  EXPECT_TRUE(alerts(v1::ALERT_FILTER_UNACKNOWLEDGED).empty());
  now_ += 5s;
  ingest("a", 85);  // inside the hysteresis band
  EXPECT_EQ(alerts(v1::ALERT_FILTER_OPEN).size(), 1u);
  now_ += 5s;
  ingest("a", 70);
  EXPECT_TRUE(alerts(v1::ALERT_FILTER_OPEN).empty());
  auto resolved = alerts(v1::ALERT_FILTER_RESOLVED);
  ASSERT_EQ(resolved.size(), 1u);
  EXPECT_EQ(resolved[0].acknowledged_by(), "alice");
  EXPECT_EQ(resolved[0].note(), "on it");
  v1::AlertHistoryRequest history;
  history.set_alert_id(firing[0].id());
  auto events = engine_->alert_history(history);
  ASSERT_TRUE(events.ok());
  std::vector<v1::AlertState> states;
  for (const auto& event : *events) states.push_back(event.state());
  EXPECT_EQ(states,
            (std::vector<v1::AlertState>{v1::ALERT_STATE_FIRING, v1::ALERT_STATE_ACKNOWLEDGED,
                                         v1::ALERT_STATE_RESOLVED}));
}

TEST_F(EngineTest, CsvExportMatchesStoredSamplesAcrossPages) {
  auto start = now_;
  const int count = 4500;  // more than two scan pages
  std::vector<v1::MetricSample> batch;
  for (int i = 0; i < count; ++i) {
    auto s = sample(i % 2 ? "a" : "b", i * 0.01);
    *s.mutable_time() = to_timestamp(start + std::chrono::milliseconds(i / 2 * 100));
    batch.push_back(s);
  }
  ASSERT_TRUE(engine_->ingest(batch).ok());
  v1::ExportCsvRequest request;
  request.set_node("a");
  *request.mutable_from() = to_timestamp(start);
  *request.mutable_to() = to_timestamp(start + 1h);
  std::string csv;
  size_t chunks = 0;
  ASSERT_TRUE(engine_
                  ->export_csv(request, 4096,
                               [&](std::string chunk, uint64_t) {
                                 csv += chunk;
                                 ++chunks;
                                 return true;
                               })
                  .ok());
  EXPECT_GT(chunks, 10u);
  std::istringstream in(csv);
  std::string line;
  std::getline(in, line);
  EXPECT_EQ(line,
            "time,node_id,node_name,cpu,memory,disk_io,disk_read,disk_write,network,network_rx,"
            "network_tx,load1,load5,load15");
  int rows = 0;
  while (std::getline(in, line)) {
    int i = rows * 2 + 1;
    std::vector<std::string> cells;
    std::stringstream cells_in(line);
    for (std::string cell; std::getline(cells_in, cell, ',');) cells.push_back(cell);
    ASSERT_EQ(cells.size(), 14u) << line;
    EXPECT_EQ(cells[1], "a");
    EXPECT_NEAR(std::stod(cells[3]), i * 0.01, 1e-9) << line;
    EXPECT_EQ(cells[6], "1.5");
    ++rows;
  }
  EXPECT_EQ(rows, count / 2);

  v1::MetricHistoryRequest history;
  history.set_node_id("a");
  history.set_metric("cpu");
  *history.mutable_from() = to_timestamp(start);
  *history.mutable_to() = to_timestamp(start + 1h);
  history.mutable_step()->set_seconds(10);
  auto points = engine_->history(history);
  ASSERT_TRUE(points.ok()) << points.status();
  uint64_t total = 0;
  for (const auto& point : points->points()) total += point.count();
  EXPECT_EQ(total, static_cast<uint64_t>(count / 2));

  v1::SummaryRequest summary_request;
  *summary_request.mutable_from() = to_timestamp(start);
  *summary_request.mutable_to() = to_timestamp(start + 1h);
  auto summary = engine_->summary(summary_request);
  ASSERT_TRUE(summary.ok());
  bool found = false;
  for (const auto& s : summary->summaries()) {
    if (s.node_id() == "a" && s.metric() == "cpu") {
      found = true;
      EXPECT_EQ(s.count(), static_cast<uint64_t>(count / 2));
      EXPECT_NEAR(s.min(), 0.01, 1e-9);
      EXPECT_NEAR(s.max(), (count - 1) * 0.01, 1e-9);
    }
  }
  EXPECT_TRUE(found);
}

TEST_F(EngineTest, SamplesWithinOneMillisecondAreAllStoredAndExportedAcrossPages) {
  // Ten samples of one node per millisecond, more than a scan page in all:
  // none overwrites another, none is taken for a redelivery, and the export
  // neither loses nor repeats any at a page boundary.
  auto start = now_;
  const int count = 2600;
  std::vector<v1::MetricSample> batch;
  for (int i = 0; i < count; ++i) {
    auto s = sample("a", i);
    *s.mutable_time() = to_timestamp(start + std::chrono::microseconds(i * 100));
    batch.push_back(s);
  }
  ASSERT_TRUE(engine_->ingest(batch).ok());
  EXPECT_NE(metrics_.expose().find("telekern_monitor_samples_total{outcome=\"stored\"} 2600"),
            std::string::npos)
      << metrics_.expose();
  v1::ExportCsvRequest request;
  request.set_node("a");
  *request.mutable_from() = to_timestamp(start);
  *request.mutable_to() = to_timestamp(start + 1h);
  std::string csv;
  ASSERT_TRUE(engine_
                  ->export_csv(request, 4096,
                               [&](std::string chunk, uint64_t) {
                                 csv += chunk;
                                 return true;
                               })
                  .ok());
  std::istringstream in(csv);
  std::string line;
  std::getline(in, line);  // header
  std::set<std::string> times;
  int rows = 0;
  while (std::getline(in, line)) {
    ++rows;
    times.insert(line.substr(0, line.find(',')));
  }
  EXPECT_EQ(rows, count);
  EXPECT_EQ(times.size(), static_cast<size_t>(count)) << "a sample was exported twice";
}

TEST_F(EngineTest, PrometheusGaugesCarryNodeLabels) {
  ingest("a", 42.5);
  std::string text = metrics_.expose();
  EXPECT_NE(text.find("telekern_node_cpu_percent{node_id=\"a\",node_name=\"name-a\"} 42.5"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("telekern_node_up{node_id=\"a\",node_name=\"name-a\"} 1"), std::string::npos);
}

TEST_F(EngineTest, UsersAreStoredHashedAndAnAdminIsGeneratedOnce) {
  auto password = engine_->ensure_admin();
  ASSERT_TRUE(password.ok());
  EXPECT_GE(password->size(), 16u);
  auto again = engine_->ensure_admin();
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->empty());
  auto users = engine_->list_users();
  ASSERT_TRUE(users.ok());
  ASSERT_EQ(users->size(), 1u);
  EXPECT_EQ((*users)[0].role(), telekern::options::v1::ROLE_ADMIN);
  auto stored = open_sqlite_store((dir_.path() / "monitor.db").string());
  ASSERT_TRUE(stored.ok());
  auto raw = (*stored)->list_users();
  ASSERT_TRUE(raw.ok());
  EXPECT_EQ((*raw)[0].password_hash.find(*password), std::string::npos);
  EXPECT_EQ((*raw)[0].password_hash.rfind("pbkdf2-sha256$", 0), 0u);
}

}  // namespace
}  // namespace telekern::monitor
