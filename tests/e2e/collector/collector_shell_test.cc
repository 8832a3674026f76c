// The collector from telesh, through the commands generated from
// collector.proto's cli options: ingest (with replay), gpus, hosts,
// telemetry, watch and status.
#include <gtest/gtest.h>

#include <atomic>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <thread>

#include "tests/support/influxdb_server.h"
#include "tests/support/telekernd.h"
#include "tests/support/telesh.h"

namespace telekern::testing {
namespace {

std::string csv_rows(int gpus, int steps) {
  std::string out =
      "timestamp,metric_name,gpu_id,device,uuid,modelName,Hostname,container,pod,namespace,"
      "value,labels_raw\n";
  for (int step = 0; step < steps; ++step)
    for (int g = 0; g < gpus; ++g)
      for (const char* metric : {"DCGM_FI_DEV_GPU_TEMP", "DCGM_FI_DEV_GPU_UTIL"})
        out += "2025-07-18T20:00:" + std::to_string(10 + step) + "Z," + metric + "," +
               std::to_string(g) + ",nvidia" + std::to_string(g) + ",GPU-shell-" +
               std::to_string(g) + ",NVIDIA H100,shell-host,c,p,ns," + std::to_string(50 + step) +
               ",\n";
  return out;
}

TEST(CollectorShellTest, IngestQueryWatchAndStatusFromTelesh) {
  InfluxDbServer influx;
  ASSERT_FALSE(influx.binary().empty())
      << "influxd is not installed: `make deps` installs Debian's influxdb";
  ASSERT_TRUE(influx.ready()) << influx.log();
  Telekernd daemon(
      {.config_yaml = "modules:\n  collector:\n    store: influxdb\n    influxdb:\n      url: " +
                      influx.url() + "\n    batch_age: 100ms\n",
       .modules_dir = std::string(TELEKERN_BUILD_DIR) + "/modules",
       .load = {"broker", "collector"}});
  ASSERT_TRUE(daemon.ready()) << daemon.log();
  auto file = daemon.dir() / "shell.csv";
  std::ofstream(file) << csv_rows(2, 5) << "2025-07-18T20:00:10Z,DCGM_FI_DEV_GPU_TEMP\n";

  // Replayed (re-stamped to now) at 1000 rows/s, so --since 1h finds them.
  auto ingested = telesh_commands(
      daemon, "collector ingest " + file.string() + " --replay --rate 1000/s -o json");
  ASSERT_EQ(ingested.exit_code, 0) << ingested.output;
  auto result = nlohmann::json::parse(ingested.output, nullptr, false);
  ASSERT_FALSE(result.is_discarded()) << ingested.output;
  EXPECT_EQ(result.value("rows_published", ""), "20") << ingested.output;
  EXPECT_EQ(result.value("rows_rejected", ""), "1") << ingested.output;
  EXPECT_NE(ingested.output.find("shell.csv:22:"), std::string::npos) << ingested.output;

  CommandResult gpus;
  ASSERT_TRUE(wait_for(
      [&] {
        gpus = telesh_commands(daemon, "collector gpus -o json");
        return gpus.output.find("GPU-shell-1") != std::string::npos;
      },
      std::chrono::seconds(30)))
      << gpus.output;
  auto hosts = telesh_commands(daemon, "collector hosts");
  EXPECT_NE(hosts.output.find("shell-host"), std::string::npos) << hosts.output;

  CommandResult temps;
  ASSERT_TRUE(wait_for(
      [&] {
        temps = telesh_commands(
            daemon,
            "collector telemetry GPU-shell-0 --since 1h --metric DCGM_FI_DEV_GPU_TEMP -o json");
        auto parsed = nlohmann::json::parse(temps.output, nullptr, false);
        return !parsed.is_discarded() && parsed.value("count", 0) == 5;
      },
      std::chrono::seconds(30)))
      << temps.output;
  EXPECT_EQ(temps.output.find("DCGM_FI_DEV_GPU_UTIL"), std::string::npos) << temps.output;

  // watch follows new points of one GPU: points keep coming until it has shown one.
  std::atomic<bool> done{false};
  std::thread sender([&] {
    while (!done) {
      telesh_commands(daemon,
                      "collector submit --device-id nvidia9 --uuid GPU-shell-0 --metric "
                      "DCGM_FI_DEV_GPU_TEMP --value 99 --hostname shell-host");
      wait_for([&] { return done.load(); }, std::chrono::milliseconds(200));
    }
  });
  auto watched =
      run_command("NO_COLOR=1 timeout 20 " + telesh_binary() + " --addr " + daemon.grpc_address() +
                      " collector watch GPU-shell-0 2>&1 | grep -m1 99",
                  std::chrono::seconds(30));
  done = true;
  sender.join();
  EXPECT_NE(watched.output.find("99"), std::string::npos) << watched.output;

  auto status = telesh_commands(daemon, "collector status -o json");
  ASSERT_EQ(status.exit_code, 0) << status.output;
  auto parsed = nlohmann::json::parse(status.output, nullptr, false);
  ASSERT_FALSE(parsed.is_discarded()) << status.output;
  EXPECT_EQ(parsed.value("breaker", ""), "BREAKER_STATE_CLOSED") << status.output;
  EXPECT_EQ(parsed.value("store_reachable", false), true) << status.output;
  EXPECT_GE(std::stoll(parsed.value("points_written", "0")), 20) << status.output;
}

// `collector ingest FILE` streams a LOCAL file in 64 KiB chunks (the cli
// option's upload): rows cut by chunk boundaries arrive whole, malformed rows
// (some of them straddling a boundary) are rejected with their line numbers,
// and exactly the file's valid rows reach the store.
TEST(CollectorShellTest, IngestStreamsALocalFileInChunksAndKeepsEveryRow) {
  Telekernd daemon({.config_yaml = "modules:\n  collector:\n    batch_age: 100ms\n",
                    .modules_dir = std::string(TELEKERN_BUILD_DIR) + "/modules",
                    .load = {"broker", "collector"}});
  ASSERT_TRUE(daemon.ready()) << daemon.log();
  constexpr size_t kChunk = 64 * 1024;
  constexpr int kGpus = 8;
  std::string text =
      "timestamp,metric_name,gpu_id,device,uuid,modelName,Hostname,container,pod,namespace,"
      "value,labels_raw\n";
  int line = 1;
  std::map<int, int> rows_of_gpu;
  std::vector<int> bad_lines;
  size_t straddling_good = 0;
  size_t next_boundary = kChunk;
  const std::string bad = "2025-07-18T20:00:10Z,DCGM_FI_DEV_GPU_TEMP,0,nvidia0,not-enough-columns";
  for (int step = 0; text.size() < 10 * kChunk; ++step) {
    for (int g = 0; g < kGpus; ++g) {
      for (const char* metric : {"DCGM_FI_DEV_GPU_TEMP", "DCGM_FI_DEV_POWER_USAGE"}) {
        // A malformed row across the next chunk boundary.
        if (text.size() < next_boundary && text.size() + bad.size() / 2 >= next_boundary) {
          text += bad + "\n";
          bad_lines.push_back(++line);
          next_boundary += kChunk;
        }
        std::string row = std::to_string(1752868800 + step * 10) + "," + metric + "," +
                          std::to_string(g) + ",nvidia" + std::to_string(g) + ",GPU-chunk-" +
                          std::to_string(g) + ",NVIDIA H100,chunk-host,c,p,ns," +
                          std::to_string(40 + step % 50) + ".5,\n";
        if (text.size() < next_boundary && text.size() + row.size() > next_boundary) {
          ++straddling_good;
          next_boundary += kChunk;
        }
        text += row;
        ++line;
        ++rows_of_gpu[g];
      }
    }
  }
  ASSERT_GE(bad_lines.size(), 3u);
  ASSERT_GE(straddling_good, 3u);
  int valid = 0;
  for (const auto& [gpu, rows] : rows_of_gpu) valid += rows;
  // The file lives only on the shell's side of the call in spirit: a name
  // the daemon never opens (it gets bytes).
  TempDir local("collector-upload");
  auto file = local.path() / "chunked.csv";
  std::ofstream(file, std::ios::binary) << text;

  auto ingested = telesh_commands(daemon, "collector ingest " + file.string() + " -o json");
  ASSERT_EQ(ingested.exit_code, 0) << ingested.output;
  auto result = nlohmann::json::parse(ingested.output, nullptr, false);
  ASSERT_FALSE(result.is_discarded()) << ingested.output;
  EXPECT_EQ(result.value("rows_published", ""), std::to_string(valid)) << ingested.output;
  EXPECT_EQ(result.value("rows_rejected", ""), std::to_string(bad_lines.size())) << ingested.output;
  for (int bad_line : bad_lines)
    EXPECT_NE(ingested.output.find(file.string() + ":" + std::to_string(bad_line) + ":"),
              std::string::npos)
        << "line " << bad_line << " not reported: " << ingested.output;

  // Every valid row is in the store, once: per GPU, the count the file has.
  for (const auto& [gpu, rows] : rows_of_gpu) {
    CommandResult points;
    int count = -1;
    EXPECT_TRUE(wait_for(
        [&] {
          points = telesh_commands(daemon, "collector telemetry GPU-chunk-" + std::to_string(gpu) +
                                               " --since 100000h --limit 10000 -o json");
          auto parsed = nlohmann::json::parse(points.output, nullptr, false);
          count = parsed.is_discarded() ? -1 : parsed.value("count", 0);
          return count == rows;
        },
        std::chrono::seconds(30)))
        << "GPU " << gpu << ": " << count << " of " << rows << " rows";
  }
}

}  // namespace
}  // namespace telekern::testing
