// The collector on a real telekernd (embedded broker, auth) writing to a real
// influxd: CSV in -> every valid row queryable by InfluxQL and through the
// seed's REST routes, malformed rows rejected with line numbers, the seed's
// POST /telemetry JSON, auth roles, an InfluxDB outage mid-stream without
// loss, and two collector instances sharing one group.
#include <gtest/gtest.h>
#include <httplib.h>

#include <fstream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "telekern/collector/v1/collector.grpc.pb.h"
#include "tests/support/auth_config.h"
#include "tests/support/influxdb_server.h"
#include "tests/support/telekernd.h"

namespace telekern::testing {
namespace {

using nlohmann::json;

struct Reply {
  int status = 0;
  std::string body;
  json parsed() const { return json::parse(body, nullptr, false); }
};

Reply send(const Telekernd& daemon, const std::string& verb, const std::string& path,
           const std::string& body = "", const std::string& key = kOperatorKey) {
  auto address = daemon.http_address();
  httplib::Client client("127.0.0.1", std::stoi(address.substr(address.rfind(':') + 1)));
  client.set_read_timeout(60, 0);
  httplib::Headers headers;
  if (!key.empty()) headers.emplace("X-API-Key", key);
  auto result = verb == "GET" ? client.Get(path, headers)
                              : client.Post(path, headers, body, "application/json");
  if (!result) return {-1, httplib::to_string(result.error())};
  return {result->status, result->body};
}

std::string collector_config(const InfluxDbServer& influx, const std::string& extra = "") {
  return auth_config_yaml() + "modules:\n  broker:\n    default_partitions: 4\n" +
         "  collector:\n    store: influxdb\n    influxdb:\n      url: " + influx.url() +
         "\n    consumers: 2\n    batch_age: 100ms\n    batch_size: 500\n"
         "    retry:\n      max: 500ms\n    breaker:\n      failures: 3\n      open_for: 300ms\n" +
         extra;
}

// A DCGM CSV: hosts x gpus x metrics x steps rows, 10 s apart from `start` (epoch s).
std::string dcgm_csv(const std::string& prefix, int hosts, int gpus, int steps,
                     long long start = 1752868800, int metrics = 3) {
  static const char* kMetrics[] = {"DCGM_FI_DEV_GPU_TEMP", "DCGM_FI_DEV_POWER_USAGE",
                                   "DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_DEV_SM_CLOCK"};
  std::string out =
      "timestamp,metric_name,gpu_id,device,uuid,modelName,Hostname,container,pod,namespace,"
      "value,labels_raw\n";
  for (int step = 0; step < steps; ++step) {
    for (int h = 0; h < hosts; ++h) {
      for (int g = 0; g < gpus; ++g) {
        for (int m = 0; m < metrics; ++m) {
          out += std::to_string(start + step * 10) + "," + kMetrics[m] + "," + std::to_string(g) +
                 ",nvidia" + std::to_string(g) + ",GPU-" + prefix + "-" + std::to_string(h) + "-" +
                 std::to_string(g) + ",NVIDIA H100 80GB HBM3," + prefix + "-host-" +
                 std::to_string(h) + ",trainer,pod-" + std::to_string(g) + "," +
                 (g % 2 ? "research" : "ml-training") + "," + std::to_string(40 + step + m * 0.5) +
                 ",\"driver=\"\"535\"\"\"\n";
        }
      }
    }
  }
  return out;
}

long long host_points(const InfluxDbServer& influx, const std::string& host_prefix) {
  auto [status, body] = influx.query(
      "telemetry", "SELECT count(\"value\") FROM \"gpu_telemetry\" WHERE \"hostname\" =~ /^" +
                       host_prefix + "-host-/");
  if (status != 200) return -1;
  auto parsed = json::parse(body, nullptr, false);
  try {
    return parsed["results"][0]["series"][0]["values"][0][1].get<long long>();
  } catch (...) {
    return 0;
  }
}

// WatchTelemetry for one host on one daemon, collecting the GPU uuids seen.
class Watcher {
 public:
  Watcher(const Telekernd& daemon, const std::string& host)
      : stub_(collector::v1::Collector::NewStub(daemon.channel())) {
    context_.AddMetadata("x-api-key", kViewerKey);
    collector::v1::WatchTelemetryRequest request;
    request.set_host(host);
    reader_ = stub_->WatchTelemetry(&context_, request);
    thread_ = std::thread([this] {
      collector::v1::WatchTelemetryResponse response;
      while (reader_->Read(&response)) {
        std::lock_guard lock(mutex_);
        seen_.insert(response.point().uuid());
      }
    });
  }
  ~Watcher() {
    context_.TryCancel();
    thread_.join();
    (void)reader_->Finish();
  }
  std::set<std::string> seen() const {
    std::lock_guard lock(mutex_);
    return seen_;
  }

