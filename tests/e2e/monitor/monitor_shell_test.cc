// The issue's telesh commands against a telekernd with broker + monitor:
// threshold set, thresholds, nodes, metrics, alerts --unacked, and
// `monitor export NODE --since 1h > node.csv` writing plain CSV.
#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>

#include <sstream>

#include "telekern/monitor/v1/monitor.pb.h"
#include "telekern/proto_time.h"
#include "telekern/stream.h"
#include "tests/support/telesh.h"

namespace telekern::testing {
namespace {

using namespace std::chrono_literals;

TEST(MonitorShellTest, IssueCommandsWork) {
  TelekerndOptions options;
  options.modules_dir = std::string(TELEKERN_BUILD_DIR) + "/modules";
  options.load = {"broker", "monitor"};
  Telekernd daemon(options);
  ASSERT_TRUE(daemon.ready()) << daemon.log();
  stream::StreamConfig config;
  config.transport = "telekern://" + daemon.grpc_address();
  auto producer = stream::make_producer(config);
  ASSERT_TRUE(producer.ok());
  auto start = std::chrono::system_clock::now();
  for (int i = 0; i < 3; ++i) {
    monitor::v1::MetricSample sample;
    sample.set_node_id("shell-node");
    sample.set_cpu_percent(10 + i);
    *sample.mutable_time() = to_timestamp(start + std::chrono::milliseconds(i));
    std::string json;
    ASSERT_TRUE(google::protobuf::util::MessageToJsonString(sample, &json).ok());
    ASSERT_TRUE((*producer)->send({"metrics", -1, -1, "shell-node", json, {}, {}}).ok());
  }
  ASSERT_TRUE((*producer)->flush(5s).ok());

  auto set = run_telesh(daemon,
                        "monitor threshold set shell-node cpu '>' 90 --severity critical --for 30s "
                        "--clear-threshold 80",
                        {.redirect = "2>&1"});
  ASSERT_EQ(set.exit_code, 0) << set.output;
  auto thresholds = run_telesh(daemon, "-o json monitor thresholds", {.redirect = "2>&1"});
  ASSERT_EQ(thresholds.exit_code, 0) << thresholds.output;
  EXPECT_NE(thresholds.output.find("shell-node"), std::string::npos) << thresholds.output;
  EXPECT_NE(thresholds.output.find("SEVERITY_CRITICAL"), std::string::npos) << thresholds.output;
  EXPECT_NE(thresholds.output.find("30s"), std::string::npos) << thresholds.output;

  ASSERT_TRUE(wait_for(
      [&] {
        auto nodes = run_telesh(daemon, "monitor nodes");
        return nodes.exit_code == 0 && nodes.output.find("shell-node") != std::string::npos;
      },
      20s));
  auto metrics =
      run_telesh(daemon, "-o json monitor metrics shell-node --since 1h", {.redirect = "2>&1"});
  ASSERT_EQ(metrics.exit_code, 0) << metrics.output;
  EXPECT_NE(metrics.output.find("shell-node"), std::string::npos);
  auto alerts = run_telesh(daemon, "monitor alerts --unacked", {.redirect = "2>&1"});
  EXPECT_EQ(alerts.exit_code, 0) << alerts.output;

  auto csv =
      run_telesh(daemon, "monitor export shell-node --since 1h", {.redirect = "2>/dev/null"});
  ASSERT_EQ(csv.exit_code, 0) << csv.output;
  std::istringstream in(csv.output);
  std::string line;
  std::getline(in, line);
  EXPECT_EQ(line.rfind("time,node_id,node_name,cpu,memory", 0), 0u) << csv.output;
  int rows = 0;
  while (std::getline(in, line))
    if (!line.empty()) ++rows;
  EXPECT_EQ(rows, 3) << csv.output;
}

}  // namespace
}  // namespace telekern::testing
