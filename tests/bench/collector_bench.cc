// CSV rows per second end to end for the collector module (file -> IngestCsv
// -> broker -> collector group -> InfluxDB, until InfluxDB counts every
// point) beside its peer from the same run: a direct bulk POST of the same
// points as line protocol with curl into the same influxd, the store's
// ceiling (target ratio >= 0.7). Each round uses new hosts (new series) and
// the peer a new database; the order alternates between rounds. Figures are
// medians with the spread of the per-round ratios.
// Arguments: [rounds] [steps] [batch_linger] (rows per round = 5 hosts x 8
// GPUs x 12 metrics x steps; batch_linger: the module's default unless given,
// e.g. 0 to compare with the collector before the linger).
#include <httplib.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tests/support/influxdb_server.h"
#include "tests/support/telekernd.h"

namespace {

using namespace telekern::testing;
using Clock = std::chrono::steady_clock;

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  if (values.empty()) return 0;
  size_t mid = values.size() / 2;
  return values.size() % 2 ? values[mid] : (values[mid - 1] + values[mid]) / 2;
}

constexpr int kHosts = 5, kGpus = 8, kMetrics = 12;
const char* kMetricNames[kMetrics] = {"DCGM_FI_DEV_GPU_UTIL",
                                      "DCGM_FI_DEV_MEM_COPY_UTIL",
                                      "DCGM_FI_DEV_GPU_TEMP",
                                      "DCGM_FI_DEV_MEMORY_TEMP",
                                      "DCGM_FI_DEV_POWER_USAGE",
                                      "DCGM_FI_DEV_SM_CLOCK",
                                      "DCGM_FI_DEV_MEM_CLOCK",
                                      "DCGM_FI_DEV_FB_USED",
                                      "DCGM_FI_DEV_FB_FREE",
                                      "DCGM_FI_DEV_PCIE_TX_THROUGHPUT",
                                      "DCGM_FI_DEV_PCIE_RX_THROUGHPUT",
                                      "DCGM_FI_PROF_GR_ENGINE_ACTIVE"};

// The same points as a DCGM CSV and as line protocol (what the collector writes).
void make_round(const std::string& prefix, int steps, const std::string& csv_path,
                const std::string& lines_path) {
  std::ofstream csv(csv_path), lines(lines_path);
  csv << "timestamp,metric_name,gpu_id,device,uuid,modelName,Hostname,container,pod,namespace,"
         "value,labels_raw\n";
  long long start_ms = 1752868800000LL;
  for (int step = 0; step < steps; ++step) {
    for (int h = 0; h < kHosts; ++h) {
      for (int g = 0; g < kGpus; ++g) {
        std::string host = prefix + "-host-" + std::to_string(h);
        std::string uuid = "GPU-" + prefix + "-" + std::to_string(h) + "-" + std::to_string(g);
        for (int m = 0; m < kMetrics; ++m) {
          long long ms = start_ms + step * 10000LL;
          double value = 40 + (step * 7 + g * 3 + m) % 50;
          csv << ms << "," << kMetricNames[m] << "," << g << ",nvidia" << g << "," << uuid
              << ",NVIDIA H100 80GB HBM3," << host << ",trainer,pod-" << g << ",ml-training,"
              << value << ",\n";
          lines << "gpu_telemetry,container=trainer,device=nvidia" << g << ",gpu_id=" << g
                << ",hostname=" << host << ",metric=" << kMetricNames[m]
                << ",model_name=NVIDIA\\ H100\\ 80GB\\ HBM3,namespace=ml-training,pod=pod-" << g
                << ",uuid=" << uuid << " value=" << value << ".0 " << ms << "\n";
        }
      }
    }
  }
}

long long count_where(const InfluxDbServer& influx, const std::string& database,
                      const std::string& prefix) {
  auto [status, body] = influx.query(
      database, "SELECT count(\"value\") FROM \"gpu_telemetry\" WHERE \"hostname\" =~ /^" + prefix +
                    "-host-/");
  if (status != 200) return -1;
  auto parsed = nlohmann::json::parse(body, nullptr, false);
  try {
    return parsed["results"][0]["series"][0]["values"][0][1].get<long long>();
  } catch (...) {
    return 0;
  }
}

}  // namespace

