#include "collector_worker.h"

#include <condition_variable>

#include "telekern/retry.h"
#include "telekern/sleep.h"
#include "telekern/strings.h"

namespace telekern::collector {

CollectorWorker::CollectorWorker(WorkerSettings settings, TelemetryStore& store, RejectLog& rejects,
                                 WorkerMetrics metrics, std::shared_ptr<spdlog::logger> log)
    : settings_(std::move(settings)),
      store_(store),
      rejects_(rejects),
      metrics_(metrics),
      log_(std::move(log)) {}

void CollectorWorker::run(std::stop_token stop) {
  Backoff backoff({std::chrono::milliseconds(200), std::chrono::seconds(5), 2.0, 0});
  int failures = 0;
  auto pause = [&](const absl::Status& status) {
    log_->warn("collector '{}': {}; retrying", settings_.member, status.ToString());
    sleep_for(backoff.delay(++failures), stop);
  };
  while (!stop.stop_requested()) {
    auto config = settings_.stream;
    config.client_id = settings_.member;
    auto made = stream::make_consumer(
        config, {settings_.group, {settings_.topic}, stream::StartFrom::kEarliest});
    if (!made.ok()) {
      pause(made.status());
      continue;
    }
    std::shared_ptr<stream::Consumer> consumer = std::move(*made);
    {
      std::lock_guard lock(consumer_mutex_);
      consumer_ = consumer;
    }
    struct Forget {
      CollectorWorker* worker;
      ~Forget() {
        std::lock_guard lock(worker->consumer_mutex_);
        worker->consumer_.reset();
      }
    } forget{this};
    std::vector<stream::Record> records;
    std::vector<TelemetryPoint> points;
    auto batch_started = std::chrono::steady_clock::now();
    while (!stop.stop_requested()) {
      auto left = settings_.batch_age - std::chrono::duration_cast<std::chrono::milliseconds>(
                                            std::chrono::steady_clock::now() - batch_started);
      auto wait = records.empty() ? std::chrono::milliseconds(200)
                                  : std::clamp(left, std::chrono::milliseconds(1),
                                               std::chrono::milliseconds(200));
      bool lingering =
          !records.empty() && settings_.batch_linger.count() > 0 && settings_.batch_linger < wait;
      if (lingering) wait = settings_.batch_linger;
      auto polled = consumer->poll(settings_.batch_size - records.size(), wait);
      if (!polled.ok()) {
        pause(polled.status());
        break;  // a new consumer resumes from the committed offsets
      }
      failures = 0;
      if (records.empty() && !polled->empty()) batch_started = std::chrono::steady_clock::now();
      for (auto& record : *polled) {
        auto point = decode_record(record.value);
        if (point.ok()) {
          points.push_back(std::move(*point));
        } else {
          if (metrics_.rows_rejected) metrics_.rows_rejected->with({"undecodable"}).inc();
          std::string source = str_cat(record.topic, "/", record.partition);
          log_->warn("record {}@{} is not a telemetry row: {}", source, record.offset,
                     point.status().ToString());
          rejects_.add(source, static_cast<uint64_t>(record.offset),
                       std::string(point.status().message()), record.value);
        }
        records.push_back(std::move(record));
      }
      waiting_.store(points.size(), std::memory_order_relaxed);
      bool full = records.size() >= settings_.batch_size;
      bool old = !records.empty() &&
                 std::chrono::steady_clock::now() - batch_started >= settings_.batch_age;
      // Nothing more came within the linger: the topic is drained for now.
      bool drained = lingering && polled->empty();
      if ((full || old || drained) && !flush(*consumer, records, points, stop)) return;
    }
  }
}

std::shared_ptr<stream::Consumer> CollectorWorker::consumer() const {
  std::lock_guard lock(consumer_mutex_);
  return consumer_;
}

bool CollectorWorker::flush(stream::Consumer& consumer, std::vector<stream::Record>& records,
                            std::vector<TelemetryPoint>& points, std::stop_token stop) {
  auto started = std::chrono::steady_clock::now();
  auto written = store_.write(points, stop);
  if (stop.stop_requested() && !written.ok()) return false;
  double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  if (written.ok()) {
    if (metrics_.points_written) metrics_.points_written->inc(static_cast<double>(points.size()));
    if (metrics_.data_points) metrics_.data_points->inc(static_cast<double>(points.size()));
    if (metrics_.batch_size) metrics_.batch_size->observe(static_cast<double>(points.size()));
    if (metrics_.write_duration) metrics_.write_duration->observe(seconds);
  } else {
    // The store refused the data itself (not an outage): keep it in the reject file.
    if (metrics_.write_errors) metrics_.write_errors->inc();
    if (metrics_.rows_rejected)
      metrics_.rows_rejected->with({"store_refused"}).inc(static_cast<double>(points.size()));
    log_->error("store refused a batch of {} points: {}; written to {}", points.size(),
                written.ToString(), rejects_.path());
    for (const auto& point : points)
      rejects_.add(store_.describe(), 0, std::string(written.message()), encode_record(point));
  }
  auto committed = consumer.commit(records);
  if (!committed.ok())
    log_->warn("commit of {} records failed (they will be written again): {}", records.size(),
               committed.ToString());
  records.clear();
  points.clear();
  waiting_.store(0, std::memory_order_relaxed);
  return true;
}

}  // namespace telekern::collector
