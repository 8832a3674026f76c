// The embedded broker against redis-server 7 Streams, side by side in one run:
// produce throughput (100-byte records, batches of 1000, 1 and 4 producers,
// durability NONE vs appendfsync everysec and FSYNC vs appendfsync always),
// consume throughput (Consume LOG mode vs XREADGROUP + XACK), and end-to-end
// latency at a fixed 20k msg/s. Prints figures and ratios; bounded in time.
#include <grpcpp/create_channel.h>
#include <hiredis/hiredis.h>

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <map>
#include <mutex>
#include <thread>

#include "telekern/broker/v1/broker.grpc.pb.h"
#include "telekern/latency_histogram.h"
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

LatencyHistogram broker_latency(const std::string& address, int rate,
                                std::chrono::seconds duration) {
  auto stub = bv1::Broker::NewStub(bench_channel(address, 100));
  const std::string topic = "bench-latency";
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
    auto reader = stub->Consume(&consume_context, request);
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

LatencyHistogram redis_latency(const RedisServer& redis, int rate, std::chrono::seconds duration) {
  const std::string stream = "bench-latency";
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

void line(const char* what, const Rate& broker, const Rate& redis) {
  std::printf("  %-44s broker %10.0f/s  redis %10.0f/s  ratio %5.2f%s\n", what, broker.per_second,
              redis.per_second, broker.per_second / redis.per_second,
              broker.failures + redis.failures ? "  (FAILURES)" : "");
}

}  // namespace

int main(int argc, char** argv) {
  int batches = argc > 1 ? std::atoi(argv[1]) : 100;  // per producer
  Telekernd daemon(
      {.modules_dir = std::string(TELEKERN_BUILD_DIR) + "/modules", .load = {"broker"}});
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
      "broker vs redis-server Streams, %zu-byte records, batches of %zu, %d batches per producer\n",
      kRecordBytes, kBatch, batches);
  std::printf("produce:\n");
  for (int producers : {1, 4}) {
    auto name = [&](const char* kind) {
      return std::to_string(producers) + " producer(s), " + kind;
    };
    line(name("NONE vs appendfsync everysec").c_str(),
         broker_produce(daemon.grpc_address(), "bench-none-" + std::to_string(producers), producers,
                        batches, bv1::DURABILITY_NONE),
         redis_produce(everysec, "bench-none-" + std::to_string(producers), producers, batches));
    int fsync_batches = std::max(1, batches / 5);
    line(name("FSYNC vs appendfsync always").c_str(),
         broker_produce(daemon.grpc_address(), "bench-fsync-" + std::to_string(producers),
                        producers, fsync_batches, bv1::DURABILITY_FSYNC),
         redis_produce(always, "bench-fsync-" + std::to_string(producers), producers,
                       fsync_batches));
  }
  std::printf("consume:\n");
  uint64_t count = static_cast<uint64_t>(batches) * kBatch;
  line("LOG mode vs XREADGROUP+XACK", broker_consume(daemon.grpc_address(), "bench-none-1", count),
       redis_consume(everysec, "bench-none-1", count));
  std::printf("end-to-end latency at 20000 msg/s for 3 s (microseconds):\n");
  auto broker = broker_latency(daemon.grpc_address(), 20000, std::chrono::seconds(3));
  auto redis = redis_latency(everysec, 20000, std::chrono::seconds(3));
  std::printf("  broker: %s\n  redis : %s\n", broker.summary("us").c_str(),
              redis.summary("us").c_str());
  std::printf(
      "  p99 broker/redis: %.2f (target: broker p99 <= 5000 us)\n",
      static_cast<double>(broker.percentile(0.99)) / std::max<uint64_t>(1, redis.percentile(0.99)));
  return 0;
}
