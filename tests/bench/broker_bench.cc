// The embedded broker against redis-server 7 Streams, side by side in one run:
// produce throughput (100-byte records, batches of 1000, 1 and 4 producers,
// durability NONE vs appendfsync everysec and FSYNC vs appendfsync always),
// consume throughput (Consume LOG mode vs XREADGROUP + XACK), and end-to-end
// latency at a fixed 20k msg/s. Every case runs once per round, the produce
// cases in a rotated order and broker/redis first on alternate rounds; the
// figures are medians over the rounds with their spread (min-max), so machine
// noise shows instead of deciding the result. Then the broker's restart time
// against the number of sealed segments, and the scale curve: 1,000 and
// 10,000 partitions of one record each (create time, RSS, open files,
// restart-to-serving, produce throughput to a random partition against one
// partition); then 1,000 and 10,000 open Consume streams (threads, RSS, and
// delivery latency with records flowing to 1% of them). Bounded in time.
// Arguments: [batches per producer, 0 skips to the restart case, -1 runs only
// the latency rounds] [rounds]
// [most sealed segments for the restart case, 0 skips it]
// [most partitions for the scale curve, 0 skips it]
// [most open Consume streams, 0 skips them].
// BROKER_BENCH_SET="key=value,..." adds broker settings (A/B runs).
#include <grpcpp/create_channel.h>
#include <hiredis/hiredis.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include "file.h"
#include "telekern/broker/v1/broker.grpc.pb.h"
#include "telekern/latency_histogram.h"
#include "tests/support/consume_stream_reader.h"
#include "tests/support/process_resources.h"
#include "tests/support/redis_server.h"
#include "tests/support/telekernd.h"

namespace {

using namespace telekern;
using namespace telekern::testing;
namespace bv1 = telekern::broker::v1;
using Clock = std::chrono::steady_clock;

constexpr size_t kRecordBytes = 100;
constexpr size_t kBatch = 1000;

int64_t now_micros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string payload() { return std::string(kRecordBytes, 'x'); }

struct Rate {
  double per_second = 0;
  uint64_t failures = 0;
};

// Broker: `producers` threads each send `batches` batches of kBatch records,
// keeping kPipeline batches in flight per producer (as Redis keeps a whole
// pipeline in flight); FSYNC batches in flight share one fsync (group commit).
constexpr int kPipeline = 4;

// Channels live until the process exits: in gRPC 1.51 dropping a channel's last
// reference inside a callback (a reactor's OnDone deleting its ClientContext)
// can underflow the callback queue's refcount and abort the client.
std::shared_ptr<grpc::Channel> bench_channel(const std::string& address, int index) {
  static std::mutex mutex;
  static std::map<std::pair<std::string, int>, std::shared_ptr<grpc::Channel>> channels;
  std::lock_guard lock(mutex);
  auto& channel = channels[{address, index}];
  if (!channel) {
    grpc::ChannelArguments arguments;
    arguments.SetInt("bench.channel", index);  // distinct connections
    channel = grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), arguments);
  }
  return channel;
}

Rate broker_produce(const std::string& address, const std::string& topic, int producers,
                    int batches, bv1::Durability durability) {
  std::atomic<uint64_t> failures{0};
  auto start = Clock::now();
  std::vector<std::thread> threads;
  for (int p = 0; p < producers; ++p) {
    threads.emplace_back([&, p] {
      auto stub = bv1::Broker::NewStub(bench_channel(address, p));
      bv1::ProduceRequest request;
      request.set_topic(topic);
      request.set_durability(durability);
      for (size_t i = 0; i < kBatch; ++i) request.add_records()->set_value(payload());
      std::mutex mutex;
      std::condition_variable done;
      int in_flight = 0;
      // One call; deletes itself in OnDone, after gRPC has let go of it.
      class Call final : public grpc::ClientUnaryReactor {
       public:
        Call(bv1::Broker::Stub& stub, const bv1::ProduceRequest& request,
             std::function<void(bool)> finished)
            : finished_(std::move(finished)) {
          stub.async()->Produce(&context_, &request, &response_, this);
          StartCall();
        }
        void OnDone(const grpc::Status& status) override {
          finished_(status.ok());
          delete this;
        }

       private:
        grpc::ClientContext context_;
        bv1::ProduceResponse response_;
        std::function<void(bool)> finished_;
      };
      for (int b = 0; b < batches; ++b) {
        std::unique_lock lock(mutex);
        done.wait(lock, [&] { return in_flight < kPipeline; });
        ++in_flight;
        lock.unlock();
        new Call(*stub, request, [&](bool ok) {
          if (!ok) failures++;
          std::lock_guard guard(mutex);
          --in_flight;
          done.notify_all();
        });
      }
      std::unique_lock lock(mutex);
      done.wait(lock, [&] { return in_flight == 0; });
    });
  }
  for (auto& thread : threads) thread.join();
  double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  return {producers * batches * kBatch / seconds, failures};
}

