// The tracer against the usual way of finding a device in Kafka: `kcat -C -e
// -o beginning` per topic piped to `grep -F`, up to the same parallelism, on
// the same data in the same run (a 3-broker librdkafka mock cluster in a
// process of its own, 10 topics x 4 partitions). Full scans, then max_age =
// 10% of the span against `kcat -o s@<timestamp>`. Rotated rounds; records
// scanned per second, medians with min-max, and whether both found the same
// number of records.
//
// The data is produced as producers usually send it: batched (linger.ms 20,
// up to 10,000 records a batch) and lz4-compressed. Both sides read the same
// stored batches. Compression also keeps the issue's 200k records per
// partition inside the mock cluster, which keeps only the newest ~5 MiB of
// batches per partition (uncompressed, 200k of these records are ~24 MiB and
// the mock would drop three quarters of them); the bench counts the records
// the cluster holds (high - low watermarks), checks the tracer scanned exactly
// those, and computes every rate from them.
//
// Besides wall rates it prints what each side cost: client CPU (this process
// for the tracer; sh, xargs, kcat and grep for the peer) and the mock
// cluster's CPU, per record, and the load average before and after.
//
//   telekern_tracer_bench [records_per_topic=800000] [rounds=5]
#include <librdkafka/rdkafka.h>
#include <spdlog/sinks/null_sink.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "kafka_source.h"
#include "tests/support/process.h"
#include "trace_engine.h"

