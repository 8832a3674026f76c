// Rows per second Kafka -> FlowProcessor -> ClickHouse through the etl
// pipeline, against the store's ceiling: a bulk JSONEachRow insert of the
// same rows with curl into the same server, in the same run. Rounds rotate
// which side goes first; prints median, spread and the ratio (target >= 0.8).
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "etl_engine.h"
#include "row_binary.h"
#include "tables.h"
#include "telekern/log.h"
#include "telekern/stream.h"
#include "tests/support/clickhouse_server.h"
#include "tests/support/kafka_mock_cluster.h"
#include "tests/support/process.h"

using namespace telekern;
using namespace std::chrono_literals;

namespace {

std::string flow_message(int i) {
  return "{\"start\":" + std::to_string(1733050000 + i % 86400) +
         ",\"end\":" + std::to_string(1733050060 + i % 86400) +
         ",\"policy\":{\"originator\":\"esnet\",\"level\":\"tlp:amber\",\"scopes\":[\"esnet\"]},"
         "\"meta\":{\"src_ip\":\"198.51.100." +
         std::to_string(i % 250) + "\",\"dst_ip\":\"2001:db8::" + std::to_string(i % 9999) +
         "\",\"src_port\":" + std::to_string(1024 + i % 60000) +
         ",\"dst_port\":443,\"src_asn\":64496,\"dst_asn\":64511,\"protocol\":\"tcp\","
         "\"sensor_id\":\"flow-1\",\"router\":{\"ip\":\"192.0.2.1\",\"name\":\"rtr0\"},"
         "\"bgp\":{\"as_path\":[64496,64500,64511],\"comms\":[\"64496:100\"]},"
         "\"mpls\":{\"labels\":[16001]}},\"values\":{\"num_bits\":" +
         std::to_string(8000 * (i + 1)) + ",\"num_packets\":" + std::to_string(10 * (i + 1)) +
         ",\"duration\":60.0}}";
}

// CPU seconds (user + system) of this process, all threads.
double process_cpu() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  auto seconds = [](const timeval& t) {
    return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) * 1e-6;
  };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

// CPU seconds (user + system) of process `pid`, from /proc/<pid>/stat.
double cpu_of(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  size_t at = text.rfind(')');
  if (at == std::string::npos) return 0;
  std::istringstream fields(text.substr(at + 2));
  std::string field;
  double ticks = 0;
  for (int i = 3; i <= 15 && fields >> field; ++i)
    if (i == 14 || i == 15) ticks += std::atof(field.c_str());  // utime, stime
  return ticks / static_cast<double>(sysconf(_SC_CLK_TCK));
}

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

}  // namespace