int main(int argc, char** argv) {
  int rounds = argc > 1 ? std::atoi(argv[1]) : 5;
  int steps = argc > 2 ? std::atoi(argv[2]) : 100;
  std::string linger = argc > 3 ? argv[3] : "";
  long long rows = static_cast<long long>(kHosts) * kGpus * kMetrics * steps;
  InfluxDbServer influx;
  if (!influx.ready()) {
    std::fprintf(stderr, "influxd did not start (apt-get install influxdb)\n%s\n",
                 influx.log().c_str());
    return 1;
  }
  Telekernd daemon(
      {.config_yaml = "modules:\n  collector:\n    store: influxdb\n    influxdb:\n      url: " +
                      influx.url() + "\n    batch_age: 200ms\n" +
                      (linger.empty() ? "" : "    batch_linger: " + linger + "\n"),
       .modules_dir = std::string(TELEKERN_BUILD_DIR) + "/modules",
       .load = {"broker", "collector"}});
  if (!daemon.ready()) {
    std::fprintf(stderr, "telekernd did not start:\n%s\n", daemon.log().c_str());
    return 1;
  }
  auto address = daemon.http_address();
  httplib::Client gateway("127.0.0.1", std::stoi(address.substr(address.rfind(':') + 1)));
  gateway.set_read_timeout(600, 0);

  std::printf(
      "collector end to end: %lld CSV rows a round (%d hosts x %d GPUs x %d metrics x %d "
      "steps), %d rounds, batch_age 200ms, batch_linger %s\n",
      rows, kHosts, kGpus, kMetrics, steps, rounds,
      linger.empty() ? "default (20ms)" : linger.c_str());
  std::vector<double> pipeline_rates, peer_rates, ratios;
  std::vector<double> publish_shares;  // IngestCsv's time / the pipeline's
  for (int round = 0; round < rounds; ++round) {
    std::string prefix = "r" + std::to_string(round);
    std::string csv_path = (daemon.dir() / (prefix + ".csv")).string();
    std::string lines_path = (daemon.dir() / (prefix + ".lp")).string();
    make_round(prefix, steps, csv_path, lines_path);

    auto run_pipeline = [&]() -> double {
      auto started = Clock::now();
      auto reply = gateway.Post("/rpc/telekern.collector.v1.Collector/IngestCsv",
                                nlohmann::json{{"path", csv_path}}.dump(), "application/json");
      if (!reply || reply->status != 200) {
        std::fprintf(stderr, "IngestCsv failed: %s\n", reply ? reply->body.c_str() : "no reply");
        return 0;
      }
      auto published = Clock::now();
      if (!wait_for([&] { return count_where(influx, "telemetry", prefix) >= rows; },
                    std::chrono::minutes(5))) {
        std::fprintf(stderr, "round %d: only %lld of %lld points arrived\n", round,
                     count_where(influx, "telemetry", prefix), rows);
        return 0;
      }
      double seconds = std::chrono::duration<double>(Clock::now() - started).count();
      publish_shares.push_back(std::chrono::duration<double>(published - started).count() /
                               seconds);
      return static_cast<double>(rows) / seconds;
    };
    auto run_peer = [&]() -> double {
      std::string database = "peer_" + prefix;
      influx.query("", "CREATE DATABASE " + database, true);
      auto started = Clock::now();
      auto result =
          run_command("curl -sS -o /dev/null -w '%{http_code}' -XPOST '" + influx.url() +
                      "/write?db=" + database + "&precision=ms' --data-binary @" + lines_path);
      double seconds = std::chrono::duration<double>(Clock::now() - started).count();
      if (result.output != "204" || count_where(influx, database, prefix) != rows) {
        std::fprintf(stderr, "peer write failed: %s\n", result.output.c_str());
        return 0;
      }
      return static_cast<double>(rows) / seconds;
    };
    double pipeline = 0, peer = 0;
    if (round % 2 == 0) {
      pipeline = run_pipeline();
      peer = run_peer();
    } else {
      peer = run_peer();
      pipeline = run_pipeline();
    }
    if (pipeline <= 0 || peer <= 0) return 1;
    pipeline_rates.push_back(pipeline);
    peer_rates.push_back(peer);
    ratios.push_back(pipeline / peer);
    std::printf("  round %d: pipeline %8.0f rows/s, curl bulk POST %8.0f points/s, ratio %.2f\n",
                round, pipeline, peer, pipeline / peer);
  }
  auto [low, high] = std::minmax_element(ratios.begin(), ratios.end());
  std::printf("  file -> broker -> collector -> InfluxDB : %9.0f rows/s (median)\n",
              median(pipeline_rates));
  std::printf("  of which IngestCsv (parse, publish)      : %5.0f%% (median)\n",
              100 * median(publish_shares));
  std::printf("  curl bulk POST of the same line protocol : %9.0f points/s (median)\n",
              median(peer_rates));
  std::printf(
      "  ratio pipeline / bulk POST               : %5.2f median (%.2f-%.2f over rounds; "
      "target 0.70)\n",
      median(ratios), *low, *high);
  return 0;
}
