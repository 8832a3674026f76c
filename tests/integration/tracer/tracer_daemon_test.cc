// The tracer module in a real telekernd beside the broker module: traces of
// the embedded broker's topics over gRPC (progress, events, summary), the
// max_age seek, stored traces, and the telesh commands.
#include <grpcpp/client_context.h>
#include <gtest/gtest.h>
#include <httplib.h>

#include <algorithm>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "telekern/broker/v1/broker.grpc.pb.h"
#include "telekern/proto_time.h"
#include "telekern/tracer/v1/tracer.grpc.pb.h"
#include "tests/support/process.h"
#include "tests/support/telekernd.h"
#include "tests/support/telesh.h"

namespace telekern::testing {
namespace {

using Key = std::tuple<std::string, uint32_t, uint64_t>;
constexpr const char* kDevice = "dev-7f3a";

class TracerDaemonTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    daemon_ = new Telekernd({.modules_dir = std::string(TELEKERN_BUILD_DIR) + "/modules",
                             .load = {"broker", "tracer"}});
    ASSERT_TRUE(daemon_->ready()) << daemon_->log();
    auto broker = broker::v1::Broker::NewStub(daemon_->channel());
    auto now = std::chrono::system_clock::now();
    for (const auto& [topic, partitions] :
         std::vector<std::pair<std::string, uint32_t>>{{"orders", 3}, {"devices", 2}}) {
      grpc::ClientContext create_context;
      broker::v1::CreateTopicRequest create;
      create.set_topic(topic);
      create.set_partitions(partitions);
      broker::v1::CreateTopicResponse created;
      ASSERT_TRUE(broker->CreateTopic(&create_context, create, &created).ok());
      for (uint32_t partition = 0; partition < partitions; ++partition) {
        broker::v1::ProduceRequest produce;
        produce.set_topic(topic);
        produce.set_partition(partition);
        std::vector<std::pair<std::string, int64_t>> values;
        for (int i = 0; i < 400; ++i) {
          // 10 days of history, oldest first.
          auto time = now - std::chrono::hours(240) + std::chrono::minutes(36) * i;
          std::string device = i % 17 == 0   ? kDevice
                               : i % 19 == 0 ? "dev-7f3a9"
                                             : "dev-" + std::to_string(1000 + i);
          auto* record = produce.add_records();
          record->set_value("{\"device\":{\"id\":\"" + device + "\"},\"type\":\"t" +
                            std::to_string(i % 3) + "\"}");
          *record->mutable_timestamp() = to_timestamp(time);
          values.emplace_back(
              device, std::chrono::duration_cast<std::chrono::milliseconds>(time.time_since_epoch())
                          .count());
        }
        grpc::ClientContext produce_context;
        broker::v1::ProduceResponse produced;
        auto status = broker->Produce(&produce_context, produce, &produced);
        ASSERT_TRUE(status.ok()) << status.error_message();
        ASSERT_EQ(produced.appends_size(), 1);
        uint64_t first = produced.appends(0).first_offset();
        for (size_t i = 0; i < values.size(); ++i) {
          if (values[i].first.find(kDevice) != std::string::npos)
            records_[{topic, partition, first + i}] = values[i].second;
        }
      }
    }
  }
  static void TearDownTestSuite() { delete daemon_; }

  struct Result {
    grpc::Status status;
    std::set<Key> events;
    int progress = 0;
    tracer::v1::Summary summary;
  };
  Result trace(tracer::v1::TraceDeviceRequest request) {
    auto stub = tracer::v1::Tracer::NewStub(daemon_->channel());
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(120));
    auto reader = stub->TraceDevice(&context, request);
    Result result;
    tracer::v1::TraceDeviceResponse response;
    while (reader->Read(&response)) {
      if (response.has_event())
        result.events.insert({response.event().topic(), response.event().partition(),
                              static_cast<uint64_t>(response.event().offset())});
      if (response.has_progress()) result.progress++;
      if (response.has_summary()) result.summary = response.summary();
    }
    result.status = reader->Finish();
    return result;
  }
  static tracer::v1::TraceDeviceRequest request() {
    tracer::v1::TraceDeviceRequest request;
    request.set_device_id(kDevice);
    request.set_source(tracer::v1::SOURCE_BROKER);
    request.mutable_max_age()->set_seconds(0);
    request.mutable_timeout()->set_seconds(60);
    return request;
  }
  static std::set<Key> expected(int64_t since_ms = 0) {
    std::set<Key> out;
    for (const auto& [key, time] : records_)
      if (time >= since_ms) out.insert(key);
    return out;
  }

  static Telekernd* daemon_;
  static std::map<Key, int64_t> records_;
};