int main() {
  const int messages =
      std::getenv("ETL_BENCH_MESSAGES") ? std::atoi(std::getenv("ETL_BENCH_MESSAGES")) : 16000;
  const int batch_size =
      std::getenv("ETL_BENCH_BATCH") ? std::atoi(std::getenv("ETL_BENCH_BATCH")) : 0;
  const int rounds =
      std::getenv("ETL_BENCH_ROUNDS") ? std::atoi(std::getenv("ETL_BENCH_ROUNDS")) : 3;
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  testing::ClickHouseServer clickhouse;
  testing::KafkaMockCluster kafka{1};
  if (!clickhouse.ready() || !kafka.ok()) {
    std::cerr << "clickhouse-server or the Kafka mock cluster did not start\n";
    return 1;
  }
  std::vector<std::string> values;
  for (int i = 0; i < messages; ++i) values.push_back(flow_message(i));

  etl::EtlOptions base;
  base.clickhouse_host = "127.0.0.1";
  base.clickhouse_port = clickhouse.http_port();
  std::string version = clickhouse.query("SELECT version()");
  while (!version.empty() && version.back() == '\n') version.pop_back();
  auto profile = etl::ServerProfile::for_version(version);
  // The peer's input: the very rows the pipeline writes, made by the processor;
  // and where the pipeline's CPU goes: parsing and building rows alone.
  telekern::testing::TempDir scratch("etl-bench");
  std::string rows_file = (scratch.path() / "rows.ndjson").string();
  {
    auto processor = etl::make_builtin_processor("FlowProcessor", etl::BuiltinSettings{});
    simdjson::dom::parser parser;
    etl::BuildContext context;
    context.profile = profile;
    std::vector<etl::Row> rows;
    rows.reserve(values.size());
    auto cpu_now = [] {
      timespec now{};
      clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
      return static_cast<double>(now.tv_sec) + static_cast<double>(now.tv_nsec) * 1e-9;
    };
    // CPU as the pipeline spends it: batches of 1000 messages built into rows,
    // encoded as RowBinary (and, for comparison, JSONEachRow), then dropped;
    // the best of ETL_BENCH_PASSES (5) passes (other sessions share the machine).
    {
      auto encoder = etl::RowBinaryEncoder::create(etl::flow_edge_schema(), profile);
      double best_build = 1e9, best_binary = 1e9, best_json = 1e9;
      size_t binary_bytes = 0, json_bytes = 0;
      bool encoded_ok = encoder.ok();
      std::vector<etl::Row> batch;
      std::vector<const etl::Row*> pointers;
      std::string body;
      const int passes =
          std::getenv("ETL_BENCH_PASSES") ? std::atoi(std::getenv("ETL_BENCH_PASSES")) : 5;
      for (int pass = 0; pass < passes; ++pass) {
        double build = 0, binary = 0, json = 0;
        binary_bytes = json_bytes = 0;
        for (size_t at = 0; at < values.size(); at += 1000) {
          batch.clear();
          double t0 = cpu_now();
          for (size_t i = at; i < std::min(values.size(), at + 1000); ++i) {
            auto document = parser.parse(values[i]);
            etl::Message message;
            (void)(*processor)->build(document.value_unsafe(), message, context, batch);
          }
          double t1 = cpu_now();
          pointers.clear();
          for (const auto& row : batch) pointers.push_back(&row);
          body.clear();
          if (encoder.ok()) encoded_ok = encoded_ok && encoder->encode(pointers, body).ok();
          binary_bytes += body.size();
          double t2 = cpu_now();
          body.clear();
          for (const auto* row : pointers) {
            row->append_json(body);
            body += '\n';
          }
          json_bytes += body.size();
          double t3 = cpu_now();
          build += t1 - t0;
          binary += t2 - t1;
          json += t3 - t2;
        }
        best_build = std::min(best_build, build);
        best_binary = std::min(best_binary, binary);
        best_json = std::min(best_json, json);
      }
      double count = static_cast<double>(values.size());
      std::printf(
          "CPU per message, batches of 1000, best of ETL_BENCH_PASSES passes: FlowProcessor (parse "
          "+ build) "
          "%.2f us, RowBinary encoding %.2f us (%zu bytes, %s), JSONEachRow %.2f us (%zu "
          "bytes)\n",
          best_build * 1e6 / count, best_binary * 1e6 / count, binary_bytes,
          encoded_ok ? "ok" : "failed", best_json * 1e6 / count, json_bytes);
    }
    for (const auto& value : values) {
      auto document = parser.parse(value);
      etl::Message message;
      (void)(*processor)->build(document.value_unsafe(), message, context, rows);
    }
    if (std::getenv("ETL_BENCH_INSERT_ONLY")) {
      std::vector<const etl::Row*> pointers;
      for (const auto& row : rows) pointers.push_back(&row);
      auto encoder = etl::RowBinaryEncoder::create(etl::flow_edge_schema(), profile);
      std::string binary, json;
      auto columns = encoder->encode(pointers, binary);
      for (const auto* row : pointers) {
        row->append_json(json);
        json += '\n';
      }
      etl::ClickHouse writer(etl::ClickHouseOptions{"127.0.0.1", clickhouse.http_port()});
      (void)writer.ensure_table(etl::flow_edge_schema());
      for (int i = 0; i < 3; ++i) {
        auto t0 = std::chrono::steady_clock::now();
        auto s1 = writer.insert_row_binary("flow_edge", *columns, binary);
        auto t1 = std::chrono::steady_clock::now();
        auto s2 = writer.insert_json("flow_edge", json);
        auto t2 = std::chrono::steady_clock::now();
        std::printf("insert alone: RowBinary %.3f s (%s), JSONEachRow %.3f s (%s)\n",
                    std::chrono::duration<double>(t1 - t0).count(), s1.ToString().c_str(),
                    std::chrono::duration<double>(t2 - t1).count(), s2.ToString().c_str());
      }
      return 0;
    }
    if (std::getenv("ETL_BENCH_PROCESS_ONLY")) return 0;
    if (rows.size() != values.size()) {
      std::cerr << "FlowProcessor refused a bench message\n";
      return 1;
    }
    std::ofstream out(rows_file);
    for (const auto& row : rows) out << row.json() << "\n";
  }
  std::vector<double> pipeline_rates, peer_rates;
  for (int round = 0; round < rounds; ++round) {
    std::string database = "bench_" + std::to_string(round);
    clickhouse.query("CREATE DATABASE IF NOT EXISTS " + database);
    std::string topic = "flows_" + std::to_string(round);
    kafka.create_topic(topic, 16);  // the mock keeps only ~2000 records per partition
    auto run_pipeline = [&]() -> double {
      etl::EtlOptions o = base;
      o.clickhouse_database = database;
      o.pipeline_type = "clickhouse";
      o.clickhouse_processors = "FlowProcessor";
      o.kafka_topic = topic;
      o.kafka_bootstrap_servers = kafka.bootstraps();
      o.kafka_auto_offset_reset = "earliest";
      o.kafka_session_timeout_ms = 6000;
      o.kafka_heartbeat_interval_ms = 500;
      // The module's defaults (batches of 1000, one streamed INSERT spanning
      // them), except the batch timeout: 2 s instead of 30 s lets the warm-up
      // message's lone batch go before the clock starts; the timed messages
      // fill whole batches. ETL_BENCH_BATCH overrides the batch size.
      if (batch_size > 0) o.clickhouse_batch_size = batch_size;
      o.clickhouse_batch_timeout =
          std::getenv("ETL_BENCH_TIMEOUT") ? std::atof(std::getenv("ETL_BENCH_TIMEOUT")) : 2.0;
      MetricsRegistry metrics;
      etl::EtlEngine engine(o, &metrics, make_logger("etl-bench"));
      engine.start();
      stream::StreamConfig config;
      config.transport = "kafka://" + kafka.bootstraps();
      auto producer = stream::make_producer(config);
      // Warm-up: one message, so the group has joined before the clock starts.
      stream::Record warm;
      warm.topic = topic;
      warm.value = flow_message(0);
      (void)(*producer)->send(warm);
      (void)(*producer)->flush(10s);
      testing::wait_for(
          [&] { return clickhouse.count("SELECT count() FROM " + database + ".flow_edge") == 1; },
          60s);
      double cpu_begin = process_cpu(), server_begin = cpu_of(clickhouse.pid());
      auto begin = std::chrono::steady_clock::now();
      for (size_t i = 0; i < values.size(); ++i) {
        stream::Record record;
        record.topic = topic;
        record.partition =
            static_cast<int32_t>(i % 16);  // even spread (the sticky partitioner is not)
        record.value = values[i];
        while (!(*producer)->send(record).ok()) (void)(*producer)->flush(1s);
      }
      (void)(*producer)->flush(30s);
      double produced =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count();
      double consumed = 0;  // when the pipeline had built rows of every message
      // The clock stops when the pipeline counts every row as written (ClickHouse
      // answered the INSERT holding them), as the peer's stops when curl's INSERT
      // returns; the in-process counters are read every millisecond (a 20 ms
      // poll added 10 ms on average to a 0.3 s run). SELECT count() then checks
      // the rows are there, off the clock as the peer's check is.
      bool written = false;
      auto give_up = begin + 300s;
      while (!written && std::chrono::steady_clock::now() < give_up) {
        auto view = engine.view("default");
        if (view.ok()) {
          if (consumed == 0 && view->counters.messages >= static_cast<uint64_t>(messages) + 1)
            consumed =
                std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count();
          written = view->counters.rows_written >= static_cast<uint64_t>(messages) + 1;
        }
        if (!written) std::this_thread::sleep_for(1ms);
      }
      double seconds =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count();
      double cpu = process_cpu() - cpu_begin, server_cpu = cpu_of(clickhouse.pid()) - server_begin;
      bool done = written && testing::wait_for(
                                 [&] {
                                   return clickhouse.count("SELECT count() FROM " + database +
                                                           ".flow_edge") == messages + 1;
                                 },
                                 60s);
      engine.shutdown();
      // Where the time went: the ClickHouse writer's share of the run.
      std::string text = metrics.expose();
      std::string key =
          "telekern_etl_writer_latency_seconds_sum{pipeline=\"default\",writer=\"clickhouse\"} ";
      std::string inserts_key =
          "telekern_etl_inserts_total{pipeline=\"default\",table=\"flow_edge\"} ";
      auto inserts_at = text.find(inserts_key);
      if (auto at = text.find(key); at != std::string::npos)
        std::printf(
            "  (pipeline run %.2f s: all produced after %.2f s, consumed and built after %.2f s; "
            "%.0f INSERTs (warm-up's included), of which ClickHouse inserts %.2f s; CPU: bench "
            "process (producer, mock cluster, pipeline) %.2f s, clickhouse-server %.2f s)\n",
            seconds, produced, consumed,
            inserts_at == std::string::npos
                ? 0.0
                : std::atof(text.c_str() + inserts_at + inserts_key.size()),
            std::atof(text.c_str() + at + key.size()), cpu, server_cpu);
      return done ? messages / seconds : 0;
    };
    auto run_peer = [&]() -> double {
      clickhouse.query("CREATE TABLE IF NOT EXISTS " + database + ".flow_edge_peer AS " + database +
                       ".flow_edge");
      std::string command = "curl -sS --fail -o /dev/null 'http://127.0.0.1:" +
                            std::to_string(clickhouse.http_port()) + "/?query=INSERT%20INTO%20" +
                            database + ".flow_edge_peer%20FORMAT%20JSONEachRow' --data-binary @" +
                            rows_file;
      double server_begin = cpu_of(clickhouse.pid());
      auto begin = std::chrono::steady_clock::now();
      int status = std::system(command.c_str());
      double seconds =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count();
      std::printf("  (peer run %.2f s; CPU: clickhouse-server %.2f s)\n", seconds,
                  cpu_of(clickhouse.pid()) - server_begin);
      if (status != 0 ||
          clickhouse.count("SELECT count() FROM " + database + ".flow_edge_peer") != messages)
        return 0;
      return messages / seconds;
    };
    // The peer's table copies the pipeline's, so the pipeline's table must exist first.
    double pipeline_rate = 0, peer_rate = 0;
    pipeline_rate = run_pipeline();
    peer_rate = run_peer();
    if (round % 2 == 1) {  // rotate: the peer goes first on odd rounds, into a fresh table
      clickhouse.query("DROP TABLE " + database + ".flow_edge_peer");
      peer_rate = run_peer();
    }
    std::printf("round %d: pipeline %.0f rows/s, curl bulk insert %.0f rows/s\n", round,
                pipeline_rate, peer_rate);
    pipeline_rates.push_back(pipeline_rate);
    peer_rates.push_back(peer_rate);
  }
  auto [pmin, pmax] = std::minmax_element(pipeline_rates.begin(), pipeline_rates.end());
  auto [cmin, cmax] = std::minmax_element(peer_rates.begin(), peer_rates.end());
  double ratio = median(pipeline_rates) / std::max(1.0, median(peer_rates));
  std::printf(
      "etl flow pipeline (Kafka -> FlowProcessor -> ClickHouse 18.16), %d rows x %d rounds\n",
      messages, rounds);
  std::printf("  pipeline: median %.0f rows/s (spread %.0f..%.0f)\n", median(pipeline_rates), *pmin,
              *pmax);
  std::printf("  peer (curl JSONEachRow bulk insert): median %.0f rows/s (spread %.0f..%.0f)\n",
              median(peer_rates), *cmin, *cmax);
  std::printf("  ratio pipeline/peer: %.2f (target >= 0.8)\n", ratio);
  return 0;
}