 private:
  std::unique_ptr<collector::v1::Collector::Stub> stub_;
  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientReader<collector::v1::WatchTelemetryResponse>> reader_;
  std::thread thread_;
  mutable std::mutex mutex_;
  std::set<std::string> seen_;
};

class CollectorTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    influx_ = new InfluxDbServer();
    watch_dir_ = new TempDir("collector-watch");
    if (influx_->ready())
      daemon_ = new Telekernd({.config_yaml = collector_config(
                                   *influx_, "    watch_dir: " + watch_dir_->path().string() +
                                                 "\n    watch_interval: 100ms\n"),
                               .modules_dir = std::string(TELEKERN_BUILD_DIR) + "/modules",
                               .load = {"broker", "collector"}});
  }
  static void TearDownTestSuite() {
    delete daemon_;
    daemon_ = nullptr;
    delete influx_;
    influx_ = nullptr;
    delete watch_dir_;
    watch_dir_ = nullptr;
  }
  void SetUp() override {
    ASSERT_FALSE(influx_->binary().empty())
        << "influxd is not installed: `make deps` installs Debian's influxdb";
    ASSERT_TRUE(influx_->ready()) << influx_->log();
    ASSERT_TRUE(daemon_ && daemon_->ready()) << (daemon_ ? daemon_->log() : "");
  }
  std::string write_file(const std::string& name, const std::string& text) {
    auto path = daemon_->dir() / name;
    std::ofstream(path) << text;
    return path.string();
  }
  static Reply ingest(const Telekernd& daemon, const std::string& path) {
    return send(daemon, "POST", "/rpc/telekern.collector.v1.Collector/IngestCsv",
                json{{"path", path}}.dump());
  }

  static InfluxDbServer* influx_;
  static Telekernd* daemon_;
  static TempDir* watch_dir_;
};
TempDir* CollectorTest::watch_dir_ = nullptr;
InfluxDbServer* CollectorTest::influx_ = nullptr;
Telekernd* CollectorTest::daemon_ = nullptr;