Telekernd* TracerDaemonTest::daemon_ = nullptr;
std::map<Key, int64_t> TracerDaemonTest::records_;

TEST_F(TracerDaemonTest, TracesTheEmbeddedBrokerToItsEndOffsets) {
  auto result = trace(request());
  ASSERT_TRUE(result.status.ok()) << result.status.error_message();
  EXPECT_EQ(result.events, expected());
  EXPECT_GT(result.progress, 0);
  EXPECT_TRUE(result.summary.complete()) << result.summary.DebugString();
  EXPECT_EQ(result.summary.scanned(), 5u * 400);
  EXPECT_EQ(result.summary.partitions_size(), 5);
  for (const auto& partition : result.summary.partitions()) {
    EXPECT_TRUE(partition.reached_end());
    EXPECT_EQ(partition.end_offset(), partition.stop_offset());
    EXPECT_EQ(partition.stop_offset(), 400);
  }
}

TEST_F(TracerDaemonTest, MaxAgeStartsEachPartitionAtTheFirstRecordInTheWindow) {
  auto req = request();
  req.mutable_max_age()->set_seconds(3 * 24 * 3600);
  auto result = trace(req);
  ASSERT_TRUE(result.status.ok()) << result.status.error_message();
  int64_t since =
      result.summary.since().seconds() * 1000 + result.summary.since().nanos() / 1000000;
  EXPECT_EQ(result.events, expected(since));
  EXPECT_TRUE(result.summary.complete()) << result.summary.DebugString();
  for (const auto& partition : result.summary.partitions()) {
    EXPECT_GT(partition.start_offset(), 200) << partition.DebugString();  // 7 of 10 days skipped
    EXPECT_EQ(partition.scanned(), static_cast<uint64_t>(400 - partition.start_offset()));
  }
}

TEST_F(TracerDaemonTest, StoredTracesListShowAndRenderOverGrpcAndTelesh) {
  auto req = request();
  req.add_topics("devices");
  auto result = trace(req);
  ASSERT_TRUE(result.status.ok()) << result.status.error_message();
  std::string id = result.summary.trace_id();
  ASSERT_FALSE(id.empty());

  auto listed = telesh_commands(*daemon_, "trace list -o json");
  ASSERT_EQ(listed.exit_code, 0) << listed.output;
  EXPECT_NE(listed.output.find(id), std::string::npos) << listed.output;

  auto shown = telesh_commands(*daemon_, "trace show " + id + " -o json");
  ASSERT_EQ(shown.exit_code, 0) << shown.output;
  auto json = nlohmann::json::parse(shown.output, nullptr, false);
  ASSERT_FALSE(json.is_discarded()) << shown.output;
  size_t devices_expected = 0;
  for (const auto& key : expected()) devices_expected += std::get<0>(key) == "devices";
  EXPECT_EQ(json["events"].size(), devices_expected);

  auto rendered = telesh_commands(*daemon_, "trace report " + id + " --view swimlane -o json");
  ASSERT_EQ(rendered.exit_code, 0) << rendered.output;
  EXPECT_NE(rendered.output.find("swimlane_dev-7f3a.svg"), std::string::npos) << rendered.output;

  auto missing = telesh_commands(*daemon_, "trace show no-such-trace");
  EXPECT_EQ(missing.exit_code, 15) << missing.output;  // NOT_FOUND

  // The report is one self-contained page with the plotly charts.
  std::ifstream report(std::filesystem::path(result.summary.output_dir()) / "report_dev-7f3a.html");
  std::string html((std::istreambuf_iterator<char>(report)), {});
  EXPECT_NE(html.find("Swimlane"), std::string::npos);
  EXPECT_EQ(html.find("<script src=\"http"), std::string::npos);

  // GetReport (GET /traces/{id}/report) renders the same page from the store.
  auto [code, page] = daemon_->http_get("/traces/" + id + "/report");
  ASSERT_EQ(code, 200) << page.substr(0, 300);
  EXPECT_NE(page.find("Swimlane"), std::string::npos);
  EXPECT_NE(page.find("Trace of device dev-7f3a"), std::string::npos);
  EXPECT_EQ(page.find("<script src=\"http"), std::string::npos);
  EXPECT_EQ(daemon_->http_get("/traces/no-such-trace/report").first, 404);
}

