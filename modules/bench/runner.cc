#include "runner.h"

#include <atomic>
#include <condition_variable>
#include <cstring>
#include <fstream>
#include <memory>
#include <mutex>
#include <random>
#include <sstream>
#include <thread>

#include "telekern/strings.h"

namespace telekern::bench {
namespace {

using Clock = std::chrono::steady_clock;

int64_t now_micros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(Clock::now().time_since_epoch())
      .count();
}
int64_t micros_of(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count();
}

// Counters and histograms of one client, swapped out by the reporter each window.
struct ClientStats {
  std::mutex mutex;
  HdrHistogram window_latency;
  HdrHistogram window_delay;
  HdrHistogram total_latency;
  HdrHistogram total_delay;
  uint64_t window_messages = 0;
  uint64_t window_bytes = 0;
  uint64_t window_errors = 0;
  uint64_t total_messages = 0;
  uint64_t total_errors = 0;
};

struct Phase {
  std::atomic<bool> producing{true};
  std::atomic<bool> consuming{true};
  std::atomic<bool> consumers_paused{false};
};

std::vector<std::string> make_payloads(const Workload& workload, const RunOptions& options,
                                       std::vector<std::string>& notes) {
  std::string base;
  if (!workload.payload_file.empty()) {
    std::filesystem::path path = workload.payload_file;
    if (path.is_relative() && !options.payload_dir.empty()) path = options.payload_dir / path;
    std::ifstream in(path, std::ios::binary);
    if (in) {
      std::stringstream buffer;
      buffer << in.rdbuf();
      base = buffer.str();
    } else {
      notes.push_back(str_cat("payloadFile '", workload.payload_file, "' not found under '",
                              options.payload_dir.string(), "'; generated ", workload.message_size,
                              "-byte payloads instead"));
    }
  }
  if (base.size() < 8) base.assign(workload.message_size, 'x');
  std::vector<std::string> payloads;
  if (!workload.use_randomized_payloads) {
    payloads.push_back(base);
    return payloads;
  }
  std::mt19937_64 random(42);
  uint32_t pool = std::max<uint32_t>(1, workload.randomized_payload_pool_size);
  pool = std::min<uint32_t>(pool, 1000);
  size_t random_bytes = static_cast<size_t>(workload.random_bytes_ratio * base.size());
  for (uint32_t i = 0; i < pool; ++i) {
    std::string payload = base;
    for (size_t b = 0; b < random_bytes && b < payload.size(); ++b)
      payload[payload.size() - 1 - b] = static_cast<char>(random() & 0xff);
    payloads.push_back(std::move(payload));
  }
  return payloads;
}

void producer_loop(DriverProducer& producer, ClientStats& stats, const Phase& phase,
                   const std::vector<std::string>& payloads, const Workload& workload, double rate,
                   size_t max_batch, Clock::time_point start, Clock::time_point end,
                   std::stop_token stop, uint64_t seed) {
  std::mt19937_64 random(seed);
  std::vector<Message> batch;
  std::vector<int64_t> intended;
  auto interval =
      rate > 0 ? std::chrono::duration<double>(1.0 / rate) : std::chrono::duration<double>(0);
  uint64_t sent = 0;
  auto next = start;
  uint64_t key_counter = seed * 1000003;
  while (!stop.stop_requested() && phase.producing.load(std::memory_order_relaxed)) {
    auto now = Clock::now();
    if (now >= end) break;
    // Message objects (and their payload buffers) are reused across batches.
    intended.clear();
    if (rate > 0) {
      if (next > now) {
        std::this_thread::sleep_until(std::min(next, end));
        continue;
      }
      while (next <= now && intended.size() < max_batch) {
        intended.push_back(micros_of(next));
        ++sent;
        next = start + std::chrono::duration_cast<Clock::duration>(interval * double(sent));
      }
    } else {
      intended.assign(max_batch, micros_of(now));
    }
    batch.resize(intended.size());
    int64_t send_start = now_micros();
    size_t bytes = 0;
    for (size_t i = 0; i < batch.size(); ++i) {
      auto& message = batch[i];
      message.payload = payloads[(key_counter + i) % payloads.size()];
      std::memcpy(message.payload.data(), &intended[i], sizeof(int64_t));
      bytes += message.payload.size();
      switch (workload.key_distributor) {
        case KeyDistributor::kNoKey:
          break;
        case KeyDistributor::kKeyRoundRobin:
          message.key = std::to_string(key_counter++ % 10000);
          break;
        case KeyDistributor::kRandomNano:
          message.key = std::to_string(random());
          break;
      }
    }
    auto status = producer.send_batch(batch);
    int64_t acked = now_micros();
    std::lock_guard lock(stats.mutex);
    if (!status.ok()) {
      stats.window_errors += batch.size();
      stats.total_errors += batch.size();
      continue;
    }
    for (int64_t t : intended) {
      uint64_t latency = static_cast<uint64_t>(std::max<int64_t>(0, acked - t));
      uint64_t delay = static_cast<uint64_t>(std::max<int64_t>(0, send_start - t));
      stats.window_latency.record(latency);
      stats.total_latency.record(latency);
      stats.window_delay.record(delay);
      stats.total_delay.record(delay);
    }
    stats.window_messages += batch.size();
    stats.window_bytes += bytes;
    stats.total_messages += batch.size();
  }
}

void consumer_loop(DriverConsumer& consumer, ClientStats& stats, const Phase& phase,
                   std::stop_token stop) {
  std::vector<std::string> payloads;
  while (!stop.stop_requested() && phase.consuming.load(std::memory_order_relaxed)) {
    if (phase.consumers_paused.load(std::memory_order_relaxed)) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      continue;
    }
    payloads.clear();
    auto status = consumer.poll(payloads, 500, std::chrono::milliseconds(100));
    int64_t received = now_micros();
    std::lock_guard lock(stats.mutex);
    if (!status.ok()) {
      ++stats.window_errors;
      ++stats.total_errors;
      continue;
    }
    for (const auto& payload : payloads) {
      if (payload.size() < sizeof(int64_t)) continue;
      int64_t sent = 0;
      std::memcpy(&sent, payload.data(), sizeof(int64_t));
      uint64_t latency = static_cast<uint64_t>(std::max<int64_t>(0, received - sent));
      stats.window_latency.record(latency);
      stats.total_latency.record(latency);
      stats.window_bytes += payload.size();
    }
    stats.window_messages += payloads.size();
    stats.total_messages += payloads.size();
  }
}

}  // namespace