TEST_F(CollectorTest, CsvRowsAreQueryableByInfluxQlAndTheApiAndBadRowsAreRejected) {
  // 2 hosts x 4 GPUs x 3 metrics x 10 steps = 240 valid rows, then 4 bad ones.
  std::string csv = dcgm_csv("csv", 2, 4, 10);
  csv += "1752868800,DCGM_FI_DEV_GPU_TEMP,0,nvidia0,GPU-x,H100,csv-host-0,c,p,n,hot,\n";  // 242
  csv += "1752868800,DCGM_FI_DEV_GPU_TEMP,0,nvidia0\n";                                   // 243
  csv += "yesterday,DCGM_FI_DEV_GPU_TEMP,0,nvidia0,GPU-x,H100,csv-host-0,c,p,n,1,\n";     // 244
  csv += "1752868800,bad metric,0,nvidia0,GPU-x,H100,csv-host-0,c,p,n,1,\n";              // 245
  auto reply = ingest(*daemon_, write_file("csv.csv", csv));
  ASSERT_EQ(reply.status, 200) << reply.body;
  auto body = reply.parsed();
  EXPECT_EQ(body.value("rowsPublished", "0"), "240") << reply.body;
  EXPECT_EQ(body.value("rowsRejected", "0"), "4") << reply.body;
  auto rejects = body["rejects"].dump();
  for (const char* line : {"csv.csv:242:", "csv.csv:243:", "csv.csv:244:", "csv.csv:245:"})
    EXPECT_NE(rejects.find(line), std::string::npos) << line << " in " << rejects;
  EXPECT_NE(rejects.find("'hot' is not a number"), std::string::npos) << rejects;

  // The reject file holds them with their reasons.
  std::ifstream reject_file(body.value("rejectFile", ""));
  std::string text((std::istreambuf_iterator<char>(reject_file)), {});
  EXPECT_NE(text.find("csv.csv,243,"), std::string::npos) << text;

  // Every valid row reaches InfluxDB.
  ASSERT_TRUE(
      wait_for([&] { return host_points(*influx_, "csv") == 240; }, std::chrono::seconds(30)))
      << host_points(*influx_, "csv") << "\n"
      << daemon_->log();
  auto [status, raw] = influx_->query(
      "telemetry",
      "SELECT \"value\",\"labels_raw\" FROM \"gpu_telemetry\" WHERE \"uuid\" = "
      "'GPU-csv-1-2' AND \"metric\" = 'DCGM_FI_DEV_POWER_USAGE' ORDER BY time LIMIT 1");
  ASSERT_EQ(status, 200);
  auto first = json::parse(raw)["results"][0]["series"][0]["values"][0];
  EXPECT_EQ(first[0].get<long long>(), 1752868800LL * 1000000000LL);
  EXPECT_DOUBLE_EQ(first[1].get<double>(), 40.5);
  EXPECT_EQ(first[2].get<std::string>(), "driver=\"535\"");

  // And through the API (viewer role).
  auto gpus = send(*daemon_, "GET", "/api/v1/gpus?host=csv-host-1", "", kViewerKey);
  ASSERT_EQ(gpus.status, 200) << gpus.body;
  EXPECT_EQ(gpus.parsed()["count"], 4) << gpus.body;
  EXPECT_EQ(gpus.parsed()["gpus"][0]["hostname"], "csv-host-1") << gpus.body;
  EXPECT_EQ(gpus.parsed()["gpus"][0]["lastSeen"], "2025-07-18T20:01:30Z") << gpus.body;

  auto points = send(*daemon_, "GET",
                     "/api/v1/gpus/GPU-csv-1-2/telemetry?start=2025-07-18T20:00:00Z&end=2025-07-"
                     "18T21:00:00Z",
                     "", kViewerKey);
  ASSERT_EQ(points.status, 200) << points.body;
  EXPECT_EQ(points.parsed()["count"], 30) << points.body;
  EXPECT_EQ(points.parsed()["points"][0]["hostname"], "csv-host-1");

  auto temps = send(*daemon_, "GET",
                    "/api/v1/gpus/GPU-csv-1-2/telemetry?start=2025-07-18T20:00:00Z&end=2025-07-"
                    "18T21:00:00Z&metric=DCGM_FI_DEV_GPU_TEMP&limit=4",
                    "", kViewerKey);
  ASSERT_EQ(temps.status, 200) << temps.body;
  EXPECT_EQ(temps.parsed()["count"], 4) << temps.body;
  EXPECT_EQ(temps.parsed()["nextPageToken"], "4") << temps.body;
  EXPECT_EQ(temps.parsed()["points"][3]["value"], 43) << temps.body;

  // Downsampled: 1-minute max of the temperature (steps 0..5 and 6..9).
  auto windows = send(*daemon_, "GET",
                      "/api/v1/gpus/GPU-csv-1-2/telemetry?start=2025-07-18T20:00:00Z&end=2025-07-"
                      "18T21:00:00Z&metric=DCGM_FI_DEV_GPU_TEMP&window=60s&aggregate=AGGREGATE_MAX",
                      "", kViewerKey);
  ASSERT_EQ(windows.status, 200) << windows.body;
  ASSERT_EQ(windows.parsed()["count"], 2) << windows.body;
  EXPECT_EQ(windows.parsed()["points"][0]["value"], 45) << windows.body;
  EXPECT_EQ(windows.parsed()["points"][1]["value"], 49) << windows.body;

  auto hosts = send(*daemon_, "GET", "/api/v1/hosts", "", kViewerKey);
  ASSERT_EQ(hosts.status, 200) << hosts.body;
  EXPECT_NE(hosts.body.find("\"csv-host-0\""), std::string::npos) << hosts.body;
  auto namespaces = send(*daemon_, "GET", "/api/v1/namespaces", "", kViewerKey);
  ASSERT_EQ(namespaces.status, 200) << namespaces.body;
  EXPECT_NE(namespaces.body.find("\"research\""), std::string::npos) << namespaces.body;
  EXPECT_NE(namespaces.body.find("\"ml-training\""), std::string::npos) << namespaces.body;

  // Metrics count what happened.
  auto [code, metrics] = daemon_->http_get("/metrics", {{"X-API-Key", kViewerKey}});
  ASSERT_EQ(code, 200);
  EXPECT_NE(metrics.find("telekern_collector_rows_rejected_total{reason=\"malformed\"}"),
            std::string::npos);
  EXPECT_NE(metrics.find("telekern_collector_points_written_total"), std::string::npos);
  EXPECT_NE(metrics.find("telekern_collector_breaker_state 0"), std::string::npos);
}