// The web console opens the report in a new tab through a report ticket
// (kernel/http/report_tickets.h): one GET of that path, once, gzip-encoded by
// the gateway (not httplib's slow brotli), under the report's own CSP.
TEST_F(TracerDaemonTest, AReportTicketOpensTheReportOnceUnderItsOwnPolicy) {
  auto req = request();
  req.add_topics("devices");
  auto result = trace(req);
  ASSERT_TRUE(result.status.ok()) << result.status.error_message();
  std::string path = "/traces/" + result.summary.trace_id() + "/report";
  httplib::Client client("http://" + daemon_->http_address());
  client.set_read_timeout(60, 0);
  auto issued =
      client.Post("/api/report-tickets", nlohmann::json{{"path", path}}.dump(), "application/json");
  ASSERT_TRUE(issued);
  ASSERT_EQ(issued->status, 200) << issued->body;
  EXPECT_EQ(issued->get_header_value("Cache-Control"), "no-store");
  auto answer = nlohmann::json::parse(issued->body);
  std::string url = answer["url"].get<std::string>();
  ASSERT_TRUE(url.starts_with(path + "?ticket=")) << url;
  EXPECT_GE(url.size() - path.size() - 8, 43u);  // 256 random bits, base64url
  EXPECT_EQ(answer["expiresInSeconds"], 60);

  auto page = client.Get(url, {{"Accept-Encoding", "gzip, deflate, br"}});
  ASSERT_TRUE(page);
  ASSERT_EQ(page->status, 200) << page->body.substr(0, 300);
  EXPECT_EQ(page->get_header_value("Content-Type"), "text/html; charset=utf-8");
  EXPECT_EQ(page->get_header_value("Content-Encoding"), "gzip");
  EXPECT_EQ(page->get_header_value("Cache-Control"), "no-store");
  std::string policy = page->get_header_value("Content-Security-Policy");
  EXPECT_NE(policy.find("script-src 'unsafe-inline'"), std::string::npos) << policy;
  EXPECT_NE(policy.find("connect-src 'none'"), std::string::npos) << policy;
  EXPECT_NE(policy.find("sandbox allow-scripts"), std::string::npos) << policy;
  EXPECT_NE(page->body.find("Trace of device dev-7f3a"), std::string::npos);

  auto again = client.Get(url);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->status, 401);
  EXPECT_NE(again->body.find("ticket"), std::string::npos) << again->body;

  auto not_a_report =
      client.Post("/api/report-tickets", R"({"path": "/traces"})", "application/json");
  ASSERT_TRUE(not_a_report);
  EXPECT_EQ(not_a_report->status, 400) << not_a_report->body;
}

// The report opens in headless Chromium (Debian's chromium) with no console
// error and its Plotly charts drawn (each chart becomes a .main-svg).
TEST_F(TracerDaemonTest, ReportRendersInHeadlessChromiumWithoutConsoleErrors) {
  std::string chromium = find_executable("chromium", {"/usr/bin/chromium"});
  ASSERT_FALSE(chromium.empty()) << "chromium not found: apt-get install chromium (make deps)";
  auto result = trace(request());
  ASSERT_TRUE(result.status.ok()) << result.status.error_message();
  auto report = std::filesystem::path(result.summary.output_dir()) / "report_dev-7f3a.html";
  TempDir profile("telekern-chromium");
  auto run =
      run_command(chromium +
                      " --headless=new --no-sandbox --disable-gpu --no-first-run "
                      "--user-data-dir=" +
                      profile.path().string() +
                      " --enable-logging=stderr --v=0 --virtual-time-budget=10000 --dump-dom "
                      "file://" +
                      report.string() + " 2>" + (profile.path() / "console.log").string(),
                  std::chrono::seconds(90));
  ASSERT_EQ(run.exit_code, 0) << run.output;
  size_t charts = 0;
  for (size_t at = 0; (at = run.output.find("class=\"main-svg\"", at)) != std::string::npos; ++at)
    ++charts;
  EXPECT_GE(charts, 3u) << "Plotly did not draw the charts";
  std::ifstream console(profile.path() / "console.log");
  std::string line;
  while (std::getline(console, line)) {
    EXPECT_EQ(line.find("CONSOLE"), std::string::npos) << line;
    EXPECT_EQ(line.find("Uncaught"), std::string::npos) << line;
  }
}

