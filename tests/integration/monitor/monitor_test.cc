// The monitor module in a real telekernd with the embedded broker: its own
// host agent (node agent-a) plus synthetic publishers through
// telekern::stream on loopback. Nodes appear with live metrics; a threshold
// with `for` fires exactly one alert after a sustained breach and none on a
// spike, holds inside the hysteresis band, records the acknowledgement and
// resolves; a silent node turns stale then down and alerts; CSV export equals
// the stored samples; a real Prometheus scrapes /metrics; roles are enforced.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <google/protobuf/util/json_util.h>
#include <nlohmann/json.hpp>

#include <thread>

#include "telekern/monitor/v1/monitor.grpc.pb.h"
#include "telekern/proto_time.h"
#include "telekern/stream.h"
#include "tests/support/auth_config.h"
#include "tests/support/prometheus_server.h"
#include "tests/support/telekernd.h"

namespace telekern::testing {
namespace {

using namespace std::chrono_literals;
namespace mv1 = telekern::monitor::v1;

constexpr const char* kAdminKey = "monitor-admin-key";

class MonitorTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    TelekerndOptions options;
    options.modules_dir = std::string(TELEKERN_BUILD_DIR) + "/modules";
    options.load = {"broker", "monitor"};
    std::string auth = auth_config_yaml();
    // An admin API key for the synthetic publishers and admin calls.
    auto pos = auth.find("  api_keys:\n");
    auth.insert(pos + 12, "    - {name: test-admin, sha256: \"" + sha256_hex(kAdminKey) +
                              "\", role: admin}\n");
    options.config_yaml = auth +
                          "modules:\n"
                          "  monitor:\n"
                          "    agent:\n"
                          "      enabled: true\n"
                          "      interval: 200ms\n"
                          "      node_id: agent-a\n"
                          "      node_name: Agent Alpha\n"
                          "    backend:\n"
                          "      stale_intervals: 3\n"
                          "      down_after: 2s\n"
                          "      evaluation_interval: 100ms\n";
    daemon_ = new Telekernd(options);
    ASSERT_TRUE(daemon_->ready()) << daemon_->log();
    stream::StreamConfig config;
    config.transport = "telekern://" + daemon_->grpc_address();
    config.api_key = kAdminKey;
    auto producer = stream::make_producer(config);
    ASSERT_TRUE(producer.ok()) << producer.status();
    producer_ = producer->release();
  }
  static void TearDownTestSuite() {
    delete producer_;
    producer_ = nullptr;
    delete daemon_;
    daemon_ = nullptr;
  }

  static std::unique_ptr<grpc::ClientContext> context(const std::string& key = kAdminKey) {
    auto context = std::make_unique<grpc::ClientContext>();
    context->AddMetadata("x-api-key", key);
    context->set_deadline(std::chrono::system_clock::now() + 10s);
    return context;
  }
  static std::unique_ptr<mv1::Monitor::Stub> stub() { return mv1::Monitor::NewStub(daemon_->channel()); }

  static void publish(const std::string& node, double cpu, std::chrono::milliseconds interval = 200ms) {
    mv1::MetricSample sample;
    sample.set_node_id(node);
    sample.set_node_name("Synthetic " + node);
    sample.set_cpu_percent(cpu);
    sample.set_memory_percent(33);
    *sample.mutable_time() = to_timestamp(std::chrono::system_clock::now());
    *sample.mutable_interval() = google::protobuf::util::TimeUtil::MillisecondsToDuration(interval.count());
    std::string json;
    ASSERT_TRUE(google::protobuf::util::MessageToJsonString(sample, &json).ok());
    stream::Record record;
    record.topic = "metrics";
    record.key = node;
    record.value = json;
    ASSERT_TRUE(producer_->send(record).ok());
    ASSERT_TRUE(producer_->flush(5s).ok());
  }

