// The bench module against real servers: short paced workloads on the
// embedded broker (through a real telekernd), Redis Streams (redis-server),
// NATS JetStream (nats-server) and Kafka (librdkafka's mock cluster); the
// Bench service over gRPC (stream, list, get, compare, cancel); the report in
// headless Chromium.
#include <grpcpp/client_context.h>
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <thread>

#include "bench_engine.h"
#include "health.h"
#include "results_json.h"
#include "runner.h"
#include "telekern/bench/v1/bench.grpc.pb.h"
#include "tests/support/kafka_mock_cluster.h"
#include "tests/support/nats_server.h"
#include "tests/support/process.h"
#include "tests/support/redis_server.h"
#include "tests/support/telekernd.h"

namespace telekern::bench {
namespace {

using nlohmann::json;
using telekern::testing::TempDir;

constexpr double kRate = 200;  // msg/s over all producers: low enough for every driver here

std::string workload_yaml(double rate, const std::string& duration = "3s",
                          const std::string& warmup = "1s", int consumers = 2) {
  return "name: paced-" + std::to_string(int(rate)) +
         "\ntopics: 1\npartitionsPerTopic: 2\nmessageSize: 256\n"
         "subscriptionsPerTopic: 1\nconsumerPerSubscription: " +
         std::to_string(consumers) +
         "\nproducersPerTopic: 2\n"
         "producerRate: " +
         std::to_string(rate) + "\ntestDurationMinutes: " + duration +
         "\nwarmupDurationMinutes: " + warmup + "\nkeyDistributor: KEY_ROUND_ROBIN\n";
}

// One server of each kind for the whole binary.
struct Servers {
  telekern::testing::RedisServer redis;
  telekern::testing::NatsServer nats;
  std::unique_ptr<telekern::testing::Telekernd> daemon;
  Servers() {
    telekern::testing::TelekerndOptions options;
    options.modules_dir = std::string(TELEKERN_BUILD_DIR) + "/modules";
    options.load = {"broker", "bench"};
    options.config_yaml =
        "modules:\n  bench:\n    window: 1s\n    health_interval: 1s\n"
        "    health_targets: [self]\n";
    daemon = std::make_unique<telekern::testing::Telekernd>(options);
  }
};

Servers& servers() {
  static Servers* instance = new Servers();  // lives for the binary; servers die with it
  return *instance;
}

void expect_omb_fields(const json& result) {
  for (const char* key : {"workload",
                          "driver",
                          "messageSize",
                          "topics",
                          "partitions",
                          "producersPerTopic",
                          "consumersPerTopic",
                          "publishRate",
                          "publishErrorRate",
                          "consumeRate",
                          "backlog",
                          "publishLatencyAvg",
                          "publishLatency50pct",
                          "publishLatency75pct",
                          "publishLatency95pct",
                          "publishLatency99pct",
                          "publishLatency999pct",
                          "publishLatency9999pct",
                          "publishLatencyMax",
                          "publishDelayLatencyAvg",
                          "publishDelayLatency50pct",
                          "publishDelayLatency99pct",
                          "aggregatedPublishLatencyAvg",
                          "aggregatedPublishLatency50pct",
                          "aggregatedPublishLatency75pct",
                          "aggregatedPublishLatency95pct",
                          "aggregatedPublishLatency99pct",
                          "aggregatedPublishLatency999pct",
                          "aggregatedPublishLatency9999pct",
                          "aggregatedPublishLatencyMax",
                          "aggregatedPublishLatencyQuantiles",
                          "aggregatedPublishDelayLatency99pct",
                          "endToEndLatencyAvg",
                          "endToEndLatency50pct",
                          "endToEndLatency75pct",
                          "endToEndLatency95pct",
                          "endToEndLatency99pct",
                          "endToEndLatency999pct",
                          "endToEndLatency9999pct",
                          "endToEndLatencyMax",
                          "aggregatedEndToEndLatencyAvg",
                          "aggregatedEndToEndLatency50pct",
                          "aggregatedEndToEndLatency75pct",
                          "aggregatedEndToEndLatency95pct",
                          "aggregatedEndToEndLatency99pct",
                          "aggregatedEndToEndLatency999pct",
                          "aggregatedEndToEndLatency9999pct",
                          "aggregatedEndToEndLatencyMax",
                          "aggregatedEndToEndLatencyQuantiles"})
    EXPECT_TRUE(result.contains(key)) << "OMB field " << key << " missing";
}

// Rates within 5% of the pacing target; percentiles monotonic and positive.
void expect_sane(const json& result, double rate) {
  expect_omb_fields(result);
  ASSERT_FALSE(result["publishRate"].empty());
  const auto& t = result["telekern"];
  double seconds = t["measuredSeconds"].get<double>();
  double publish = double(t["published"].get<uint64_t>()) / seconds;
  double consume = double(t["consumed"].get<uint64_t>()) / seconds;
  EXPECT_NEAR(publish, rate, rate * 0.05) << result["publishRate"].dump();
  EXPECT_NEAR(consume, rate, rate * 0.05) << result["consumeRate"].dump();
  double sum = 0;
  for (const auto& r : result["publishRate"]) sum += r.get<double>();
  EXPECT_NEAR(sum / double(result["publishRate"].size()), rate, rate * 0.05);
  for (const char* family : {"PublishLatency", "EndToEndLatency"}) {
    std::string a = std::string("aggregated") + family;
    double p50 = result[a + "50pct"], p75 = result[a + "75pct"], p95 = result[a + "95pct"],
           p99 = result[a + "99pct"], p999 = result[a + "999pct"], p9999 = result[a + "9999pct"],
           max = result[a + "Max"];
    EXPECT_GT(p50, 0) << family;
    EXPECT_LE(p50, p75);
    EXPECT_LE(p75, p95);
    EXPECT_LE(p95, p99);
    EXPECT_LE(p99, p999);
    EXPECT_LE(p999, p9999);
    EXPECT_LE(p9999, max);
  }
  // Raw histograms recompute the aggregated figures.
  auto histogram = histogram_from_json(t["histograms"]["publishLatency"]);
  ASSERT_TRUE(histogram.ok()) << histogram.status();
  EXPECT_DOUBLE_EQ(double(histogram->percentile(0.99)) / 1000.0,
                   result["aggregatedPublishLatency99pct"].get<double>());
  // Valid unless the load generator fell behind (on a loaded 2-core machine
  // it may): the verdict must follow the run's own p99 publish delay against
  // the default 100 ms bound, with that as the only reason.
  double delay_p99_ms = result["aggregatedPublishDelayLatency99pct"].get<double>() / 1000.0;
  bool behind = delay_p99_ms > 100.0;
  EXPECT_EQ(t["valid"].get<bool>(), !behind)
      << "p99 publish delay " << delay_p99_ms << " ms; " << t["invalidReasons"].dump();
  ASSERT_EQ(t["invalidReasons"].size(), behind ? 1u : 0u) << t["invalidReasons"].dump();
  if (behind) {
    EXPECT_NE(t["invalidReasons"][0].get<std::string>().find("fell behind its schedule"),
              std::string::npos);
  }
}

absl::StatusOr<RunResult> run_direct(const DriverSpec& spec, double rate, const std::string& prefix,
                                     const std::string& warmup = "1s", int consumers = 2) {
  auto workload = parse_workload(workload_yaml(rate, "3s", warmup, consumers));
  if (!workload.ok()) return workload.status();
  DriverEnvironment environment;
  auto driver = make_driver(spec, environment);
  if (!driver.ok()) return driver.status();
  RunOptions options;
  options.window = std::chrono::seconds(1);
  options.topic_prefix = prefix;
  return run_workload(*workload, spec, **driver, options, std::stop_token(), nullptr);
}

TEST(BenchDrivers, RedisStreamsPacedRun) {
  auto& redis = servers().redis;
  ASSERT_TRUE(redis.ready())
      << "redis-server missing or not answering (apt-get install redis-server)";
  auto spec = parse_driver("redis://127.0.0.1:" + std::to_string(redis.port()));
  ASSERT_TRUE(spec.ok());
  auto result = run_direct(*spec, kRate, "redis-paced");
  ASSERT_TRUE(result.ok()) << result.status();
  expect_sane(full_result(*result, "redis-run"), kRate);
}

TEST(BenchDrivers, NatsJetStreamPacedRun) {
  auto& nats = servers().nats;
  ASSERT_TRUE(nats.ready()) << "nats-server missing or not answering (apt-get install nats-server)";
  auto spec = parse_driver(nats.url());
  ASSERT_TRUE(spec.ok());
  auto result = run_direct(*spec, kRate, "nats-paced");
  ASSERT_TRUE(result.ok()) << result.status() << "\n" << nats.log();
  expect_sane(full_result(*result, "nats-run"), kRate);
}

TEST(BenchDrivers, TelekernBrokerOverTcpPacedRun) {
  auto& daemon = *servers().daemon;
  ASSERT_TRUE(daemon.ready()) << daemon.log();
  auto spec = parse_driver("telekern://" + daemon.grpc_address());
  ASSERT_TRUE(spec.ok());
  auto result = run_direct(*spec, kRate, "tk-paced");
  ASSERT_TRUE(result.ok()) << result.status();
  expect_sane(full_result(*result, "telekern-run"), kRate);
}

TEST(BenchDrivers, KafkaMockClusterPacedRun) {
  telekern::testing::KafkaMockCluster kafka(1);
  ASSERT_TRUE(kafka.ok());
  kafka.create_topic("kafka-paced-0", 2);
  auto spec = parse_driver("kafka://" + kafka.bootstraps());
  ASSERT_TRUE(spec.ok());
  // Kafka consumers join their group (a rebalance) and producers fetch
  // metadata before the first message flows: a longer warm-up keeps that out.
  // One consumer: librdkafka's in-process mock coordinator, starved under a
  // loaded ctest -j2, sometimes timed out a two-member rebalance (no record
  // consumed at all); the group protocol with two members is covered by the
  // other drivers' runs and the stream tests.
  auto result = run_direct(*spec, kRate, "kafka-paced", "4s", 1);
  ASSERT_TRUE(result.ok()) << result.status();
  expect_sane(full_result(*result, "kafka-run"), kRate);
}

TEST(BenchDrivers, WarmupNotExcludedFlagsTheRunInvalid) {
  auto workload = parse_workload(workload_yaml(100, "1s", "0"));
  ASSERT_TRUE(workload.ok());
  auto sink = make_sink_driver();
  DriverSpec spec;
  spec.kind = DriverKind::kSink;
  spec.name = "sink";
  RunOptions options;
  options.window = std::chrono::milliseconds(500);
  auto result = run_workload(*workload, spec, *sink, options, std::stop_token(), nullptr);
  ASSERT_TRUE(result.ok());
  EXPECT_FALSE(result->valid);
  ASSERT_FALSE(result->invalid_reasons.empty());
  EXPECT_NE(result->invalid_reasons[0].find("warm-up"), std::string::npos);
}

TEST(BenchDrivers, FallingBehindScheduleFlagsTheRunInvalid) {
  // A producer whose acks take 50 ms cannot keep 500 msg/s with one message
  // in flight per batch window: messages go out late, and the run says so.
  class SlowProducer final : public DriverProducer {
   public:
    absl::Status send_batch(const std::vector<Message>&) override {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      return absl::OkStatus();
    }
  };
  class SlowDriver final : public Driver {
   public:
    absl::Status create_topic(const std::string&, uint32_t) override { return absl::OkStatus(); }
    absl::StatusOr<std::unique_ptr<DriverProducer>> producer(const std::string&) override {
      return std::make_unique<SlowProducer>();
    }
    absl::StatusOr<std::unique_ptr<DriverConsumer>> consumer(const std::string&,
                                                             const std::string&) override {
      return make_sink_driver()->consumer("", "");
    }
  };
  auto workload = parse_workload(
      "name: behind\nproducerRate: 500\nmessageSize: 64\nproducersPerTopic: 1\n"
      "testDurationMinutes: 1s\nwarmupDurationMinutes: 0.5s\n");
  ASSERT_TRUE(workload.ok()) << workload.status();
  SlowDriver driver;
  RunOptions options;
  options.window = std::chrono::milliseconds(500);
  options.max_batch = 1;
  options.max_publish_delay = std::chrono::milliseconds(20);
  DriverSpec spec;
  auto result = run_workload(*workload, spec, driver, options, std::stop_token(), nullptr);
  ASSERT_TRUE(result.ok());
  EXPECT_FALSE(result->valid);
  bool behind = false;
  for (const auto& reason : result->invalid_reasons)
    behind = behind || reason.find("fell behind") != std::string::npos;
  EXPECT_TRUE(behind);
}

TEST(BenchHealth, UnreachableTargetDoesNotFailTheRunAndIsMarked) {
  auto& redis = servers().redis;
  ASSERT_TRUE(redis.ready());
  TempDir dir("bench-health");
  BenchOptions options;
  options.results_dir = (dir.path() / "results").string();
  options.window = std::chrono::seconds(1);
  options.health_interval = std::chrono::seconds(1);
  int dead_port = telekern::testing::free_loopback_port();
  options.health_targets = {"self", "http://127.0.0.1:" + std::to_string(dead_port) + "/metrics",
                            "pid:999999999"};
  BenchEngine engine(options, dir.path(), {}, nullptr);
  RunRequest request;
  request.workload = workload_yaml(100, "2s", "1s");
  request.driver = "redis://127.0.0.1:" + std::to_string(redis.port());
  std::vector<Progress> events;
  auto summary =
      engine.run(request, std::stop_token(), [&](const Progress& p) { events.push_back(p); });
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_EQ(summary->state, "completed");
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back().kind, Progress::Kind::kFinished);
  EXPECT_EQ(events.back().health_failures.size(), 2u);
  auto metrics = engine.store().dir(summary->id) / "metrics";
  for (const char* file :
       {"baseline_snapshot.json", "timeseries.json", "final_snapshot.json", "plot_data.json"})
    EXPECT_TRUE(std::filesystem::exists(metrics / file)) << file;
  std::ifstream in(metrics / "baseline_snapshot.json");
  auto baseline = json::parse(in);
  ASSERT_EQ(baseline["targets"].size(), 3u);
  EXPECT_TRUE(baseline["targets"][0]["ok"].get<bool>());
  EXPECT_TRUE(baseline["targets"][0].contains("rss_bytes"));
  EXPECT_FALSE(baseline["targets"][1]["ok"].get<bool>());
  EXPECT_FALSE(baseline["targets"][1]["error"].get<std::string>().empty());
  EXPECT_FALSE(baseline["targets"][2]["ok"].get<bool>());
  std::ifstream series_in(metrics / "timeseries.json");
  EXPECT_GE(json::parse(series_in).size(), 1u);
  EXPECT_TRUE(std::filesystem::exists(engine.store().dir(summary->id) / "report" / "index.html"));
  EXPECT_TRUE(std::filesystem::exists(engine.store().dir(summary->id) / "report" / "metrics.csv"));
  EXPECT_TRUE(std::filesystem::is_symlink(engine.store().root() / "latest"));
}

// ---- the Bench service through telekernd ----------------------------------

struct StreamOutcome {
  std::vector<v1::RunBenchmarkResponse> messages;
  grpc::Status status;
};

StreamOutcome run_over_grpc(v1::Bench::Stub& stub, const v1::RunBenchmarkRequest& request,
                            grpc::ClientContext* context = nullptr) {
  grpc::ClientContext local;
  if (!context) context = &local;
  StreamOutcome out;
  auto reader = stub.RunBenchmark(context, request);
  v1::RunBenchmarkResponse response;
  while (reader->Read(&response)) out.messages.push_back(response);
  out.status = reader->Finish();
  return out;
}

TEST(BenchService, RunStreamsProgressThenListGetCompareAndCancel) {
  auto& daemon = *servers().daemon;
  ASSERT_TRUE(daemon.ready()) << daemon.log();
  auto stub = v1::Bench::NewStub(daemon.channel());

  v1::RunBenchmarkRequest request;
  request.set_workload(workload_yaml(kRate, "2s", "1s"));  // the in-process broker
  request.set_report(true);
  auto first = run_over_grpc(*stub, request);
  ASSERT_TRUE(first.status.ok()) << first.status.error_message() << "\n" << daemon.log();
  ASSERT_GE(first.messages.size(), 4u);  // started, >= 2 windows, finished
  EXPECT_TRUE(first.messages.front().started());
  int windows = 0;
  for (const auto& m : first.messages) windows += m.has_window() ? 1 : 0;
  EXPECT_GE(windows, 3);
  const auto& finished = first.messages.back();
  ASSERT_TRUE(finished.has_finished());
  EXPECT_EQ(finished.finished().state(), "completed");
  // On a loaded 2-core machine the load generator may fall behind its
  // schedule; the run then says so and is flagged invalid. Any other reason
  // is a failure, and the flag must match the reasons given.
  for (const auto& reason : finished.invalid_reasons())
    EXPECT_NE(reason.find("fell behind its schedule"), std::string::npos) << reason;
  EXPECT_EQ(finished.finished().valid(), finished.invalid_reasons_size() == 0);
  EXPECT_NEAR(finished.finished().publish_rate(), kRate, kRate * 0.05);
  EXPECT_TRUE(std::filesystem::exists(finished.report_path()));
  std::string first_id = finished.run_id();

  request.set_driver("sink");
  request.set_report(false);
  auto second = run_over_grpc(*stub, request);
  ASSERT_TRUE(second.status.ok()) << second.status.error_message();
  std::string second_id = second.messages.back().run_id();

  {
    grpc::ClientContext context;
    v1::ListRunsResponse runs;
    ASSERT_TRUE(stub->ListRuns(&context, {}, &runs).ok());
    ASSERT_GE(runs.runs_size(), 2);
    EXPECT_EQ(runs.runs(0).run_id(), second_id);  // newest first
  }
  {
    grpc::ClientContext context;
    v1::GetRunRequest get;
    get.set_run_id(first_id);
    v1::GetRunResponse run;
    ASSERT_TRUE(stub->GetRun(&context, get, &run).ok());
    auto result = json::parse(run.result_json());
    expect_sane(result, kRate);
    EXPECT_EQ(result["driver"], "telekern");
  }
  {
    grpc::ClientContext context;
    v1::GetRunRequest get;
    get.set_run_id("exp-nope");
    v1::GetRunResponse run;
    auto status = stub->GetRun(&context, get, &run);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
    EXPECT_NE(status.error_message().find("bench runs"), std::string::npos);
  }
  {
    grpc::ClientContext context;
    v1::CompareRequest compare;
    compare.add_run_ids(first_id);
    compare.add_run_ids(second_id);
    v1::CompareResponse comparison;
    auto status = stub->Compare(&context, compare, &comparison);
    ASSERT_TRUE(status.ok()) << status.error_message();
    EXPECT_EQ(comparison.header_size(), 3);
    EXPECT_GE(comparison.rows_size(), 6);
    EXPECT_TRUE(std::filesystem::exists(comparison.report_path()));
  }

  // Cancel: a long run stops at the next moment, its results stored and flagged.
  request.mutable_duration()->set_seconds(120);
  std::atomic<bool> have_id{false};
  std::string running_id;
  grpc::ClientContext run_context;
  StreamOutcome cancelled;
  std::thread runner([&] {
    auto reader = stub->RunBenchmark(&run_context, request);
    v1::RunBenchmarkResponse response;
    while (reader->Read(&response)) {
      if (!have_id) {
        running_id = response.run_id();
        have_id = true;
      }
      cancelled.messages.push_back(response);
    }
    cancelled.status = reader->Finish();
  });
  ASSERT_TRUE(
      telekern::testing::wait_for([&] { return have_id.load(); }, std::chrono::seconds(10)));
  {
    grpc::ClientContext context;
    v1::CancelRunRequest cancel;
    cancel.set_run_id(running_id);
    v1::CancelRunResponse response;
    auto status = stub->CancelRun(&context, cancel, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
  }
  runner.join();
  ASSERT_TRUE(cancelled.status.ok()) << cancelled.status.error_message();
  ASSERT_FALSE(cancelled.messages.empty());
  ASSERT_TRUE(cancelled.messages.back().has_finished());
  EXPECT_EQ(cancelled.messages.back().finished().state(), "cancelled");
  EXPECT_FALSE(cancelled.messages.back().finished().valid());
}

// ---- the report in a real browser ------------------------------------------

TEST(BenchReport, OpensInHeadlessChromiumWithFiveChartsAndNoConsoleErrors) {
  std::string chromium = telekern::testing::find_executable(
      "chromium", {"/usr/bin/chromium", "/usr/bin/chromium-browser"});
  ASSERT_FALSE(chromium.empty()) << "chromium missing (apt-get install chromium)";
  auto& redis = servers().redis;
  auto& daemon = *servers().daemon;
  ASSERT_TRUE(redis.ready());
  ASSERT_TRUE(daemon.ready());
  TempDir dir("bench-report");
  BenchOptions options;
  options.results_dir = (dir.path() / "results").string();
  options.window = std::chrono::seconds(1);
  options.health_interval = std::chrono::seconds(1);
  options.health_targets = {"self", "http://" + daemon.http_address() + "/metrics"};
  BenchEngine engine(options, dir.path(), {}, nullptr);
  RunRequest request;
  request.workload = workload_yaml(100, "2s", "1s");
  request.driver = "redis://127.0.0.1:" + std::to_string(redis.port());
  auto summary = engine.run(request, std::stop_token(), nullptr);
  ASSERT_TRUE(summary.ok()) << summary.status();
  auto page = engine.store().dir(summary->id) / "report" / "index.html";
  ASSERT_TRUE(std::filesystem::exists(page));

  // Each chart's figure carries data.
  std::ifstream in(page);
  std::stringstream html;
  html << in.rdbuf();
  std::string text = html.str();
  std::regex figure_block("<script type=\"application/json\" id=\"(chart-[0-9]+)-data\">([^<]*)");
  int charts = 0;
  for (auto it = std::sregex_iterator(text.begin(), text.end(), figure_block);
       it != std::sregex_iterator(); ++it) {
    auto figure = json::parse((*it)[2].str());
    ++charts;
    ASSERT_FALSE(figure["data"].empty()) << (*it)[1];
    bool has_points = false;
    for (const auto& trace : figure["data"]) {
      if (trace.contains("z")) has_points = has_points || !trace["z"].empty();
      if (trace.contains("y")) has_points = has_points || !trace["y"].empty();
    }
    EXPECT_TRUE(has_points) << (*it)[1] << " has no data";
  }
  EXPECT_EQ(charts, 5);

  TempDir profile("bench-chromium");
  auto dumped = telekern::testing::run_command(
      chromium +
          " --headless --no-sandbox --disable-gpu --disable-dev-shm-usage "
          "--user-data-dir=" +
          profile.path().string() +
          " --enable-logging=stderr --v=0 --virtual-time-budget=5000 --dump-dom file://" +
          page.string() + " 2>" + (profile.path() / "console.log").string(),
      std::chrono::seconds(60));
  std::ifstream log_in(profile.path() / "console.log");
  std::stringstream log;
  log << log_in.rdbuf();
  std::string dom = dumped.output;
  // Plotly replaced each chart div's content with its SVG.
  size_t rendered = 0;
  for (size_t at = dom.find("class=\"main-svg\""); at != std::string::npos;
       at = dom.find("class=\"main-svg\"", at + 1))
    ++rendered;
  EXPECT_GE(rendered, 5u) << "charts not rendered; console:\n" << log.str();
  for (int i = 1; i <= 5; ++i) {
    auto at = dom.find("id=\"chart-" + std::to_string(i) + "\"");
    ASSERT_NE(at, std::string::npos);
    EXPECT_NE(dom.find("plot-container", at), std::string::npos) << "chart " << i;
  }
  std::string console = log.str();
  EXPECT_EQ(console.find("Uncaught"), std::string::npos) << console;
  EXPECT_EQ(console.find(":ERROR:CONSOLE"), std::string::npos) << console;
}

}  // namespace
}  // namespace telekern::bench