TEST_F(TracerDaemonTest, TracesReuseTheirBrokerGroups) {
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(trace(request()).status.ok());
  auto broker = broker::v1::Broker::NewStub(daemon_->channel());
  grpc::ClientContext context;
  broker::v1::ListGroupsRequest list;
  list.set_topic("orders");
  broker::v1::ListGroupsResponse groups;
  ASSERT_TRUE(broker->ListGroups(&context, list, &groups).ok());
  int tracer_groups = 0;
  for (const auto& group : groups.groups())
    tracer_groups += group.group().rfind("telekern-tracer-", 0) == 0;
  EXPECT_EQ(tracer_groups, 1);  // sequential traces share one group
}

TEST_F(TracerDaemonTest, TraceDeviceFromTelesh) {
  auto run = telesh_commands(
      *daemon_,
      "trace device dev-7f3a --source broker --max-age 0s --topics orders --no-events -o json");
  ASSERT_EQ(run.exit_code, 0) << run.output;
  size_t orders_expected = 0;
  for (const auto& key : expected()) orders_expected += std::get<0>(key) == "orders";
  EXPECT_NE(run.output.find("\"matched\":\"" + std::to_string(orders_expected) + "\""),
            std::string::npos)
      << run.output;
  EXPECT_NE(run.output.find("\"complete\":true"), std::string::npos) << run.output;
}

// Off a terminal, telesh prints a line per topic bar (records of the offsets
// between start and end, what matched), not one bar for the whole trace.
TEST_F(TracerDaemonTest, TeleshPrintsAProgressLinePerTopicOffATerminal) {
  auto run =
      telesh_commands(*daemon_, "trace device dev-7f3a --source broker --max-age 0s --no-events");
  ASSERT_EQ(run.exit_code, 0) << run.output;
  std::map<std::string, size_t> matched;
  for (const auto& key : expected()) matched[std::get<0>(key)]++;
  EXPECT_NE(
      run.output.find("orders  [##############################] 1200/1200 records  100%  done  " +
                      std::to_string(matched["orders"]) + " matched"),
      std::string::npos)
      << run.output;
  EXPECT_NE(
      run.output.find("devices [##############################] 800/800 records  100%  done  " +
                      std::to_string(matched["devices"]) + " matched"),
      std::string::npos)
      << run.output;
  EXPECT_EQ(run.output.find('\033'), std::string::npos) << run.output;
  EXPECT_NE(run.output.find("complete:"), std::string::npos) << "the summary follows\n"
                                                             << run.output;
}

// An ssh trace without a password (nor password_env, key_file) in batch mode:
// telesh names the flag and the variable instead of sending it; the variable
// fills it.
TEST_F(TracerDaemonTest, TeleshNamesThePasswordFlagAndVariableInBatchMode) {
  std::string command =
      "trace device dev-7f3a --source ssh --ssh.host 127.0.0.1:1 --ssh.user nobody";
  auto run = telesh_commands(*daemon_, command);
  EXPECT_EQ(run.exit_code, 2) << run.output;
  EXPECT_NE(run.output.find("SSH password needed"), std::string::npos) << run.output;
  EXPECT_NE(run.output.find("--ssh.password"), std::string::npos) << run.output;
  EXPECT_NE(run.output.find("TELESH_SSH_PASSWORD"), std::string::npos) << run.output;
  EXPECT_NE(run.output.find("--ssh.password-env or --ssh.key-file"), std::string::npos)
      << run.output;
  // Given through the variable (or another way to log in), the request is sent:
  // the daemon answers that nothing listens on port 1.
  auto with_env = run_telesh(*daemon_, "-c " + shell_quote(command),
                             {.env = "TELESH_SSH_PASSWORD=secret", .redirect = "2>&1"});
  EXPECT_GT(with_env.exit_code, 2) << with_env.output;
  EXPECT_EQ(with_env.output.find("SSH password needed"), std::string::npos) << with_env.output;
  auto with_key = telesh_commands(*daemon_, command + " --ssh.key-file /nonexistent");
  EXPECT_GT(with_key.exit_code, 2) << with_key.output;
}

