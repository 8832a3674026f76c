#include "agent.h"

#include <absl/strings/str_cat.h>
#include <google/protobuf/util/json_util.h>

#include "telekern/proto_time.h"
#include "telekern/strings.h"

namespace telekern::monitor {

Agent::Agent(const MonitorOptions& options, ProducerFactory producers,
             std::shared_ptr<spdlog::logger> logger, MetricsRegistry& metrics)
    : topic_(options.topic),
      node_id_(options.node_id.empty() ? host_name() : options.node_id),
      node_name_(options.node_name.empty() ? node_id_ : options.node_name),
      interval_(options.agent_interval),
      capacity_(options.agent_buffer),
      producers_(std::move(producers)),
      logger_(std::move(logger)),
      sampler_(options.proc_root, options.sys_root) {
  auto& samples = metrics.counter("telekern_monitor_agent_samples_total",
                                  "Samples of this host's agent, by outcome", {"outcome"});
  published_ = &samples.with({"published"});
  dropped_ = &samples.with({"dropped"});
  buffered_gauge_ = &metrics.gauge("telekern_monitor_agent_buffered",
                                   "Samples waiting to be published").with();
}

Agent::~Agent() { stop(); }

void Agent::start() {
  thread_ = std::jthread([this](std::stop_token stop) {
    auto next = std::chrono::steady_clock::now();
    while (!stop.stop_requested()) {
      round();
      next += interval_;
      while (!stop.stop_requested() && std::chrono::steady_clock::now() < next)
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  });
}

void Agent::stop() {
  if (thread_.joinable()) {
    thread_.request_stop();
    thread_.join();
  }
}

size_t Agent::buffered() const {
  std::lock_guard lock(mutex_);
  return buffer_.size();
}

std::string Agent::last_error() const {
  std::lock_guard lock(mutex_);
  return last_error_;
}

void Agent::round() {
  auto sample = sampler_.sample(std::chrono::steady_clock::now());
  std::lock_guard lock(mutex_);
  if (!sample.ok()) {
    last_error_ = str_cat("sampling: ", std::string(sample.status().message()));
    logger_->warn("agent: {}", last_error_);
  } else {
    sample->set_node_id(node_id_);
    sample->set_node_name(node_name_);
    *sample->mutable_time() = to_timestamp(std::chrono::system_clock::now());
    *sample->mutable_interval() = google::protobuf::util::TimeUtil::MillisecondsToDuration(
        interval_.count());
    std::string json;
    (void)google::protobuf::util::MessageToJsonString(*sample, &json);
    if (buffer_.size() >= capacity_) {
      buffer_.pop_front();
      dropped_->inc();
    }
    buffer_.push_back(std::move(json));
  }
  if (!producer_) {
    auto producer = producers_();
    if (!producer.ok()) {
      last_error_ = str_cat("connecting the producer: ", std::string(producer.status().message()));
      logger_->warn("agent: {} ({} samples buffered)", last_error_, buffer_.size());
      buffered_gauge_->set(static_cast<double>(buffer_.size()));
      return;
    }
    producer_ = std::move(*producer);
  }
  size_t sent = 0;
  for (const auto& json : buffer_) {
    stream::Record record;
    record.topic = topic_;
    record.key = node_id_;
    record.value = json;
    if (!producer_->send(std::move(record)).ok()) break;
    ++sent;
  }
  // Bounded: a slow transport costs this thread at most half an interval.
  auto flushed = producer_->flush(std::max(interval_ / 2, std::chrono::milliseconds(100)));
  if (flushed.ok() && sent > 0) {
    buffer_.erase(buffer_.begin(), buffer_.begin() + static_cast<long>(sent));
    published_->inc(static_cast<double>(sent));
    last_error_.clear();
  } else if (!flushed.ok()) {
    last_error_ = str_cat("publishing to '", topic_, "': ", std::string(flushed.message()));
    logger_->warn("agent: {} ({} samples buffered, retried next round)", last_error_,
                  buffer_.size());
  }
  buffered_gauge_->set(static_cast<double>(buffer_.size()));
}

}  // namespace telekern::monitor