TEST_F(CollectorTest, SeedPostTelemetryJsonAndQueryByDeviceId) {
  auto posted = send(*daemon_, "POST", "/telemetry", R"({
    "device_id": "gpu-001",
    "metric": "temperature",
    "value": 75.5,
    "time": "2025-09-25T10:30:00Z",
    "gpu_id": "0",
    "uuid": "12345678-1234-1234-1234-123456789012",
    "model_name": "NVIDIA RTX 4090",
    "hostname": "worker-node-1",
    "container": "gpu-workload",
    "pod": "gpu-pod-1",
    "namespace": "default",
    "labels_raw": "app=ml-training"
  })");
  ASSERT_EQ(posted.status, 200) << posted.body;
  EXPECT_EQ(posted.parsed()["status"], "accepted");
  Reply got;
  ASSERT_TRUE(wait_for(
      [&] {
        got = send(*daemon_, "GET",
                   "/api/v1/gpus/gpu-001/telemetry?start=2025-09-25T00:00:00Z&end=2025-09-25T23:"
                   "59:59Z",
                   "", kViewerKey);
        return got.status == 200 && got.parsed().value("count", 0) == 1;
      },
      std::chrono::seconds(30)))
      << got.status << " " << got.body;
  auto point = got.parsed()["points"][0];
  EXPECT_EQ(point["value"], 75.5);
  EXPECT_EQ(point["metricName"], "temperature");
  EXPECT_EQ(point["device"], "gpu-001");
  EXPECT_EQ(point["labelsRaw"], "app=ml-training");
  EXPECT_EQ(point["time"], "2025-09-25T10:30:00Z");

  // A point naming no metric is refused with the reason.
  auto bad = send(*daemon_, "POST", "/telemetry", R"({"device_id": "gpu-001", "value": 1})");
  EXPECT_EQ(bad.status, 400) << bad.body;
  EXPECT_NE(bad.body.find("metric_name is empty"), std::string::npos) << bad.body;
}