LatencyFigures LatencyFigures::of(const HdrHistogram& h) {
  auto ms = [](uint64_t micros) { return static_cast<double>(micros) / 1000.0; };
  LatencyFigures f;
  f.avg = h.mean() / 1000.0;
  f.p50 = ms(h.percentile(0.50));
  f.p75 = ms(h.percentile(0.75));
  f.p95 = ms(h.percentile(0.95));
  f.p99 = ms(h.percentile(0.99));
  f.p999 = ms(h.percentile(0.999));
  f.p9999 = ms(h.percentile(0.9999));
  f.max = ms(h.max());
  return f;
}

absl::StatusOr<RunResult> run_workload(const Workload& workload, const DriverSpec& spec,
                                       Driver& driver, const RunOptions& options,
                                       std::stop_token stop, const WindowCallback& on_window) {
  RunResult result;
  result.workload = workload;
  result.driver = spec;
  result.started = std::chrono::system_clock::now();
  auto payloads = make_payloads(workload, options, result.notes);
  result.message_size = static_cast<uint32_t>(payloads.front().size());

  // Topics, then consumers (subscribed before anything is published), then producers.
  std::vector<std::string> topics;
  for (uint32_t t = 0; t < workload.topics; ++t) {
    std::string topic = str_cat(options.topic_prefix, "-", t);
    if (auto status = driver.create_topic(topic, workload.partitions_per_topic); !status.ok())
      return status;
    topics.push_back(std::move(topic));
  }
  std::vector<std::unique_ptr<DriverConsumer>> consumers;
  std::vector<std::unique_ptr<DriverProducer>> producers;
  for (const auto& topic : topics) {
    for (uint32_t s = 0; s < workload.subscriptions_per_topic; ++s) {
      std::string subscription = str_cat("sub-", s, "-", options.topic_prefix);
      for (uint32_t c = 0; c < workload.consumer_per_subscription; ++c) {
        auto consumer = driver.consumer(topic, subscription);
        if (!consumer.ok()) return consumer.status();
        consumers.push_back(std::move(*consumer));
      }
    }
    for (uint32_t p = 0; p < workload.producers_per_topic; ++p) {
      auto producer = driver.producer(topic);
      if (!producer.ok()) return producer.status();
      producers.push_back(std::move(*producer));
    }
  }

  std::vector<std::unique_ptr<ClientStats>> producer_stats, consumer_stats;
  for (size_t i = 0; i < producers.size(); ++i)
    producer_stats.push_back(std::make_unique<ClientStats>());
  for (size_t i = 0; i < consumers.size(); ++i)
    consumer_stats.push_back(std::make_unique<ClientStats>());

  Phase phase;
  double backlog_bytes_target = workload.consumer_backlog_size_gb * 1024.0 * 1024.0 * 1024.0;
  if (backlog_bytes_target > 0) phase.consumers_paused = true;
  auto start = Clock::now();
  auto warmup_end = start + workload.warmup_duration;
  auto end = warmup_end + workload.test_duration;
  double rate_per_producer =
      workload.producer_rate > 0 ? workload.producer_rate / double(producers.size()) : 0;
  std::stop_source workers_stop;
  {
    std::vector<std::jthread> threads;
    for (size_t i = 0; i < consumers.size(); ++i) {
      threads.emplace_back([&, i] {
        consumer_loop(*consumers[i], *consumer_stats[i], phase, workers_stop.get_token());
      });
    }
    for (size_t i = 0; i < producers.size(); ++i) {
      threads.emplace_back([&, i] {
        producer_loop(*producers[i], *producer_stats[i], phase, payloads, workload,
                      rate_per_producer, options.max_batch, start, end, workers_stop.get_token(),
                      i + 1);
      });
    }

    // Reporter: one window at a time; the warm-up's last window ends at warmup_end.
    uint64_t published_total = 0, consumed_total = 0;  // whole run, for the backlog
    uint64_t subscriptions = uint64_t(workload.subscriptions_per_topic);
    auto window_start = start;
    int index = 0;
    bool in_warmup = workload.warmup_duration.count() > 0;
    std::mutex wait_mutex;
    std::condition_variable_any wait;
    while (true) {
      auto phase_end = in_warmup ? warmup_end : end;
      auto window_end = std::min(window_start + options.window, phase_end);
      {
        std::unique_lock lock(wait_mutex);
        wait.wait_until(lock, stop, window_end, [] { return false; });
      }
      bool cancelled = stop.stop_requested();
      auto now = Clock::now();
      WindowStats w;
      w.index = index++;
      w.warmup = in_warmup;
      w.seconds = std::chrono::duration<double>(now - window_start).count();
      w.elapsed_seconds = std::chrono::duration<double>(now - start).count();
      HdrHistogram publish, delay, e2e;
      uint64_t pub_bytes = 0, con_bytes = 0, errors = 0;
      for (auto& stats : producer_stats) {
        std::lock_guard lock(stats->mutex);
        publish.merge(stats->window_latency);
        delay.merge(stats->window_delay);
        w.published += stats->window_messages;
        pub_bytes += stats->window_bytes;
        errors += stats->window_errors;
        stats->window_latency.reset();
        stats->window_delay.reset();
        stats->window_messages = stats->window_bytes = stats->window_errors = 0;
        if (in_warmup && now >= warmup_end) {
          // The warm-up is over: what was recorded so far does not count.
          stats->total_latency.reset();
          stats->total_delay.reset();
          stats->total_messages = stats->total_errors = 0;
        }
      }
      for (auto& stats : consumer_stats) {
        std::lock_guard lock(stats->mutex);
        e2e.merge(stats->window_latency);
        w.consumed += stats->window_messages;
        con_bytes += stats->window_bytes;
        errors += stats->window_errors;
        stats->window_latency.reset();
        stats->window_messages = stats->window_bytes = stats->window_errors = 0;
        if (in_warmup && now >= warmup_end) {
          stats->total_latency.reset();
          stats->total_messages = stats->total_errors = 0;
        }
      }
      published_total += w.published;
      consumed_total += w.consumed;
      double seconds = std::max(w.seconds, 1e-3);
      w.publish_rate = double(w.published) / seconds;
      w.publish_mb = double(pub_bytes) / seconds / (1024.0 * 1024.0);
      w.publish_error_rate = double(errors) / seconds;
      w.consume_rate = double(w.consumed) / seconds;
      w.consume_mb = double(con_bytes) / seconds / (1024.0 * 1024.0);
      w.backlog = int64_t(published_total * subscriptions) - int64_t(consumed_total);
      w.publish_latency = LatencyFigures::of(publish);
      w.publish_delay = LatencyFigures::of(delay);
      w.end_to_end_latency = LatencyFigures::of(e2e);
      if (phase.consumers_paused &&
          double(std::max<int64_t>(0, w.backlog)) * result.message_size >= backlog_bytes_target)
        phase.consumers_paused = false;
      result.windows.push_back(w);
      if (on_window) on_window(w);
      window_start = now;
      if (in_warmup && now >= warmup_end) in_warmup = false;
      if (cancelled) {
        result.cancelled = true;
        break;
      }
      if (!in_warmup && now >= end) break;
    }
    phase.producing = false;
    phase.consuming = false;
    workers_stop.request_stop();
  }  // joins every client thread

  for (auto& stats : producer_stats) {
    result.publish_latency.merge(stats->total_latency);
    result.publish_delay.merge(stats->total_delay);
    result.published += stats->total_messages;
    result.publish_errors += stats->total_errors;
  }
  for (auto& stats : consumer_stats) {
    result.end_to_end_latency.merge(stats->total_latency);
    result.consumed += stats->total_messages;
  }
  for (const auto& w : result.windows) {
    if (!w.warmup) result.measured_seconds += w.seconds;
  }
  producers.clear();
  consumers.clear();
  driver.cleanup();
  result.finished = std::chrono::system_clock::now();

  if (result.cancelled) {
    result.valid = false;
    result.invalid_reasons.push_back("cancelled before the end of the test phase");
  }
  if (workload.warmup_duration.count() == 0) {
    result.valid = false;
    result.invalid_reasons.push_back(
        "warm-up not excluded: warmupDurationMinutes is 0, so start-up effects are in the "
        "figures");
  }
  double delay_p99_ms = double(result.publish_delay.percentile(0.99)) / 1000.0;
  if (delay_p99_ms > double(options.max_publish_delay.count())) {
    result.valid = false;
    result.invalid_reasons.push_back(
        str_cat("load generator fell behind its schedule: p99 publish delay ", delay_p99_ms,
                " ms > bound ", options.max_publish_delay.count(),
                " ms; lower producerRate, add producers, or check the client machine"));
  }
  if (result.publish_errors > 0)
    result.notes.push_back(str_cat(result.publish_errors, " publish errors in the measured phase"));
  return result;
}

}  // namespace telekern::bench