  static std::vector<mv1::Alert> alerts(mv1::AlertFilter filter, const std::string& node) {
    mv1::ListAlertsRequest request;
    request.set_filter(filter);
    request.set_node_id(node);
    mv1::ListAlertsResponse response;
    auto status = stub()->ListAlerts(context().get(), request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return {response.alerts().begin(), response.alerts().end()};
  }

  static const mv1::Node* find(const mv1::ListNodesResponse& nodes, const std::string& id) {
    for (const auto& node : nodes.nodes())
      if (node.node_id() == id) return &node;
    return nullptr;
  }

  static mv1::ListNodesResponse nodes() {
    mv1::ListNodesResponse response;
    (void)stub()->ListNodes(context(kViewerKey).get(), {}, &response);
    return response;
  }

  static Telekernd* daemon_;
  static stream::Producer* producer_;
};

Telekernd* MonitorTest::daemon_ = nullptr;
stream::Producer* MonitorTest::producer_ = nullptr;

TEST_F(MonitorTest, AgentAndSyntheticNodesListedWithLiveMetrics) {
  publish("synth-b", 12.5);
  ASSERT_TRUE(wait_for(
      [] {
        auto list = nodes();
        const auto* agent = find(list, "agent-a");
        const auto* synthetic = find(list, "synth-b");
        return agent && synthetic && agent->samples() >= 2 &&
               agent->status() == mv1::NODE_STATUS_ACTIVE && agent->latest().memory_percent() > 0 &&
               synthetic->latest().cpu_percent() == 12.5;
      },
      20s))
      << daemon_->log();
  auto list = nodes();
  EXPECT_EQ(find(list, "agent-a")->node_name(), "Agent Alpha");
  mv1::LatestMetricsResponse latest;
  ASSERT_TRUE(stub()->LatestMetrics(context(kViewerKey).get(), {}, &latest).ok());
  EXPECT_GE(latest.samples_size(), 2);
}

TEST_F(MonitorTest, ThresholdWithForFiresOnceHoldsInBandAcknowledgedAndResolves) {
  const std::string node = "synth-alert";
  mv1::UpsertThresholdRequest threshold;
  threshold.set_node_id(node);
  threshold.set_metric("cpu");
  threshold.set_condition(">");
  threshold.set_value(90);
  threshold.set_clear_threshold(80);
  threshold.set_severity(mv1::SEVERITY_CRITICAL);
  threshold.mutable_for_()->set_seconds(1);
  mv1::UpsertThresholdResponse created;
  // A viewer may not edit thresholds.
  auto denied = stub()->UpsertThreshold(context(kViewerKey).get(), threshold, &created);
  EXPECT_EQ(denied.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  auto status = stub()->UpsertThreshold(context(kOperatorKey).get(), threshold, &created);
  ASSERT_TRUE(status.ok()) << status.error_message();

  // Watch alerts from the start.
  grpc::ClientContext watch_context;
  watch_context.AddMetadata("x-api-key", kViewerKey);
  mv1::WatchAlertsRequest watch_request;
  watch_request.set_node_id(node);
  auto reader = stub()->WatchAlerts(&watch_context, watch_request);
  std::mutex mutex;
  std::vector<mv1::WatchAlertsResponse> seen;
  std::thread watcher([&] {
    mv1::WatchAlertsResponse response;
    while (reader->Read(&response)) {
      std::lock_guard lock(mutex);
      seen.push_back(response);
    }
  });

  // A spike: one sample over, then back to normal.
  publish(node, 99);
  publish(node, 10);
  // Sustained: 2.5 s over 90, every 100 ms.
  for (int i = 0; i < 25; ++i) {
    publish(node, 95, 100ms);
    std::this_thread::sleep_for(100ms);
  }
  ASSERT_TRUE(wait_for([&] { return alerts(mv1::ALERT_FILTER_OPEN, node).size() == 1; }, 10s));
  auto open = alerts(mv1::ALERT_FILTER_ALL, node);
  ASSERT_EQ(open.size(), 1u) << "exactly one alert for one sustained breach";
  EXPECT_EQ(open[0].state(), mv1::ALERT_STATE_FIRING);
  EXPECT_EQ(open[0].severity(), mv1::SEVERITY_CRITICAL);
  // The breach started with the sustained run, not the spike.
  auto breach = from_timestamp(open[0].breach_started_at());
  auto fired = from_timestamp(open[0].fired_at());
  EXPECT_GE(fired - breach, 1s);

  publish(node, 85, 100ms);  // inside the band: stays open
  mv1::AcknowledgeAlertRequest ack;
  ack.set_id(open[0].id());
  ack.set_note("restarting the job");
  mv1::AcknowledgeAlertResponse acked;
  EXPECT_EQ(stub()->AcknowledgeAlert(context(kViewerKey).get(), ack, &acked).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  status = stub()->AcknowledgeAlert(context(kOperatorKey).get(), ack, &acked);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(acked.alert().state(), mv1::ALERT_STATE_ACKNOWLEDGED);
  EXPECT_EQ(acked.alert().note(), "restarting the job");
  EXPECT_FALSE(acked.alert().acknowledged_by().empty());
  EXPECT_TRUE(alerts(mv1::ALERT_FILTER_UNACKNOWLEDGED, node).empty());
  EXPECT_EQ(alerts(mv1::ALERT_FILTER_ACKNOWLEDGED, node).size(), 1u);

  publish(node, 50, 100ms);
  ASSERT_TRUE(wait_for([&] { return alerts(mv1::ALERT_FILTER_OPEN, node).empty(); }, 10s));
  auto resolved = alerts(mv1::ALERT_FILTER_RESOLVED, node);
  ASSERT_EQ(resolved.size(), 1u);
  EXPECT_TRUE(resolved[0].acknowledged());
  EXPECT_EQ(resolved[0].note(), "restarting the job");

  ASSERT_TRUE(wait_for(
      [&] {
        std::lock_guard lock(mutex);
        return seen.size() >= 3;
      },
      10s));
  watch_context.TryCancel();
  watcher.join();
  std::vector<mv1::AlertState> states;
  for (const auto& event : seen)
    if (event.has_event()) states.push_back(event.event().state());
  EXPECT_EQ(states, (std::vector<mv1::AlertState>{mv1::ALERT_STATE_FIRING,
                                                  mv1::ALERT_STATE_ACKNOWLEDGED,
                                                  mv1::ALERT_STATE_RESOLVED}));
}

TEST_F(MonitorTest, SilentNodeTurnsStaleThenDownAndAlerts) {
  const std::string node = "synth-quiet";
  publish(node, 20, 200ms);
  ASSERT_TRUE(wait_for([&] { return find(nodes(), node) != nullptr; }, 10s));
  ASSERT_TRUE(wait_for(
      [&] {
        const auto* n = find(nodes(), node);
        return n && n->status() == mv1::NODE_STATUS_STALE;
      },
      10s));
  auto open = alerts(mv1::ALERT_FILTER_OPEN, node);
  ASSERT_EQ(open.size(), 1u);
  EXPECT_EQ(open[0].metric(), "node_status");
  EXPECT_EQ(open[0].severity(), mv1::SEVERITY_WARNING);
  ASSERT_TRUE(wait_for(
      [&] {
        const auto* n = find(nodes(), node);
        return n && n->status() == mv1::NODE_STATUS_DOWN;
      },
      10s));
  open = alerts(mv1::ALERT_FILTER_OPEN, node);
  ASSERT_EQ(open.size(), 1u);
  EXPECT_EQ(open[0].severity(), mv1::SEVERITY_CRITICAL);
  publish(node, 20, 200ms);
  ASSERT_TRUE(wait_for([&] { return alerts(mv1::ALERT_FILTER_OPEN, node).empty(); }, 10s));
}

TEST_F(MonitorTest, CsvExportMatchesStoredSamples) {
  const std::string node = "synth-csv";
  auto from = std::chrono::system_clock::now() - 1s;
  for (int i = 0; i < 20; ++i) publish(node, i * 1.25);
  mv1::MetricHistoryRequest history;
  history.set_node_id(node);
  *history.mutable_from() = to_timestamp(from);
  mv1::MetricHistoryResponse stored;
  ASSERT_TRUE(wait_for(
      [&] {
        stored.Clear();
        return stub()->MetricHistory(context(kViewerKey).get(), history, &stored).ok() &&
               stored.samples_size() == 20;
      },
      10s));
  mv1::ExportCsvRequest request;
  request.set_node(node);
  *request.mutable_from() = to_timestamp(from);
  auto csv_context = context(kViewerKey);
  auto reader = stub()->ExportCsv(csv_context.get(), request);
  std::string csv;
  mv1::ExportCsvResponse chunk;
  while (reader->Read(&chunk)) csv += chunk.data();
  ASSERT_TRUE(reader->Finish().ok());
  std::istringstream in(csv);
  std::string line;
  std::getline(in, line);
  EXPECT_EQ(line.rfind("time,node_id,node_name,cpu,memory", 0), 0u) << line;
  int row = 0;
  while (std::getline(in, line)) {
    ASSERT_LT(row, stored.samples_size());
    std::vector<std::string> cells;
    std::stringstream cells_in(line);
    for (std::string cell; std::getline(cells_in, cell, ',');) cells.push_back(cell);
    ASSERT_GE(cells.size(), 5u);
    EXPECT_EQ(cells[0], google::protobuf::util::TimeUtil::ToString(stored.samples(row).time()));
    EXPECT_EQ(cells[1], node);
    EXPECT_DOUBLE_EQ(std::stod(cells[3]), stored.samples(row).cpu_percent());
    EXPECT_DOUBLE_EQ(std::stod(cells[4]), stored.samples(row).memory_percent());
    ++row;
  }
  EXPECT_EQ(row, 20);
}

TEST_F(MonitorTest, PrometheusScrapesNodeGauges) {
  PrometheusServer prometheus(daemon_->http_address(), kViewerKey);
  ASSERT_TRUE(prometheus.ready()) << "prometheus did not start (apt-get install prometheus)\n"
                                  << prometheus.log();
  std::string body;
  ASSERT_TRUE(wait_for(
      [&] {
        body = prometheus.query("telekern_node_cpu_percent{node_id=\"agent-a\"}");
        if (body.empty()) return false;
        auto json = nlohmann::json::parse(body, nullptr, false);
        return !json.is_discarded() && json["status"] == "success" &&
               !json["data"]["result"].empty();
      },
      30s))
      << body << "\n" << prometheus.log();
  auto json = nlohmann::json::parse(body);
  EXPECT_EQ(json["data"]["result"][0]["metric"]["node_name"], "Agent Alpha");
  body = prometheus.query("telekern_node_up");
  EXPECT_NE(body.find("agent-a"), std::string::npos) << body;
}

TEST_F(MonitorTest, RolesEnforcedForUsersAndReads) {
  mv1::ListUsersResponse users;
  EXPECT_EQ(stub()->ListUsers(context(kOperatorKey).get(), {}, &users).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  ASSERT_TRUE(stub()->ListUsers(context(kAdminKey).get(), {}, &users).ok());
  EXPECT_EQ(users.users_size(), 1);  // the generated admin
  mv1::WhoAmIResponse me;
  ASSERT_TRUE(stub()->WhoAmI(context(kViewerKey).get(), {}, &me).ok());
  EXPECT_EQ(me.role(), telekern::options::v1::ROLE_VIEWER);
  grpc::ClientContext anonymous;
  mv1::ListNodesResponse list;
  EXPECT_EQ(stub()->ListNodes(&anonymous, {}, &list).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_NE(daemon_->log().find("created monitor user 'admin'"), std::string::npos);
}

}  // namespace
}  // namespace telekern::testing