// Redis: XADD pipelined kBatch at a time per connection.
Rate redis_produce(const RedisServer& redis, const std::string& stream, int producers,
                   int batches) {
  std::atomic<uint64_t> failures{0};
  auto start = Clock::now();
  std::vector<std::thread> threads;
  for (int p = 0; p < producers; ++p) {
    threads.emplace_back([&] {
      redisContext* context = redis.connect();
      std::string value = payload();
      for (int b = 0; b < batches; ++b) {
        for (size_t i = 0; i < kBatch; ++i) {
          redisAppendCommand(context, "XADD %s * v %b", stream.c_str(), value.data(), value.size());
        }
        for (size_t i = 0; i < kBatch; ++i) {
          void* reply = nullptr;
          if (redisGetReply(context, &reply) != REDIS_OK) failures++;
          if (reply) freeReplyObject(reply);
        }
      }
      redisFree(context);
    });
  }
  for (auto& thread : threads) thread.join();
  double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  return {producers * batches * kBatch / seconds, failures};
}

Rate broker_consume(const std::string& address, const std::string& topic, uint64_t count) {
  auto stub = bv1::Broker::NewStub(bench_channel(address, 100));
  grpc::ClientContext context;
  bv1::ConsumeRequest request;
  request.set_topic(topic);
  request.set_group("bench");
  request.set_mode(bv1::GROUP_MODE_LOG);
  request.set_start(bv1::START_POSITION_EARLIEST);
  request.set_auto_commit(true);
  request.set_max_batch(kBatch);
  request.set_max(count);
  request.mutable_wait()->set_seconds(5);
  auto start = Clock::now();
  auto reader = stub->Consume(&context, request);
  bv1::ConsumeResponse response;
  uint64_t seen = 0;
  while (reader->Read(&response)) seen += response.records_size();
  auto status = reader->Finish();
  double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  return {seen / seconds, status.ok() && seen == count ? uint64_t{0} : uint64_t{1}};
}

Rate redis_consume(const RedisServer& redis, const std::string& stream, uint64_t count) {
  redisContext* context = redis.connect();
  freeReplyObject(redisCommand(context, "XGROUP CREATE %s bench 0", stream.c_str()));
  auto start = Clock::now();
  uint64_t seen = 0;
  uint64_t failures = 0;
  while (seen < count) {
    auto* reply = static_cast<redisReply*>(
        redisCommand(context, "XREADGROUP GROUP bench c1 COUNT %d STREAMS %s >",
                     static_cast<int>(kBatch), stream.c_str()));
    if (reply == nullptr || reply->type != REDIS_REPLY_ARRAY || reply->elements == 0) {
      if (reply) freeReplyObject(reply);
      failures++;
      break;
    }
    redisReply* entries = reply->element[0]->element[1];
    // XACK all ids of this batch in one pipelined command.
    std::vector<const char*> argv = {"XACK", stream.c_str(), "bench"};
    std::vector<size_t> lengths = {4, stream.size(), 5};
    for (size_t i = 0; i < entries->elements; ++i) {
      argv.push_back(entries->element[i]->element[0]->str);
      lengths.push_back(entries->element[i]->element[0]->len);
    }
    freeReplyObject(
        redisCommandArgv(context, static_cast<int>(argv.size()), argv.data(), lengths.data()));
    seen += entries->elements;
    freeReplyObject(reply);
  }
  double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  redisFree(context);
  return {seen / seconds, failures};
}