TEST_F(CollectorTest, ReplayRestampsRowsToNowAndLoops) {
  auto before_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  // 1 host x 2 GPUs x 2 metrics x 5 steps = 20 rows from 2025, replayed at 200 rows/s.
  auto path = write_file("replay.csv", dcgm_csv("replay", 1, 2, 5, 1752868800, 2));
  auto reply = send(*daemon_, "POST", "/rpc/telekern.collector.v1.Collector/IngestCsv",
                    json{{"path", path}, {"replay", true}, {"rate", "200/s"}}.dump());
  ASSERT_EQ(reply.status, 200) << reply.body;
  EXPECT_EQ(reply.parsed().value("rowsPublished", "0"), "20") << reply.body;
  ASSERT_TRUE(
      wait_for([&] { return host_points(*influx_, "replay") == 20; }, std::chrono::seconds(60)))
      << host_points(*influx_, "replay") << "\n"
      << influx_->query("telemetry", "SELECT * FROM gpu_telemetry WHERE hostname = 'replay-host-0'")
             .second;
  auto [status, body] = influx_->query(
      "telemetry",
      "SELECT min(\"value\") FROM \"gpu_telemetry\" WHERE \"hostname\" = 'replay-host-0' "
      "AND time < '2026-01-01T00:00:00Z'");
  EXPECT_EQ(body.find("\"values\""), std::string::npos) << "rows kept their 2025 time: " << body;
  auto [status2, body2] =
      influx_->query("telemetry",
                     "SELECT first(\"value\") FROM \"gpu_telemetry\" WHERE \"hostname\" = "
                     "'replay-host-0'");
  ASSERT_EQ(status2, 200);
  auto first_ns = json::parse(body2)["results"][0]["series"][0]["values"][0][0].get<long long>();
  EXPECT_GE(first_ns, before_ns - 1'000'000) << body2;

  // Looping runs in the background until the module stops: the count keeps growing.
  auto looped =
      send(*daemon_, "POST", "/rpc/telekern.collector.v1.Collector/IngestCsv",
           json{{"path", write_file("loop.csv", dcgm_csv("loop", 1, 1, 5, 1752868800, 1))},
                {"replay", true},
                {"rate", "500/s"},
                {"loop", true}}
               .dump());
  ASSERT_EQ(looped.status, 200) << looped.body;
  EXPECT_EQ(looped.parsed().value("runningInBackground", false), true) << looped.body;
  EXPECT_TRUE(
      wait_for([&] { return host_points(*influx_, "loop") >= 15; }, std::chrono::seconds(30)))
      << "a looping replay of 5 rows wrote " << host_points(*influx_, "loop");
}

TEST_F(CollectorTest, WatchDirectoryIngestsNewFilesOnce) {
  { std::ofstream(watch_dir_->path() / "drop.csv") << dcgm_csv("watch", 1, 2, 3); }
  ASSERT_TRUE(
      wait_for([&] { return host_points(*influx_, "watch") == 18; }, std::chrono::seconds(30)))
      << host_points(*influx_, "watch") << "\n"
      << daemon_->log();
  // Not again: over several more 100 ms scans the log reports the file once.
  auto reports = [&] {
    auto log = daemon_->log();
    size_t count = 0;
    for (size_t at = log.find("drop.csv published"); at != std::string::npos;
         at = log.find("drop.csv published", at + 1))
      ++count;
    return count;
  };
  EXPECT_EQ(reports(), 1u) << daemon_->log();
  // A bounded wait for a second report that must not come.
  EXPECT_FALSE(wait_for([&] { return reports() > 1; }, std::chrono::milliseconds(800)))
      << daemon_->log();
}