// The report's event table filters in the page: typing into the filter box
// hides rows that do not match, the topic and partition drop-downs and the
// time range narrow them to exactly the expected events; no console message,
// no network request (headless chromium driven by playwright-core).
TEST_F(TracerDaemonTest, ReportEventTableFiltersInHeadlessChromium) {
  std::string node = find_executable("node", {"/usr/bin/node"});
  ASSERT_FALSE(node.empty()) << "node not found: apt-get install nodejs (make deps)";
  std::string web = std::string(TELEKERN_SOURCE_DIR) + "/web";
  ASSERT_TRUE(std::filesystem::exists(web + "/node_modules/playwright-core"))
      << "playwright-core missing in " << web << "/node_modules: run make deps (npm ci)";
  auto result = trace(request());
  ASSERT_TRUE(result.status.ok()) << result.status.error_message();
  auto report = std::filesystem::path(result.summary.output_dir()) / "report_dev-7f3a.html";

  // Expected counts from what the test produced.
  size_t total = 0, devices = 0, devices_p1 = 0, orders = 0;
  std::vector<int64_t> devices_p1_times;
  for (const auto& [key, time] : records_) {
    ++total;
    const auto& [topic, partition, offset] = key;
    orders += topic == "orders";
    if (topic != "devices") continue;
    ++devices;
    if (partition != 1) continue;
    ++devices_p1;
    devices_p1_times.push_back(time);
  }
  ASSERT_FALSE(devices_p1_times.empty());
  std::sort(devices_p1_times.begin(), devices_p1_times.end());
  std::time_t middle = devices_p1_times[devices_p1_times.size() / 2] / 1000;
  std::tm day{};
  gmtime_r(&middle, &day);
  char day_text[16];
  std::strftime(day_text, sizeof day_text, "%Y-%m-%d", &day);
  day.tm_hour = day.tm_min = day.tm_sec = 0;
  int64_t day_start_ms = static_cast<int64_t>(timegm(&day)) * 1000;
  size_t since_day = std::count_if(devices_p1_times.begin(), devices_p1_times.end(),
                                   [&](int64_t time) { return time >= day_start_ms; });
  ASSERT_LT(since_day, devices_p1);

  nlohmann::json steps = nlohmann::json::array(
      {{{"type", "#events-search"}, {"text", "no-such-text"}},
       {{"click", "#events-clear"}},
       {{"select", "[data-table=events][data-column=\"1\"]"}, {"value", "devices"}},
       {{"select", "[data-table=events][data-column=\"2\"]"}, {"value", "1"}},
       {{"type", "[data-table=events][data-column=\"0\"][data-kind=from]"}, {"text", day_text}},
       {{"click", "#events-clear"}},
       {{"type", "#events-search"}, {"text", "ORDERS"}}});
  auto run = run_command("TELEKERN_WEB_DIR=" + web + " " + node + " " + TELEKERN_SOURCE_DIR +
                             "/tests/e2e/tracer/report_filter.mjs " + report.string() + " " +
                             shell_quote(steps.dump()),
                         std::chrono::seconds(120));
  ASSERT_EQ(run.exit_code, 0) << run.output;
  auto output =
      nlohmann::json::parse(run.output.substr(run.output.rfind("{\"problems\"")), nullptr, false);
  ASSERT_TRUE(output.is_object()) << run.output;
  EXPECT_TRUE(output["problems"].empty()) << output["problems"].dump();
  EXPECT_EQ(output["rows"], total);
  std::vector<size_t> visible = output["visible"];
  EXPECT_EQ(visible,
            (std::vector<size_t>{total, 0, total, devices, devices_p1, since_day, total, orders}))
      << run.output;
  EXPECT_EQ(output["counts"][4],
            std::to_string(devices_p1) + " of " + std::to_string(total) + " rows");
}

// Kafka TLS through the typed request fields: a CA file that cannot be read
// fails the trace at once with INVALID_ARGUMENT naming the file.
TEST_F(TracerDaemonTest, KafkaTraceWithABadCaFileFailsNamingTheFile) {
  auto bad = request();
  bad.set_source(tracer::v1::SOURCE_KAFKA);
  bad.set_kafka_brokers("127.0.0.1:9");
  bad.mutable_kafka_security()->set_protocol(tracer::v1::KAFKA_SECURITY_PROTOCOL_SSL);
  bad.mutable_kafka_security()->set_ca_file("/nonexistent/ca.pem");
  auto result = trace(bad);
  EXPECT_EQ(result.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(result.status.error_message().find("CA file '/nonexistent/ca.pem' cannot be read"),
            std::string::npos)
      << result.status.error_message();
}

}  // namespace
}  // namespace telekern::testing