// Sends `rate` records/s for `duration` (a batch every millisecond, the send
// time in each value) while one consumer measures send-to-receive latency.
template <typename Send, typename Receive>
LatencyHistogram paced_latency(int rate, std::chrono::seconds duration, Send send,
                               Receive receive) {
  int per_millisecond = std::max(1, rate / 1000);
  uint64_t total = static_cast<uint64_t>(per_millisecond) * duration.count() * 1000;
  LatencyHistogram latency;
  std::atomic<bool> stop{false};
  std::thread consumer([&] { receive(latency, total, stop); });
  auto next = Clock::now();
  auto end = next + duration;
  while (next < end) {
    std::vector<std::string> values;
    for (int i = 0; i < per_millisecond; ++i) {
      std::string value = std::to_string(now_micros());
      value.resize(kRecordBytes, ' ');
      values.push_back(std::move(value));
    }
    send(values);
    next += std::chrono::milliseconds(1);
    std::this_thread::sleep_until(next);
  }
  auto drain_deadline = Clock::now() + std::chrono::seconds(5);
  while (latency.count() < total && Clock::now() < drain_deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  stop = true;
  consumer.join();
  return latency;
}

LatencyHistogram broker_latency(const std::string& address, const std::string& topic, int rate,
                                std::chrono::seconds duration) {
  // Producer and consumer on connections of their own, as the redis side.
  auto stub = bv1::Broker::NewStub(bench_channel(address, 100));
  auto consume_stub = bv1::Broker::NewStub(bench_channel(address, 101));
  grpc::ClientContext consume_context;
  auto send = [&](const std::vector<std::string>& values) {
    bv1::ProduceRequest request;
    request.set_topic(topic);
    request.set_durability(bv1::DURABILITY_NONE);
    for (const auto& value : values) request.add_records()->set_value(value);
    grpc::ClientContext context;
    bv1::ProduceResponse response;
    (void)stub->Produce(&context, request, &response);
  };
  // Create the topic before the consumer starts at its latest offset.
  send({std::string(kRecordBytes, '0')});
  auto receive = [&](LatencyHistogram& latency, uint64_t total, std::atomic<bool>& stop) {
    bv1::ConsumeRequest request;
    request.set_topic(topic);
    request.set_group("latency");
    request.set_mode(bv1::GROUP_MODE_LOG);
    request.set_start(bv1::START_POSITION_EARLIEST);
    request.set_auto_commit(true);
    request.set_max(total + 1);
    request.mutable_wait()->set_seconds(5);
    auto reader = consume_stub->Consume(&consume_context, request);
    bv1::ConsumeResponse response;
    while (!stop && reader->Read(&response)) {
      int64_t now = now_micros();
      for (const auto& record : response.records()) {
        int64_t sent = std::stoll(record.value());
        if (sent == 0) continue;  // the record that created the topic
        latency.record(static_cast<uint64_t>(std::max<int64_t>(0, now - sent)));
      }
    }
    consume_context.TryCancel();
    (void)reader->Finish();
  };
  return paced_latency(rate, duration, send, receive);
}

LatencyHistogram redis_latency(const RedisServer& redis, const std::string& stream, int rate,
                               std::chrono::seconds duration) {
  redisContext* producer = redis.connect();
  freeReplyObject(redisCommand(producer, "XGROUP CREATE %s latency $ MKSTREAM", stream.c_str()));
  auto send = [&](const std::vector<std::string>& values) {
    for (const auto& value : values) {
      redisAppendCommand(producer, "XADD %s * v %b", stream.c_str(), value.data(), value.size());
    }
    for (size_t i = 0; i < values.size(); ++i) {
      void* reply = nullptr;
      redisGetReply(producer, &reply);
      if (reply) freeReplyObject(reply);
    }
  };
  auto receive = [&](LatencyHistogram& latency, uint64_t total, std::atomic<bool>& stop) {
    redisContext* consumer = redis.connect();
    while (!stop && latency.count() < total) {
      auto* reply = static_cast<redisReply*>(
          redisCommand(consumer, "XREADGROUP GROUP latency c1 COUNT 1000 BLOCK 100 STREAMS %s >",
                       stream.c_str()));
      int64_t now = now_micros();
      if (reply != nullptr && reply->type == REDIS_REPLY_ARRAY && reply->elements > 0) {
        redisReply* entries = reply->element[0]->element[1];
        std::vector<const char*> argv = {"XACK", stream.c_str(), "latency"};
        std::vector<size_t> lengths = {4, stream.size(), 7};
        for (size_t i = 0; i < entries->elements; ++i) {
          redisReply* fields = entries->element[i]->element[1];
          latency.record(static_cast<uint64_t>(
              std::max<int64_t>(0, now - std::stoll(fields->element[1]->str))));
          argv.push_back(entries->element[i]->element[0]->str);
          lengths.push_back(entries->element[i]->element[0]->len);
        }
        freeReplyObject(
            redisCommandArgv(consumer, static_cast<int>(argv.size()), argv.data(), lengths.data()));
      }
      if (reply) freeReplyObject(reply);
    }
    redisFree(consumer);
  };
  auto latency = paced_latency(rate, duration, send, receive);
  redisFree(producer);
  return latency;
}

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  size_t n = values.size();
  if (n == 0) return 0;
  return n % 2 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

std::string spread(const std::vector<double>& values, const char* format) {
  auto [low, high] = std::minmax_element(values.begin(), values.end());
  char text[96];
  std::snprintf(text, sizeof text, format, *low, *high);
  return text;
}

// One case's per-round figures for both sides.
struct Series {
  std::string label;
  std::vector<double> broker;
  std::vector<double> redis;
  uint64_t failures = 0;
  void add(const Rate& broker_rate, const Rate& redis_rate) {
    broker.push_back(broker_rate.per_second);
    redis.push_back(redis_rate.per_second);
    failures += broker_rate.failures + redis_rate.failures;
  }
  void print() const {
    std::vector<double> ratios;
    for (size_t i = 0; i < broker.size(); ++i) ratios.push_back(broker[i] / redis[i]);
    std::printf("  %-40s broker %9.0f/s  redis %9.0f/s  ratio %5.2f median (%s)%s\n", label.c_str(),
                median(broker), median(redis), median(ratios), spread(ratios, "%.2f-%.2f").c_str(),
                failures ? "  (FAILURES)" : "");
  }
};

// End-to-end latency at 20k msg/s, broker and redis alternating which goes
// first, with per-round percentiles kept for medians and spreads.
struct LatencySeries {
  std::vector<double> broker_p50, broker_p99, broker_p999, redis_p50, redis_p99, redis_p999,
      p99_ratios;
  int p99_at_or_below = 0;

  void run(const std::string& address, const RedisServer& redis_server, const std::string& suffix,
           bool broker_first) {
    LatencyHistogram broker, redis;
    auto run_broker = [&] {
      broker = broker_latency(address, "bench-latency" + suffix, 20000, std::chrono::seconds(3));
    };
    auto run_redis = [&] {
      redis = redis_latency(redis_server, "bench-latency" + suffix, 20000, std::chrono::seconds(3));
    };
    if (broker_first) {
      run_broker();
      run_redis();
    } else {
      run_redis();
      run_broker();
    }
    broker_p50.push_back(static_cast<double>(broker.percentile(0.50)));
    broker_p99.push_back(static_cast<double>(broker.percentile(0.99)));
    broker_p999.push_back(static_cast<double>(broker.percentile(0.999)));
    redis_p50.push_back(static_cast<double>(redis.percentile(0.50)));
    redis_p99.push_back(static_cast<double>(redis.percentile(0.99)));
    redis_p999.push_back(static_cast<double>(redis.percentile(0.999)));
    p99_ratios.push_back(broker_p99.back() / std::max(1.0, redis_p99.back()));
    if (broker_p99.back() <= redis_p99.back()) ++p99_at_or_below;
  }

  void print() const {
    std::printf("end-to-end latency at 20000 msg/s, 3 s per side and round (microseconds):\n");
    std::printf("  broker: p50 %6.0f (%s)  p99 %6.0f (%s)  p99.9 %6.0f (%s)\n", median(broker_p50),
                spread(broker_p50, "%.0f-%.0f").c_str(), median(broker_p99),
                spread(broker_p99, "%.0f-%.0f").c_str(), median(broker_p999),
                spread(broker_p999, "%.0f-%.0f").c_str());
    std::printf("  redis : p50 %6.0f (%s)  p99 %6.0f (%s)  p99.9 %6.0f (%s)\n", median(redis_p50),
                spread(redis_p50, "%.0f-%.0f").c_str(), median(redis_p99),
                spread(redis_p99, "%.0f-%.0f").c_str(), median(redis_p999),
                spread(redis_p999, "%.0f-%.0f").c_str());
    std::printf("  per round p99 broker/redis:");
    for (double ratio : p99_ratios) std::printf(" %.2f", ratio);
    std::printf(
        "\n  p99 broker/redis: %.2f median (%s); broker p99 <= redis p99 in %d of %zu rounds "
        "(target: <= 1.00)\n",
        median(p99_ratios), spread(p99_ratios, "%.2f-%.2f").c_str(), p99_at_or_below,
        p99_ratios.size());
  }
};

void latency_rounds(const std::string& address, const RedisServer& redis, int rounds) {
  LatencySeries latency;
  for (int round = 0; round < rounds; ++round)
    latency.run(address, redis, "-r" + std::to_string(round), round % 2 == 0);
  latency.print();
}

// A broker telekernd over `data_dir`; null, with its log printed, when it
// did not start.
std::unique_ptr<Telekernd> broker_over(const std::string& data_dir) {
  auto daemon = std::make_unique<Telekernd>(
      TelekerndOptions{.modules_dir = std::string(TELEKERN_BUILD_DIR) + "/modules",
                       .load = {"broker"},
                       .data_dir = data_dir});
  if (daemon->ready()) return daemon;
  std::fprintf(stderr, "telekernd did not start:\n%s\n", daemon->log().c_str());
  return nullptr;
}

// Starts telekernd over `data_dir` and returns the seconds until the broker
// serves a Consume of the last record of `topic` partition 0 (`last_offset`),
// module start and recovery included.
double restart_seconds(const std::string& data_dir, const std::string& topic,
                       uint64_t last_offset) {
  auto start = Clock::now();
  auto daemon = broker_over(data_dir);
  if (!daemon) return -1;
  auto stub = bv1::Broker::NewStub(daemon->channel());
  static std::atomic<int> groups{0};
  for (int attempt = 0; attempt < 600; ++attempt) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    bv1::ConsumeRequest request;
    request.set_topic(topic);
    request.set_group("restart-" + std::to_string(groups++));
    request.set_start(bv1::START_POSITION_OFFSET);
    request.set_start_offset(last_offset);
    request.set_max(1);
    auto reader = stub->Consume(&context, request);
    bv1::ConsumeResponse response;
    bool served = false;
    while (!served && reader->Read(&response)) {
      for (const auto& record : response.records()) served |= record.offset() == last_offset;
    }
    context.TryCancel();
    (void)reader->Finish();
    if (served) return std::chrono::duration<double>(Clock::now() - start).count();
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  std::fprintf(stderr, "offset %llu of '%s' was never served\n",
               static_cast<unsigned long long>(last_offset), topic.c_str());
  return -1;
}

// Starts telekernd over `data_dir` and returns the seconds until the broker
// answers a DescribeTopic on `topic` (module start included).
double restart_until_described(const std::string& data_dir, const std::string& topic) {
  auto start = Clock::now();
  auto daemon = broker_over(data_dir);
  if (!daemon) return -1;
  auto stub = bv1::Broker::NewStub(daemon->channel());
  for (int attempt = 0; attempt < 600; ++attempt) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    bv1::DescribeTopicRequest request;
    request.set_topic(topic);
    bv1::DescribeTopicResponse response;
    if (stub->DescribeTopic(&context, request, &response).ok()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// A data dir holding one topic of one partition with `segments` sealed
// segments (segment_bytes=4096; each produce of 4 x 1000 bytes fills one).
bool fill_segments(const std::string& data_dir, int segments) {
  Telekernd daemon({.modules_dir = std::string(TELEKERN_BUILD_DIR) + "/modules",
                    .load = {"broker"},
                    .data_dir = data_dir});
  if (!daemon.ready()) return false;
  auto stub = bv1::Broker::NewStub(daemon.channel());
  grpc::ClientContext create_context;
  bv1::CreateTopicRequest create;
  create.set_topic("restart");
  create.set_partitions(1);
  create.set_segment_bytes(4096);
  bv1::CreateTopicResponse created;
  if (!stub->CreateTopic(&create_context, create, &created).ok()) return false;
  for (int i = 0; i <= segments; ++i) {
    bv1::ProduceRequest request;
    request.set_topic("restart");
    request.set_partition(0);
    request.set_durability(bv1::DURABILITY_NONE);
    for (int j = 0; j < 4; ++j) request.add_records()->set_value(std::string(1000, 'r'));
    grpc::ClientContext context;
    bv1::ProduceResponse response;
    if (!stub->Produce(&context, request, &response).ok()) return false;
  }
  return true;
}

// Resident memory of a process in MiB (VmRSS).
double rss_mib(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::atof(line.c_str() + 6) / 1024.0;
  }
  return -1;
}

size_t open_descriptors(pid_t pid) {
  std::error_code error;
  size_t count = 0;
  for (auto it = std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd", error);
       it != std::filesystem::directory_iterator(); it.increment(error)) {
    if (error) break;
    ++count;
  }
  return count;
}

constexpr uint32_t kScalePartitionsPerTopic = 50;
constexpr int kScaleRounds = 7;  // 1 s per side and round

// Records/s of 1-record NONE produces, 4 threads, to a random partition of
// the first `topics` scale topics for `duration`.
double random_partition_rate(const std::string& address, int topics, uint32_t partitions,
                             std::chrono::milliseconds duration) {
  std::atomic<uint64_t> sent{0};
  auto deadline = Clock::now() + duration;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      auto stub = bv1::Broker::NewStub(bench_channel(address, 100 + t));
      std::mt19937 random(static_cast<uint32_t>(t));
      while (Clock::now() < deadline) {
        bv1::ProduceRequest request;
        request.set_topic("scale-" + std::to_string(random() % topics));
        request.set_partition(static_cast<uint32_t>(random() % partitions));
        request.set_durability(bv1::DURABILITY_NONE);
        request.add_records()->set_value(payload());
        grpc::ClientContext context;
        bv1::ProduceResponse response;
        if (stub->Produce(&context, request, &response).ok()) sent++;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  return sent / std::chrono::duration<double>(duration).count();
}

// The cost of a reopen: 1 KiB reads from 2,000 files in turn, every
// descriptor kept open against a cap of 100 (every read reopens its file).
void reopen_cost() {
  TempDir dir("broker-bench-reopen");
  constexpr int kFiles = 2000;
  constexpr int kRounds = 5;
  std::vector<std::unique_ptr<broker::File>> files;
  for (int i = 0; i < kFiles; ++i) {
    auto file = broker::File::open(dir.path() / ("f" + std::to_string(i)), true);
    if (!file.ok() || !(*file)->write_at(0, std::string(1024, 'r')).ok()) {
      std::fprintf(stderr, "reopen bench: cannot write file %d\n", i);
      return;
    }
    files.push_back(std::move(*file));
  }
  auto micros_per_read = [&](uint64_t cap) {
    broker::OpenFiles::set_cap(cap);
    for (auto& file : files) (void)file->read_at(0, 1024);  // warm
    auto start = Clock::now();
    for (int round = 0; round < kRounds; ++round) {
      for (auto& file : files) (void)file->read_at(0, 1024);
    }
    return std::chrono::duration<double, std::micro>(Clock::now() - start).count() /
           (kRounds * kFiles);
  };
  double open = micros_per_read(0);
  auto before = broker::OpenFiles::usage().reopens;
  double reopened = micros_per_read(100);
  auto reopens = broker::OpenFiles::usage().reopens - before;
  broker::OpenFiles::set_cap(0);
  std::printf(
      "reopen cost: a 1 KiB read takes %.2f us with its file open, %.2f us when the file must "
      "be reopened (cap 100 over %d files, %llu reopens)\n",
      open, reopened, kFiles, static_cast<unsigned long long>(reopens));
}

// The value of an unlabelled metric in the daemon's /metrics (0 when absent).
double metric_value(const Telekernd& daemon, const std::string& name) {
  auto [status, body] = daemon.http_get("/metrics");
  if (status != 200) return 0;
  for (size_t at = body.find(name + " "); at != std::string::npos;
       at = body.find(name + " ", at + 1)) {
    if (at == 0 || body[at - 1] == '\n')
      return std::strtod(body.c_str() + at + name.size() + 1, nullptr);
  }
  return 0;
}

// One point of the scale curve: `partitions` partitions in topics of 50.
void scale_point(const std::filesystem::path& data_dir, int partitions) {
  TelekerndOptions options{.modules_dir = std::string(TELEKERN_BUILD_DIR) + "/modules",
                           .load = {"broker"},
                           .data_dir = data_dir.string()};
  int topics = std::max(1, partitions / static_cast<int>(kScalePartitionsPerTopic));
  uint32_t per_topic = std::min<uint32_t>(kScalePartitionsPerTopic, partitions);
  double create_seconds = 0, idle_rss = 0, rss = 0;
  std::vector<double> random_rates, single_rates, ratios;
  double reopens = 0;
  size_t descriptors = 0;
  {
    Telekernd daemon(options);
    if (!daemon.ready()) {
      std::fprintf(stderr, "telekernd did not start:\n%s\n", daemon.log().c_str());
      return;
    }
    idle_rss = rss_mib(daemon.process().pid());
    auto stub = bv1::Broker::NewStub(daemon.channel());
    auto start = Clock::now();
    for (int t = 0; t < topics; ++t) {
      grpc::ClientContext context;
      bv1::CreateTopicRequest create;
      create.set_topic("scale-" + std::to_string(t));
      create.set_partitions(per_topic);
      bv1::CreateTopicResponse created;
      auto status = stub->CreateTopic(&context, create, &created);
      if (!status.ok()) {
        std::fprintf(stderr, "create scale-%d: %s\n", t, status.error_message().c_str());
        return;
      }
    }
    create_seconds = std::chrono::duration<double>(Clock::now() - start).count();
    for (int t = 0; t < topics; ++t) {
      for (uint32_t p = 0; p < per_topic; ++p) {
        grpc::ClientContext context;
        bv1::ProduceRequest request;
        request.set_topic("scale-" + std::to_string(t));
        request.set_partition(p);
        request.set_durability(bv1::DURABILITY_NONE);
        request.add_records()->set_value(payload());
        bv1::ProduceResponse response;
        (void)stub->Produce(&context, request, &response);
      }
    }
    rss = rss_mib(daemon.process().pid());
    descriptors = open_descriptors(daemon.process().pid());
    double reopens_before = metric_value(daemon, "telekern_broker_file_reopens_total");
    // Rotated rounds: the order alternates so drift in the machine's load
    // does not favour one side.
    for (int round = 0; round < kScaleRounds; ++round) {
      double random_rate = 0, single_rate = 0;
      for (int side = 0; side < 2; ++side) {
        if ((side + round) % 2 == 0) {
          random_rate = random_partition_rate(daemon.grpc_address(), topics, per_topic,
                                              std::chrono::milliseconds(1000));
        } else {
          single_rate =
              random_partition_rate(daemon.grpc_address(), 1, 1, std::chrono::milliseconds(1000));
        }
      }
      random_rates.push_back(random_rate);
      single_rates.push_back(single_rate);
      ratios.push_back(single_rate > 0 ? random_rate / single_rate : 0.0);
    }
    reopens = metric_value(daemon, "telekern_broker_file_reopens_total") - reopens_before;
  }
  double restart =
      restart_until_described(data_dir.string(), "scale-" + std::to_string(topics - 1));
  std::printf(
      "  %6d partitions: create %7.2f s, RSS %6.1f MiB (idle %5.1f, %.1f KiB/partition), open "
      "descriptors %5zu, restart-to-serving %6.3f s, produce to a random partition %7.0f/s vs "
      "one partition %7.0f/s (ratio %.2f median of %d rounds, %s), %.0f file reopens during "
      "the rounds\n",
      partitions, create_seconds, rss, idle_rss, (rss - idle_rss) * 1024.0 / partitions,
      descriptors, restart, median(random_rates), median(single_rates), median(ratios),
      kScaleRounds, spread(ratios, "%.2f-%.2f").c_str(), reopens);
  std::fflush(stdout);
}

// The broker daemon of the throughput and latency rounds: module defaults,
// plus `key: value` settings from BROKER_BENCH_SET ("inline_produce=false,
// segment_bytes=1048576") for A/B runs.
TelekerndOptions bench_broker_options() {
  TelekerndOptions options{.modules_dir = std::string(TELEKERN_BUILD_DIR) + "/modules",
                           .load = {"broker"}};
  if (const char* set = std::getenv("BROKER_BENCH_SET"); set && *set) {
    options.config_yaml = "modules:\n  broker:\n";
    std::string settings = set;
    for (size_t start = 0; start <= settings.size();) {
      size_t comma = settings.find(',', start);
      if (comma == std::string::npos) comma = settings.size();
      std::string item = settings.substr(start, comma - start);
      if (auto equals = item.find('='); equals != std::string::npos) {
        options.config_yaml +=
            "    " + item.substr(0, equals) + ": " + item.substr(equals + 1) + "\n";
      }
      start = comma + 1;
    }
    std::printf("broker settings from BROKER_BENCH_SET: %s\n", set);
  }
  return options;
}

// `count` open Consume streams: 1% read "streams-active" (a group each) while
// 1,000 records/s flow to it for 3 s, the rest wait on "streams-idle".
void streams_point(int count) {
  Telekernd daemon(
      {.config_yaml =
           "modules:\n  broker:\n    max_groups: 20000\n    max_groups_per_topic: 20000\n",
       .modules_dir = std::string(TELEKERN_BUILD_DIR) + "/modules",
       .load = {"broker"}});
  if (!daemon.ready()) {
    std::fprintf(stderr, "telekernd did not start:\n%s\n", daemon.log().c_str());
    return;
  }
  pid_t pid = daemon.process().pid();
  auto stub = bv1::Broker::NewStub(daemon.channel());
  for (const char* topic : {"streams-active", "streams-idle"}) {
    grpc::ClientContext context;
    bv1::CreateTopicRequest create;
    create.set_topic(topic);
    create.set_partitions(1);
    bv1::CreateTopicResponse created;
    if (auto status = stub->CreateTopic(&context, create, &created); !status.ok()) {
      std::fprintf(stderr, "create %s: %s\n%s\n", topic, status.error_message().c_str(),
                   daemon.log().c_str());
      return;
    }
  }
  auto idle = telekern::testing::process_resources(pid);
  LatencyHistogram latency;
  std::mutex latency_mutex;
  std::vector<std::unique_ptr<ConsumeStreamReader>> readers;
  // Active readers' records carry their send time (steady clock, ns) as value.
  auto measure = [&](const bv1::ConsumeResponse& response) {
    auto now = std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
                   .count();
    std::lock_guard lock(latency_mutex);
    for (const auto& record : response.records()) {
      latency.record(static_cast<uint64_t>(now - std::stoll(record.value())) / 1000);
    }
  };
  auto report = [](const grpc::Status& status) {
    if (!status.ok() && status.error_code() != grpc::StatusCode::CANCELLED) {
      std::fprintf(stderr, "consume stream: %s\n", status.error_message().c_str());
    }
  };
  int active = std::max(1, count / 100);
  auto opened = Clock::now();
  for (int i = 0; i < count; ++i) {
    bool reads = i < active;
    bv1::ConsumeRequest request;
    request.set_topic(reads ? "streams-active" : "streams-idle");
    // Idle readers share 100 groups: members beyond the partition wait too.
    request.set_group(reads ? "active-" + std::to_string(i) : "idle-" + std::to_string(i % 100));
    request.set_start(bv1::START_POSITION_LATEST);
    readers.push_back(std::make_unique<ConsumeStreamReader>(
        *stub, request, reads ? ConsumeStreamReader::OnResponse(measure) : nullptr, report));
  }
  // Every active group has its member before records flow.
  for (auto deadline = Clock::now() + std::chrono::seconds(60); Clock::now() < deadline;) {
    grpc::ClientContext context;
    bv1::ListGroupsRequest request;
    request.set_topic("streams-active");
    bv1::ListGroupsResponse response;
    if (stub->ListGroups(&context, request, &response).ok() && response.groups_size() >= active)
      break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  double open_seconds = std::chrono::duration<double>(Clock::now() - opened).count();
  auto held = telekern::testing::process_resources(pid);
  auto send_at = Clock::now();
  for (int i = 0; i < 3000; ++i) {
    send_at += std::chrono::milliseconds(1);
    std::this_thread::sleep_until(send_at);
    bv1::ProduceRequest request;
    request.set_topic("streams-active");
    request.set_durability(bv1::DURABILITY_NONE);
    request.add_records()->set_value(std::to_string(
        std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
            .count()));
    grpc::ClientContext context;
    bv1::ProduceResponse response;
    (void)stub->Produce(&context, request, &response);
  }
  uint64_t expected = 3000ull * static_cast<uint64_t>(active);
  for (auto deadline = Clock::now() + std::chrono::seconds(30); Clock::now() < deadline;) {
    {
      std::lock_guard lock(latency_mutex);
      if (latency.count() >= expected) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  auto flowing = telekern::testing::process_resources(pid);
  for (auto& reader : readers) reader->cancel();
  for (auto& reader : readers) (void)reader->wait();
  std::lock_guard lock(latency_mutex);
  std::printf(
      "  %6d Consume streams (%d reading): opened in %.1f s; threads %.0f (idle %.0f), RSS %.1f "
      "MiB "
      "(idle %.1f, %.1f KiB/stream), %.1f MiB while records flow; 1,000 records/s to the "
      "readers: delivered %llu of %llu, latency p50 %llu us, p99 %llu us\n",
      count, active, open_seconds, held.threads, idle.threads, held.rss_mib, idle.rss_mib,
      (held.rss_mib - idle.rss_mib) * 1024.0 / count, flowing.rss_mib,
      static_cast<unsigned long long>(latency.count()), static_cast<unsigned long long>(expected),
      static_cast<unsigned long long>(latency.percentile(0.5)),
      static_cast<unsigned long long>(latency.percentile(0.99)));
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  int batches = argc > 1 ? std::atoi(argv[1]) : 100;  // per producer
  int rounds = argc > 2 ? std::atoi(argv[2]) : 5;
  int most_segments = argc > 3 ? std::atoi(argv[3]) : 1000;
  int most_partitions = argc > 4 ? std::atoi(argv[4]) : 10000;
  int most_streams = argc > 5 ? std::atoi(argv[5]) : 10000;
  if (batches < 0) {
    // Only the end-to-end latency rounds (for profiling the wake-up path).
    Telekernd daemon(bench_broker_options());
    RedisServer everysec({.appendonly = "yes", .appendfsync = "everysec"});
    if (!daemon.ready() || !everysec.ready()) {
      std::fprintf(stderr, "telekernd or redis-server did not start:\n%s\n", daemon.log().c_str());
      return 1;
    }
    latency_rounds(daemon.grpc_address(), everysec, rounds);
    return 0;
  }
  if (batches > 0) {
    Telekernd daemon(bench_broker_options());
    if (!daemon.ready()) {
      std::fprintf(stderr, "telekernd did not start:\n%s\n", daemon.log().c_str());
      return 1;
    }
    RedisServer everysec({.appendonly = "yes", .appendfsync = "everysec"});
    RedisServer always({.appendonly = "yes", .appendfsync = "always"});
    if (!everysec.ready() || !always.ready()) {
      std::fprintf(stderr, "redis-server did not start\n");
      return 1;
    }
    std::printf(
        "broker vs redis-server Streams, %zu-byte records, batches of %zu, %d batches per "
        "producer, %d rotated rounds (medians, min-max over rounds)\n",
        kRecordBytes, kBatch, batches, rounds);
    int fsync_batches = std::max(1, batches / 5);
    struct ProduceCase {
      int producers;
      bool fsync;
      Series series;
    };
    std::vector<ProduceCase> cases;
    for (int producers : {1, 4}) {
      for (bool fsync : {false, true}) {
        cases.push_back(
            {producers,
             fsync,
             {std::to_string(producers) + " producer(s), " +
              (fsync ? "FSYNC vs appendfsync always" : "NONE vs appendfsync everysec")}});
      }
    }
    Series consume{"LOG mode vs XREADGROUP+XACK"};
    LatencySeries latency;
    for (int round = 0; round < rounds; ++round) {
      bool broker_first = round % 2 == 0;
      std::string suffix = "-r" + std::to_string(round);
      for (size_t i = 0; i < cases.size(); ++i) {
        auto& item = cases[(i + round) % cases.size()];
        std::string name = std::string(item.fsync ? "bench-fsync-" : "bench-none-") +
                           std::to_string(item.producers) + suffix;
        int count = item.fsync ? fsync_batches : batches;
        auto run_broker = [&] {
          return broker_produce(daemon.grpc_address(), name, item.producers, count,
                                item.fsync ? bv1::DURABILITY_FSYNC : bv1::DURABILITY_NONE);
        };
        auto run_redis = [&] {
          return redis_produce(item.fsync ? always : everysec, name, item.producers, count);
        };
        Rate broker_rate, redis_rate;
        if (broker_first) {
          broker_rate = run_broker();
          redis_rate = run_redis();
        } else {
          redis_rate = run_redis();
          broker_rate = run_broker();
        }
        item.series.add(broker_rate, redis_rate);
      }
      uint64_t count = static_cast<uint64_t>(batches) * kBatch;
      std::string topic = "bench-none-1" + suffix;
      if (broker_first) {
        auto broker_rate = broker_consume(daemon.grpc_address(), topic, count);
        consume.add(broker_rate, redis_consume(everysec, topic, count));
      } else {
        auto redis_rate = redis_consume(everysec, topic, count);
        consume.add(broker_consume(daemon.grpc_address(), topic, count), redis_rate);
      }
      latency.run(daemon.grpc_address(), everysec, suffix, broker_first);
    }
    std::printf("produce:\n");
    for (const auto& item : cases) item.series.print();
    std::printf("consume:\n");
    consume.print();
    latency.print();
  }
  if (most_segments > 0) {
    std::vector<int> counts = {0};
    for (int count : {10, 100, 1000, 10000}) {
      if (count <= most_segments) counts.push_back(count);
    }
    std::printf(
        "restart until the broker serves a consume of the last record, by sealed segments "
        "(segment_bytes=4096), %d "
        "rotated rounds:\n",
        rounds);
    TempDir root("broker-bench-restart");
    std::map<int, std::vector<double>> seconds;
    for (int count : counts) {
      auto dir = (root.path() / std::to_string(count)).string();
      if (!fill_segments(dir, count)) {
        std::fprintf(stderr, "could not fill %d segments\n", count);
        return 1;
      }
    }
    for (int round = 0; round < rounds; ++round) {
      for (size_t i = 0; i < counts.size(); ++i) {
        int count = counts[(i + round) % counts.size()];
        seconds[count].push_back(restart_seconds((root.path() / std::to_string(count)).string(),
                                                 "restart", 4ull * (count + 1) - 1));
      }
    }
    for (int count : counts) {
      std::printf("  %5d sealed segments: %7.3f s median (%s s)\n", count, median(seconds[count]),
                  spread(seconds[count], "%.3f-%.3f").c_str());
    }
  }
  if (most_partitions > 0) {
    std::printf(
        "scale curve: partitions in topics of %u, one %zu-byte record each (max_open_files "
        "default, 4 NONE producers of 1-record requests, 1 s per side in 7 rotated rounds):\n",
        kScalePartitionsPerTopic, kRecordBytes);
    reopen_cost();
    TempDir root("broker-bench-scale");
    for (int partitions : {1000, 10000}) {
      if (partitions > most_partitions) break;
      scale_point(root.path() / std::to_string(partitions), partitions);
    }
  }
  if (most_streams > 0) {
    std::printf("open Consume streams (callback reactors on the client, one channel):\n");
    for (int count : {1000, 10000}) {
      if (count > most_streams) break;
      streams_point(count);
    }
  }
  return 0;
}