TEST_F(CollectorTest, SqliteStoreAnswersLikeInfluxDb) {
  // The embedded default store (no config) on a second daemon, the same CSV into both.
  Telekernd embedded({.config_yaml = "modules:\n  collector:\n    batch_age: 100ms\n",
                      .modules_dir = std::string(TELEKERN_BUILD_DIR) + "/modules",
                      .load = {"broker", "collector"}});
  ASSERT_TRUE(embedded.ready()) << embedded.log();
  auto csv = dcgm_csv("same", 2, 3, 12, 1752868800, 4);
  auto path = write_file("same.csv", csv);
  ASSERT_EQ(ingest(*daemon_, path).status, 200);
  auto reply = send(embedded, "POST", "/rpc/telekern.collector.v1.Collector/IngestCsv",
                    json{{"csv", csv}}.dump(), "");
  ASSERT_EQ(reply.status, 200) << reply.body;
  EXPECT_EQ(reply.parsed().value("rowsPublished", "0"), "288") << reply.body;
  // Ingested twice into SQLite: rewrites replace themselves there too.
  ASSERT_EQ(send(embedded, "POST", "/rpc/telekern.collector.v1.Collector/IngestCsv",
                 json{{"csv", csv}}.dump(), "")
                .status,
            200);
  ASSERT_TRUE(
      wait_for([&] { return host_points(*influx_, "same") == 288; }, std::chrono::seconds(30)));
  const std::string range = "start=2025-07-18T20:00:00Z&end=2025-07-18T21:00:00Z";
  std::vector<std::string> paths = {
      "/api/v1/gpus?host=same-host-1",
      "/api/v1/gpus/GPU-same-1-2/telemetry?" + range,
      "/api/v1/gpus/GPU-same-1-2/telemetry?" + range + "&limit=7&page_token=14",
      "/api/v1/gpus/GPU-same-0-2/telemetry?" + range + "&metric=DCGM_FI_DEV_GPU_UTIL&limit=10000",
      "/api/v1/gpus/GPU-same-0-1/telemetry?" + range + "&window=60s&aggregate=AGGREGATE_MAX",
      "/api/v1/gpus/GPU-same-0-1/telemetry?" + range + "&window=30s&metric=DCGM_FI_DEV_SM_CLOCK",
  };
  for (const auto& path : paths) {
    Reply from_sqlite;
    // The SQLite side has all 288 rows once the GPU list is complete and stable.
    ASSERT_TRUE(wait_for(
        [&] {
          from_sqlite = send(embedded, "GET", path, "", "");
          auto count =
              send(embedded, "GET", "/api/v1/gpus/GPU-same-1-2/telemetry?" + range + "&limit=10000",
                   "", "");
          return from_sqlite.status == 200 && count.parsed().value("count", 0) == 48;
        },
        std::chrono::seconds(30)))
        << path << ": " << from_sqlite.body;
    from_sqlite = send(embedded, "GET", path, "", "");
    auto from_influx = send(*daemon_, "GET", path, "", kViewerKey);
    ASSERT_EQ(from_influx.status, 200) << from_influx.body;
    EXPECT_EQ(from_sqlite.parsed(), from_influx.parsed()) << path;
    EXPECT_GT(from_influx.body.size(), 20u) << path << ": " << from_influx.body;
  }
}

TEST_F(CollectorTest, AuthRolesAreEnforced) {
  EXPECT_EQ(send(*daemon_, "GET", "/api/v1/gpus", "", "").status, 401);
  EXPECT_EQ(send(*daemon_, "GET", "/api/v1/gpus", "", "wrong-key").status, 401);
  EXPECT_EQ(send(*daemon_, "GET", "/api/v1/gpus", "", kViewerKey).status, 200);
  // Writing needs operator.
  auto viewer_post = send(*daemon_, "POST", "/telemetry",
                          R"({"device_id":"d","metric":"m","value":1})", kViewerKey);
  EXPECT_EQ(viewer_post.status, 403) << viewer_post.body;
  auto viewer_ingest = send(*daemon_, "POST", "/rpc/telekern.collector.v1.Collector/IngestCsv",
                            R"({"csv":"x"})", kViewerKey);
  EXPECT_EQ(viewer_ingest.status, 403) << viewer_ingest.body;
}