namespace {

using namespace telekern;
using Clock = std::chrono::steady_clock;

constexpr int kTopics = 10;
constexpr int kPartitions = 4;
constexpr const char* kDevice = "b40754c2bc034c9c9b29ec8e86a0edf7";

class Quiet final : public tracer::TraceObserver {
 public:
  bool progress(const tracer::v1::Progress&) override { return true; }
  bool event(const tracer::v1::Event&) override { return true; }
};

struct RunSample {
  double seconds = 0;
  uint64_t matched = 0;
  double cpu_seconds = 0;       // user + system of the client side (this process, or kcat|grep)
  double mock_cpu_seconds = 0;  // user + system of the mock cluster's process meanwhile
};

// User + system CPU seconds of another process so far (/proc/PID/stat).
double process_cpu_seconds(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text(std::istreambuf_iterator<char>(in), {});
  auto close = text.rfind(')');  // the command name may hold spaces
  if (close == std::string::npos) return 0;
  std::istringstream fields(text.substr(close + 2));
  std::string field;
  unsigned long long user = 0, system = 0;
  // Fields after the name start at 3 (state); utime and stime are 14 and 15.
  for (int index = 3; index <= 15 && fields >> field; ++index) {
    if (index == 14) user = std::stoull(field);
    if (index == 15) system = std::stoull(field);
  }
  return static_cast<double>(user + system) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

std::string load_average() {
  double load[3] = {0, 0, 0};
  getloadavg(load, 3);
  char text[64];
  std::snprintf(text, sizeof text, "%.2f %.2f %.2f", load[0], load[1], load[2]);
  return text;
}

// User + system CPU seconds of this process (RUSAGE_SELF) or of its waited-for
// children and their descendants (RUSAGE_CHILDREN: sh, xargs, kcat, grep).
double cpu_seconds(int who) {
  rusage usage{};
  getrusage(who, &usage);
  auto seconds = [](const timeval& t) { return t.tv_sec + t.tv_usec / 1e6; };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values.empty() ? 0 : values[values.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  int per_topic = argc > 1 ? std::atoi(argv[1]) : 800000;
  int rounds = argc > 2 ? std::atoi(argv[2]) : 5;
  if (telekern::testing::find_executable("kcat").empty()) {
    std::fprintf(stderr, "kcat not found: apt-get install kcat (make deps)\n");
    return 1;
  }
  // The mock cluster runs in a process of its own (telekern_kafka_mock_server),
  // so neither side shares its CPU with the brokers.
  std::vector<std::string> topics;
  std::vector<std::string> server_argv = {TELEKERN_KAFKA_MOCK_SERVER, "3"};
  for (int t = 0; t < kTopics; ++t) {
    topics.push_back("bench-topic-" + std::to_string(t));
    server_argv.push_back(topics.back() + ":" + std::to_string(kPartitions));
  }
  telekern::testing::TempDir server_dir("telekern-kafka-mock");
  auto server_log = server_dir.path() / "server.log";
  telekern::testing::Process server(server_argv, {}, server_log);
  std::string brokers;
  telekern::testing::wait_for(
      [&] {
        std::ifstream in(server_log);
        std::string word;
        if (in >> word && word == "bootstrap") in >> brokers;
        return !brokers.empty();
      },
      std::chrono::seconds(30));
  if (brokers.empty()) {
    std::fprintf(stderr, "the mock cluster process did not start (%s)\n", server_log.c_str());
    return 1;
  }
  // Produce: JSON values of ~120 bytes, 0.1% of them about the device, times
  // over 10 days; batched and lz4-compressed (see the top of the file).
  char error[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  rd_kafka_conf_set(conf, "bootstrap.servers", brokers.c_str(), error, sizeof error);
  rd_kafka_conf_set(conf, "linger.ms", "20", error, sizeof error);
  rd_kafka_conf_set(conf, "batch.num.messages", "10000", error, sizeof error);
  rd_kafka_conf_set(conf, "compression.codec", "lz4", error, sizeof error);
  rd_kafka_conf_set(conf, "log_level", "3", error, sizeof error);
  rd_kafka_t* producer = rd_kafka_new(RD_KAFKA_PRODUCER, conf, error, sizeof error);
  int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                    std::chrono::system_clock::now().time_since_epoch())
                    .count();
  int64_t span = 10LL * 24 * 3600 * 1000;
  std::mt19937 random(1);
  uint64_t total = 0;
  auto produce_start = Clock::now();
  for (const auto& topic : topics) {
    for (int i = 0; i < per_topic; ++i) {
      bool device = random() % 1000 == 0;
      std::string id =
          device ? kDevice
                 : "b40754c2bc034c9c9b29ec8e8" + std::to_string(1000000 + random() % 9000000);
      std::string value = "{\"device\":{\"id\":\"" + id +
                          "\"},\"type\":\"heartbeat\",\"seq\":" + std::to_string(i) +
                          ",\"temp\":" + std::to_string(random() % 90) + "}";
      int64_t timestamp = now - span + span * i / per_topic;
      while (rd_kafka_producev(producer, RD_KAFKA_V_TOPIC(topic.c_str()),
                               RD_KAFKA_V_PARTITION(static_cast<int32_t>(i % kPartitions)),
                               RD_KAFKA_V_VALUE(value.data(), value.size()),
                               RD_KAFKA_V_TIMESTAMP(timestamp),
                               RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                               RD_KAFKA_V_END) == RD_KAFKA_RESP_ERR__QUEUE_FULL)
        rd_kafka_poll(producer, 50);
      ++total;
    }
  }
  rd_kafka_flush(producer, 600000);
  // What the cluster holds: every rate below counts these records.
  uint64_t held = 0;
  for (const auto& topic : topics) {
    for (int32_t partition = 0; partition < kPartitions; ++partition) {
      int64_t low = 0, high = 0;
      if (rd_kafka_query_watermark_offsets(producer, topic.c_str(), partition, &low, &high,
                                           10000) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        std::fprintf(stderr, "watermarks of %s[%d] unknown\n", topic.c_str(), partition);
        return 1;
      }
      held += static_cast<uint64_t>(high - low);
    }
  }
  rd_kafka_destroy(producer);
  std::printf(
      "data: %d topics x %d partitions, %llu records (%d per topic, lz4 batches), produced in "
      "%.1f s; held by the mock cluster: %llu%s\n",
      kTopics, kPartitions, static_cast<unsigned long long>(total), per_topic,
      std::chrono::duration<double>(Clock::now() - produce_start).count(),
      static_cast<unsigned long long>(held),
      held == total ? " (all)" : " (it dropped its oldest batches: rates count what it holds)");
  std::printf("load average before: %s\n", load_average().c_str());

  telekern::testing::TempDir dir("telekern-tracer-bench");
  tracer::TracerOptions options;
  options.kafka_brokers = brokers;
  auto logger =
      std::make_shared<spdlog::logger>("tracer", std::make_shared<spdlog::sinks::null_sink_mt>());
  tracer::TraceEngine engine(
      options, dir.path(),
      [&](const tracer::v1::TraceDeviceRequest&,
          const tracer::ScanLimits&) -> absl::StatusOr<std::unique_ptr<tracer::TraceSource>> {
        tracer::KafkaSourceOptions kafka;
        kafka.brokers = brokers;
        auto source = tracer::KafkaSource::create(kafka);
        if (!source.ok()) return source.status();
        return std::unique_ptr<tracer::TraceSource>(std::move(*source));
      },
      logger, nullptr);

  auto run_tracer = [&](int64_t max_age_ms, uint64_t* scanned) {
    tracer::v1::TraceDeviceRequest request;
    request.set_device_id(kDevice);
    request.mutable_max_age()->set_seconds(max_age_ms / 1000);
    request.set_max_parallel(4);
    request.set_no_graphs(true);
    request.set_no_events(true);
    Quiet quiet;
    double cpu_start = cpu_seconds(RUSAGE_SELF);
    double mock_start = process_cpu_seconds(server.pid());
    auto start = Clock::now();
    auto summary = engine.trace(request, quiet, {});
    RunSample sample{std::chrono::duration<double>(Clock::now() - start).count(), 0,
                     cpu_seconds(RUSAGE_SELF) - cpu_start,
                     process_cpu_seconds(server.pid()) - mock_start};
    if (!summary.ok()) {
      std::fprintf(stderr, "trace failed: %s\n", std::string(summary.status().message()).c_str());
      std::exit(1);
    }
    sample.matched = summary->matched();
    *scanned = summary->scanned();
    return sample;
  };
  auto run_kcat = [&](const std::string& offset) {
    std::string list;
    for (const auto& topic : topics) list += topic + "\n";
    std::string command = "printf '" + list + "' | xargs -P 4 -I{} sh -c \"kcat -b " + brokers +
                          " -C -t {} -o " + offset + " -e -q 2>/dev/null | grep -F " + kDevice +
                          "\" | wc -l";
    double cpu_start = cpu_seconds(RUSAGE_CHILDREN);
    double mock_start = process_cpu_seconds(server.pid());
    auto start = Clock::now();
    auto result = telekern::testing::run_command(command, std::chrono::seconds(600));
    RunSample sample{std::chrono::duration<double>(Clock::now() - start).count(), 0,
                     cpu_seconds(RUSAGE_CHILDREN) - cpu_start,
                     process_cpu_seconds(server.pid()) - mock_start};
    sample.matched = std::strtoull(result.output.c_str(), nullptr, 10);
    return sample;
  };

  int64_t window = span / 10;
  std::string since = "s@" + std::to_string(now - window + 1000);
  std::vector<double> full_ratio, full_tracer_rate, full_kcat_rate, age_ratio, age_tracer_rate,
      age_kcat_rate, cpu_ratio, tracer_cpu_rate, kcat_cpu_rate, tracer_mock_us, kcat_mock_us;
  bool same_full = true, same_age = true, scanned_all = true;
  uint64_t age_scanned = 0, full_matched = 0, age_matched = 0, kcat_age_matched = 0;
  auto per_record_us = [&](double seconds) { return seconds * 1e6 / static_cast<double>(held); };
  for (int round = 0; round < rounds; ++round) {
    uint64_t scanned = 0;
    RunSample tracer_full, kcat_full, tracer_age, kcat_age;
    if (round % 2 == 0) {
      tracer_full = run_tracer(0, &scanned);
      kcat_full = run_kcat("beginning");
    } else {
      kcat_full = run_kcat("beginning");
      tracer_full = run_tracer(0, &scanned);
    }
    if (round % 2 == 0) {
      tracer_age = run_tracer(window, &age_scanned);
      kcat_age = run_kcat(since);
    } else {
      kcat_age = run_kcat(since);
      tracer_age = run_tracer(window, &age_scanned);
    }
    scanned_all &= scanned == held;
    same_full &= tracer_full.matched == kcat_full.matched;
    same_age &= tracer_age.matched == kcat_age.matched;
    full_matched = tracer_full.matched;
    age_matched = tracer_age.matched;
    kcat_age_matched = kcat_age.matched;
    // Both rates count every record the topics hold: the time to answer
    // "where was the device".
    double records = static_cast<double>(held);
    full_tracer_rate.push_back(records / tracer_full.seconds);
    full_kcat_rate.push_back(records / kcat_full.seconds);
    full_ratio.push_back(kcat_full.seconds / tracer_full.seconds);
    // What each side costs the machine per record: its own CPU, and the mock
    // cluster's while it served that side.
    tracer_cpu_rate.push_back(records / tracer_full.cpu_seconds);
    kcat_cpu_rate.push_back(records / kcat_full.cpu_seconds);
    cpu_ratio.push_back(kcat_full.cpu_seconds / tracer_full.cpu_seconds);
    tracer_mock_us.push_back(per_record_us(tracer_full.mock_cpu_seconds));
    kcat_mock_us.push_back(per_record_us(kcat_full.mock_cpu_seconds));
    age_tracer_rate.push_back(records / tracer_age.seconds);
    age_kcat_rate.push_back(records / kcat_age.seconds);
    age_ratio.push_back(kcat_age.seconds / tracer_age.seconds);
    std::printf(
        "round %d: full scan tracer %.2f s, %.2f s CPU, mock %.2f s CPU (%llu scanned, %llu "
        "matched) kcat|grep %.2f s, %.2f s CPU, mock %.2f s CPU (%llu) ratio %.2f; max_age 10%% "
        "tracer %.2f s (%llu scanned, %llu matched) kcat %s %.2f s (%llu) ratio %.2f\n",
        round + 1, tracer_full.seconds, tracer_full.cpu_seconds, tracer_full.mock_cpu_seconds,
        static_cast<unsigned long long>(scanned),
        static_cast<unsigned long long>(tracer_full.matched), kcat_full.seconds,
        kcat_full.cpu_seconds, kcat_full.mock_cpu_seconds,
        static_cast<unsigned long long>(kcat_full.matched), full_ratio.back(), tracer_age.seconds,
        static_cast<unsigned long long>(age_scanned),
        static_cast<unsigned long long>(tracer_age.matched), since.c_str(), kcat_age.seconds,
        static_cast<unsigned long long>(kcat_age.matched), age_ratio.back());
    std::fflush(stdout);
  }
  auto range = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    char text[64];
    std::snprintf(text, sizeof text, "%.2f-%.2f", v.front(), v.back());
    return std::string(text);
  };
  std::printf("load average after: %s\n", load_average().c_str());
  std::printf(
      "\nfull scan of %llu records: tracer %.0f records/s, kcat|grep %.0f records/s, ratio %.2fx "
      "(%s over %d rounds), matches %s (%llu), tracer scanned %s\n",
      static_cast<unsigned long long>(held), median(full_tracer_rate), median(full_kcat_rate),
      median(full_ratio), range(full_ratio).c_str(), rounds, same_full ? "identical" : "DIFFER",
      static_cast<unsigned long long>(full_matched),
      scanned_all ? "every record held" : "NOT every record held");
  std::printf(
      "client CPU on full scans: tracer %.0f records per CPU-second, kcat|grep %.0f, ratio %.2fx "
      "(%s)\n",
      median(tracer_cpu_rate), median(kcat_cpu_rate), median(cpu_ratio), range(cpu_ratio).c_str());
  std::printf(
      "mock cluster CPU per record served on full scans: tracer %.3f us (%s), kcat|grep %.3f us "
      "(%s)\n",
      median(tracer_mock_us), range(tracer_mock_us).c_str(), median(kcat_mock_us),
      range(kcat_mock_us).c_str());
  std::printf(
      "max_age 10%%: tracer %.0f records/s, kcat -o s@ %.0f records/s, ratio %.2fx (%s), "
      "matches %s (tracer %llu, kcat %llu)%s\n",
      median(age_tracer_rate), median(age_kcat_rate), median(age_ratio), range(age_ratio).c_str(),
      same_age ? "identical" : "DIFFER", static_cast<unsigned long long>(age_matched),
      static_cast<unsigned long long>(kcat_age_matched),
      same_age ? ""
               : " (the mock cluster answers ListOffsets by time with -1: kcat starts at the end; "
                 "the tracer checks by a search over offsets)");
  std::printf("target: >= 3x kcat|grep on full scans: %s\n",
              median(full_ratio) >= 3 && same_full && scanned_all ? "met" : "NOT met");
  return 0;
}