TEST_F(CollectorTest, InfluxOutageMidStreamLosesNoPoint) {
  // 4 hosts x 8 GPUs x 3 metrics x 20 steps = 1920 rows before, as many during the outage.
  auto before = ingest(*daemon_, write_file("before.csv", dcgm_csv("out", 4, 8, 20)));
  ASSERT_EQ(before.status, 200) << before.body;
  influx_->kill();
  auto during =
      ingest(*daemon_, write_file("during.csv", dcgm_csv("out", 4, 8, 20, 1752868800 + 200)));
  ASSERT_EQ(during.status, 200) << during.body;
  EXPECT_EQ(during.parsed().value("rowsPublished", "0"), "1920") << during.body;
  // The collectors hold what they consumed and the breaker opens.
  Reply status;
  ASSERT_TRUE(wait_for(
      [&] {
        status = send(*daemon_, "GET", "/api/v1/collector/status", "", kViewerKey);
        return status.parsed().value("breaker", "") == "BREAKER_STATE_OPEN";
      },
      std::chrono::seconds(30)))
      << status.body;
  EXPECT_GT(std::stoll(status.parsed().value("retries", "0")), 0) << status.body;
  // Nothing is committed while the store is down: the group's lag shows it,
  // per partition, in the status and in /metrics.
  ASSERT_TRUE(wait_for(
      [&] {
        status = send(*daemon_, "GET", "/api/v1/collector/status", "", kViewerKey);
        return std::stoll(status.parsed().value("consumerLag", "0")) > 0;
      },
      std::chrono::seconds(30)))
      << status.body;
  ASSERT_EQ(status.parsed()["partitionLags"].size(), 4u) << status.body;
  std::map<int, long long> end_during_outage;
  for (const auto& partition : status.parsed()["partitionLags"])
    end_during_outage[partition.value("partition", 0)] =
        std::stoll(partition.value("highWatermark", "0"));
  auto metrics = send(*daemon_, "GET", "/metrics", "", kViewerKey);
  EXPECT_NE(metrics.body.find("telekern_collector_consumer_lag{partition=\"0\"}"),
            std::string::npos)
      << metrics.body.substr(0, 2000);
  // Send part of it again: duplicates must collapse (same timestamp and tags).
  auto again = ingest(*daemon_, write_file("again.csv", dcgm_csv("out", 4, 8, 5)));
  ASSERT_EQ(again.status, 200) << again.body;

  ASSERT_TRUE(influx_->start()) << influx_->log();
  ASSERT_TRUE(
      wait_for([&] { return host_points(*influx_, "out") == 3840; }, std::chrono::seconds(60)))
      << host_points(*influx_, "out") << "\n"
      << daemon_->log();
  ASSERT_TRUE(wait_for(
      [&] {
        status = send(*daemon_, "GET", "/api/v1/collector/status", "", kViewerKey);
        return status.parsed().value("breaker", "") == "BREAKER_STATE_CLOSED" &&
               status.parsed().value("rowsWaiting", "0") == "0";
      },
      std::chrono::seconds(30)))
      << status.body;
  // Once written, the group committed past everything the topic held during
  // the outage (a looping replay of an earlier test keeps adding records,
  // so the lag itself need not reach 0).
  EXPECT_TRUE(wait_for(
      [&] {
        status = send(*daemon_, "GET", "/api/v1/collector/status", "", kViewerKey);
        for (const auto& partition : status.parsed()["partitionLags"])
          if (std::stoll(partition.value("committed", "-1")) <
              end_during_outage[partition.value("partition", 0)])
            return false;
        return true;
      },
      std::chrono::seconds(30)))
      << status.body;
}

// A write that reaches InfluxDB before its database exists (a fresh server:
// the collectors start beside the store check that creates it) is held and
// retried, never rejected. This race dropped replayed points under load.
TEST_F(CollectorTest, WritesBeforeTheDatabaseExistsAreHeldNotRejected) {
  Telekernd fresh(
      {.config_yaml = auth_config_yaml() +
                      "modules:\n  collector:\n    store: influxdb\n    influxdb:\n      url: " +
                      influx_->url() +
                      "\n      bucket: fresh\n      create_database: false\n"
                      "    batch_age: 100ms\n    retry:\n      max: 300ms\n",
       .modules_dir = std::string(TELEKERN_BUILD_DIR) + "/modules",
       .load = {"broker", "collector"}});
  ASSERT_TRUE(fresh.ready()) << fresh.log();
  auto path = fresh.dir() / "fresh.csv";
  std::ofstream(path) << dcgm_csv("fresh", 1, 8, 4);  // 96 rows
  auto reply = ingest(fresh, path.string());
  ASSERT_EQ(reply.status, 200) << reply.body;
  Reply status;
  ASSERT_TRUE(wait_for(
      [&] {
        status = send(fresh, "GET", "/api/v1/collector/status", "", kViewerKey);
        // Held, not committed: the group's lag is the whole file.
        return status.parsed().value("consumerLag", "0") == "96";
      },
      std::chrono::seconds(30)))
      << status.body;
  EXPECT_EQ(status.parsed().value("rowsRejected", "0"), "0") << status.body;
  ASSERT_EQ(influx_->query("", "CREATE DATABASE fresh", /*post=*/true).first, 200);
  auto count = [&] {
    auto [code, body] = influx_->query("fresh", "SELECT count(\"value\") FROM \"gpu_telemetry\"");
    auto parsed = json::parse(body, nullptr, false);
    try {
      return parsed["results"][0]["series"][0]["values"][0][1].get<long long>();
    } catch (...) {
      return 0LL;
    }
  };
  EXPECT_TRUE(wait_for([&] { return count() == 96; }, std::chrono::seconds(30))) << count();
  status = send(fresh, "GET", "/api/v1/collector/status", "", kViewerKey);
  EXPECT_EQ(status.parsed().value("rowsRejected", "0"), "0") << status.body;
}

TEST_F(CollectorTest, TwoCollectorInstancesShareTheGroup) {
  // A second daemon with only the collector, consuming through the first one's broker.
  Telekernd second(
      {.config_yaml = collector_config(
           *influx_, "    instance: second\n    stream:\n      transport: telekern://" +
                         daemon_->grpc_address() + "\n      api_key: " + std::string(kOperatorKey) +
                         "\n"),
       .modules_dir = std::string(TELEKERN_BUILD_DIR) + "/modules",
       .load = {"collector"}});
  ASSERT_TRUE(second.ready()) << second.log();
  auto written = [](const Telekernd& daemon) {
    auto status = send(daemon, "GET", "/api/v1/collector/status", "", kViewerKey);
    return std::stoll(status.parsed().value("pointsWritten", "0"));
  };
  long long first_before = written(*daemon_);
  // Give the group time to take the new member in, watching the broker's view.
  ASSERT_TRUE(wait_for(
      [&] {
        auto group = send(*daemon_, "POST", "/rpc/telekern.broker.v1.Broker/DescribeGroup",
                          R"({"topic":"telemetry","group":"collector"})", kOperatorKey);
        return group.body.find("second-") != std::string::npos;
      },
      std::chrono::seconds(30)));
  auto reply = ingest(*daemon_, write_file("shared.csv", dcgm_csv("shared", 4, 8, 10)));
  ASSERT_EQ(reply.status, 200) << reply.body;
  ASSERT_TRUE(
      wait_for([&] { return host_points(*influx_, "shared") == 960; }, std::chrono::seconds(60)))
      << host_points(*influx_, "shared") << "\n"
      << second.log();
  // Counters move just after the store answered: wait for them too.
  long long by_first = 0, by_second = 0;
  EXPECT_TRUE(wait_for(
      [&] {
        by_first = written(*daemon_) - first_before;
        by_second = written(second);
        return by_first + by_second >= 960;
      },
      std::chrono::seconds(10)))
      << by_first << " + " << by_second;
  EXPECT_GT(by_first, 0);
  EXPECT_GT(by_second, 0);

  // A watcher on either instance sees the points of the whole group, not
  // only those its own collectors wrote: the 8 GPUs of one host hash to
  // partitions of both instances.
  Watcher on_first(*daemon_, "watch-host");
  Watcher on_second(second, "watch-host");
  std::set<std::string> all;
  for (int g = 0; g < 8; ++g) all.insert("GPU-watch-" + std::to_string(g));
  int round = 0;
  EXPECT_TRUE(wait_for(
      [&] {
        // Points keep coming until both watchers (live from when they
        // started) have seen every GPU.
        for (int g = 0; g < 8; ++g) {
          auto submitted = send(*daemon_, "POST", "/telemetry",
                                json{{"device_id", "nvidia" + std::to_string(g)},
                                     {"uuid", "GPU-watch-" + std::to_string(g)},
                                     {"metric", "DCGM_FI_DEV_GPU_TEMP"},
                                     {"value", 60 + round},
                                     {"hostname", "watch-host"}}
                                    .dump());
          EXPECT_EQ(submitted.status, 200) << submitted.body;
        }
        ++round;
        return on_first.seen() == all && on_second.seen() == all;
      },
      std::chrono::seconds(30)))
      << "first saw " << on_first.seen().size() << ", second saw " << on_second.seen().size()
      << " of 8 GPUs";
  // Which instance wrote which GPU: both wrote some (else the check above proves nothing).
  auto owners = send(*daemon_, "POST", "/rpc/telekern.broker.v1.Broker/DescribeGroup",
                     R"({"topic":"telemetry","group":"collector"})", kOperatorKey);
  EXPECT_NE(owners.body.find("second-"), std::string::npos) << owners.body;
}

}  // namespace
}  // namespace telekern::testing
