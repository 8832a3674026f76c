#include "proxy_engine.h"

#include <grpcpp/channel.h>
#include <grpcpp/client_context.h>

#include "grpc/health/v1/health.grpc.pb.h"
#include "telekern/status.h"
#include "telekern/strings.h"

namespace telekern::proxy {

ProxyEngine::ProxyEngine(ProxyOptions options, ChannelFactory channels,
                         std::shared_ptr<spdlog::logger> logger, MetricsRegistry* metrics)
    : options_(std::move(options)),
      channels_(std::move(channels)),
      logger_(std::move(logger)),
      metrics_(metrics),
      router_(RouterOptions{options_.algorithm, options_.virtual_nodes, options_.ring_probes,
                            options_.unhealthy_threshold, options_.healthy_threshold,
                            options_.failback, options_.failback_timeout}),
      queue_(options_.worker_threads, options_.max_pending_requests),
      timer_(std::make_unique<StepScheduler>(1)) {
  if (metrics_ == nullptr) return;
  retries_ =
      &metrics_->counter("telekern_proxy_retries_total",
                         "Idempotent calls sent again after an upstream answered UNAVAILABLE");
  routed_ = &metrics_->counter("telekern_proxy_routed_calls_total",
                               "Calls the proxy forwarded, by upstream, method and status code",
                               {"upstream", "method", "code"});
  failovers_ = &metrics_->counter("telekern_proxy_failovers_total",
                                  "Upstreams marked unhealthy (their partitions failed over)");
  rebalances_ = &metrics_->counter("telekern_proxy_rebalances_total",
                                   "Membership changes and failbacks that rebuilt the placement");
  lane_messages_ = &metrics_->counter(
      "telekern_proxy_lane_messages_total",
      "ProduceStream messages written to each upstream (a message may carry several produces)",
      {"upstream"});
  lane_produces_ = &metrics_->counter("telekern_proxy_lane_produces_total",
                                      "Produce requests carried by those messages", {"upstream"});
  latency_ = &metrics_->histogram("telekern_proxy_call_seconds",
                                  "Latency of forwarded calls, by method", {"method"});
  collector_ = metrics_->add_collector([this] {
    CollectedFamily health{"broker_health_status",
                           "1 while the upstream broker passes health checks, else 0", "gauge"};
    CollectedFamily in_flight{"telekern_proxy_upstream_in_flight",
                              "Calls in flight to each upstream", "gauge"};
    CollectedFamily share{"telekern_proxy_upstream_share",
                          "Share of the key space routed to each upstream", "gauge"};
    for (const auto& view : router_.view()) {
      health.samples.push_back({"broker_health_status",
                                {{"upstream", view.address}},
                                view.health == UpstreamHealth::kHealthy ? 1.0 : 0.0});
      in_flight.samples.push_back({"telekern_proxy_upstream_in_flight",
                                   {{"upstream", view.address}},
                                   static_cast<double>(view.in_flight)});
      share.samples.push_back(
          {"telekern_proxy_upstream_share", {{"upstream", view.address}}, view.share});
    }
    return std::vector<CollectedFamily>{health, in_flight, share};
  });
}

ProxyEngine::~ProxyEngine() { shutdown(); }

void ProxyEngine::start() {
  if (auto report = router_.set_members(options_.members(), "configured upstreams")) {
    this->report(*report);
  }
  health_thread_ = std::jthread([this](std::stop_token stop) { health_loop(stop); });
}

void ProxyEngine::shutdown() {
  if (health_thread_.joinable()) {
    health_thread_.request_stop();
    wake_.notify_all();
    health_thread_.join();
  }
  queue_.stop();
  {
    // Drops retries still waiting: each ends its call UNAVAILABLE.
    std::unique_ptr<StepScheduler> timer;
    {
      std::lock_guard lock(timer_mutex_);
      timer = std::move(timer_);
    }
  }
  // Upstream streams (Consume readers) run callbacks in this module's code:
  // end them and wait, so none runs after the module is gone.
  std::vector<std::weak_ptr<UpstreamStream>> streams;
  {
    std::lock_guard lock(streams_mutex_);
    stopping_ = true;
    for (auto& [_, stream] : streams_) streams.push_back(stream);
  }
  for (auto& weak : streams) {
    if (auto stream = weak.lock()) stream->cancel();
  }
  {
    std::unique_lock lock(streams_mutex_);
    if (!streams_ended_.wait_for(lock, std::chrono::seconds(10), [&] { return streams_.empty(); }))
      logger_->warn("{} upstream streams still open 10 s after they were cancelled",
                    streams_.size());
  }
  collector_.reset();
}

void ProxyEngine::after(std::chrono::milliseconds delay, std::function<void()> work) {
  std::lock_guard lock(timer_mutex_);
  if (!timer_) return;  // stopping: `work` is dropped here
  timer_->post_at(StepScheduler::Clock::now() + delay, std::move(work));
}

void ProxyEngine::count_retries(size_t calls) {
  if (retries_) retries_->with().inc(static_cast<double>(calls));
}

uint64_t ProxyEngine::track(std::weak_ptr<UpstreamStream> stream) {
  std::lock_guard lock(streams_mutex_);
  if (stopping_) return 0;
  uint64_t id = ++next_stream_;
  streams_.emplace(id, std::move(stream));
  return id;
}

void ProxyEngine::untrack(uint64_t id) {
  std::lock_guard lock(streams_mutex_);
  streams_.erase(id);
  if (streams_.empty()) streams_ended_.notify_all();
}

size_t ProxyEngine::tracked_streams() {
  std::lock_guard lock(streams_mutex_);
  return streams_.size();
}

absl::StatusOr<std::map<std::string, std::pair<std::shared_ptr<Upstream>, std::set<uint32_t>>>>
ProxyEngine::owners(const std::string& topic, uint32_t partitions) {
  std::map<std::string, std::pair<std::shared_ptr<Upstream>, std::set<uint32_t>>> out;
  for (uint32_t p = 0; p < partitions; ++p) {
    auto upstream = router_.route(topic, p);
    if (!upstream.ok()) return upstream.status();
    auto& slot = out[(*upstream)->address];
    slot.first = *upstream;
    slot.second.insert(p);
  }
  return out;
}

absl::Status ProxyEngine::submit(std::function<void()> work) {
  if (queue_.try_submit(std::move(work))) return absl::OkStatus();
  return absl::ResourceExhaustedError(
      str_cat("the proxy's queue holds ", queue_.capacity(),
              " calls (max_pending_requests); retry later or raise it"));
}

std::shared_ptr<Connection> ProxyEngine::connection(const std::string& address) {
  std::lock_guard lock(mutex_);
  auto& slot = connections_[address];
  if (!slot) {
    slot = std::make_shared<Connection>();
    slot->address = address;
    slot->channel = channels_(address);
    slot->broker = broker::v1::Broker::NewStub(slot->channel);
    slot->generic = std::make_unique<grpc::GenericStub>(slot->channel);
    LaneCounters counters;
    if (lane_messages_) {
      counters.messages = &lane_messages_->with({address});
      counters.produces = &lane_produces_->with({address});
    }
    slot->produce = std::make_unique<ProduceLanes>(*this, *slot->generic, options_.produce_streams,
                                                   options_.produce_stream_window, counters);
  }
  return slot;
}

void ProxyEngine::report(const RemapReport& report) {
  epoch_.fetch_add(1);
  logger_->info("placement changed: {}", report.describe());
  // Open Consume streams check whether their topic's owners changed.
  std::vector<std::weak_ptr<UpstreamStream>> streams;
  {
    std::lock_guard lock(streams_mutex_);
    for (auto& [_, stream] : streams_) streams.push_back(stream);
  }
  for (auto& weak : streams) {
    if (auto stream = weak.lock()) stream->placement_changed();
  }
}

absl::StatusOr<RemapReport> ProxyEngine::add_upstream(const std::string& address) {
  auto report = router_.add(address);
  if (report.ok()) {
    this->report(*report);
    if (rebalances_) rebalances_->with().inc();
  }
  return report;
}

absl::StatusOr<RemapReport> ProxyEngine::remove_upstream(const std::string& address) {
  auto report = router_.remove(address);
  if (report.ok()) {
    this->report(*report);
    if (rebalances_) rebalances_->with().inc();
  }
  return report;
}

absl::StatusOr<RemapReport> ProxyEngine::drain_upstream(const std::string& address) {
  auto report = router_.drain(address);
  if (report.ok()) {
    this->report(*report);
    if (rebalances_) rebalances_->with().inc();
  }
  return report;
}

grpc::Status ProxyEngine::describe_topic(const Upstream& upstream, const std::string& topic,
                                         broker::v1::DescribeTopicResponse* response) {
  auto connection = this->connection(upstream.address);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + options_.health_timeout);
  broker::v1::DescribeTopicRequest request;
  request.set_topic(topic);
  return connection->broker->DescribeTopic(&context, request, response);
}

uint32_t ProxyEngine::partitions_of(const std::string& topic) {
  {
    std::lock_guard lock(mutex_);
    if (auto it = partitions_.find(topic); it != partitions_.end()) return it->second;
  }
  // Ask the upstreams that serve partitions now; the largest count wins.
  uint32_t found = 0;
  for (const auto& upstream : router_.routable()) {
    broker::v1::DescribeTopicResponse response;
    if (describe_topic(*upstream, topic, &response).ok())
      found = std::max<uint32_t>(found, response.config().partitions());
  }
  if (found == 0) return options_.default_partitions;  // not cached: created on first use
  remember_partitions(topic, found);
  return found;
}

std::vector<std::shared_ptr<Upstream>> ProxyEngine::holders(const std::string& topic,
                                                            const std::set<std::string>& owners) {
  std::vector<std::shared_ptr<Upstream>> found;
  for (const auto& upstream : router_.routable()) {
    if (owners.count(upstream->address) > 0) continue;
    broker::v1::DescribeTopicResponse response;
    auto status = describe_topic(*upstream, topic, &response);
    if (!status.ok()) {
      if (status.error_code() != grpc::StatusCode::NOT_FOUND) {
        logger_->warn("consume of '{}': cannot tell whether {} holds records of it: {}", topic,
                      upstream->address, status.error_message());
      }
      continue;
    }
    for (const auto& partition : response.partitions()) {
      if (partition.end_offset() > partition.start_offset()) {
        found.push_back(upstream);
        break;
      }
    }
  }
  return found;
}

void ProxyEngine::remember_partitions(const std::string& topic, uint32_t partitions) {
  std::lock_guard lock(mutex_);
  auto& slot = partitions_[topic];
  slot = std::max(slot, partitions);
}

void ProxyEngine::forget_topic(const std::string& topic) {
  std::lock_guard lock(mutex_);
  partitions_.erase(topic);
}

void ProxyEngine::observe_call(const std::string& upstream, const char* method,
                               grpc::StatusCode code, double seconds) {
  if (!routed_) return;
  routed_->with({upstream, method, status_code_name(code)}).inc();
  latency_->with({method}).observe(seconds);
}

void ProxyEngine::observe_produce(Connection& connection, grpc::StatusCode code, double seconds) {
  if (!routed_) return;
  if (code != grpc::StatusCode::OK) {
    return observe_call(connection.address, "Produce", code, seconds);
  }
  Counter* ok = connection.produce_ok.load(std::memory_order_acquire);
  if (ok == nullptr) {
    ok = &routed_->with({connection.address, "Produce", status_code_name(code)});
    connection.produce_ok.store(ok, std::memory_order_release);
  }
  ok->inc();
  Histogram* latency = produce_latency_.load(std::memory_order_acquire);
  if (latency == nullptr) {
    latency = &latency_->with({"Produce"});
    produce_latency_.store(latency, std::memory_order_release);
  }
  latency->observe(seconds);
}

void ProxyEngine::health_loop(std::stop_token stop) {
  while (!stop.stop_requested()) {
    check_all();
    if (auto report = router_.tick(std::chrono::steady_clock::now())) {
      this->report(*report);
      if (rebalances_) rebalances_->with().inc();
    }
    std::unique_lock lock(wake_mutex_);
    wake_.wait_for(lock, stop, options_.health_interval, [] { return false; });
  }
}

void ProxyEngine::check_all() {
  // Checks run concurrently (one slow upstream does not delay the others'
  // verdicts); each waits at most health_timeout.
  struct Check {
    std::string address;
    std::unique_ptr<grpc::health::v1::Health::Stub> stub;
    grpc::ClientContext context;
    grpc::health::v1::HealthCheckRequest request;
    grpc::health::v1::HealthCheckResponse response;
    grpc::Status status;
    bool done = false;
  };
  auto upstreams = router_.all();
  // gRPC backs off reconnecting to a dead peer (up to minutes); a failed
  // upstream's checks must see it the moment it is back.
  for (const auto& view : router_.view()) {
    if (view.health == UpstreamHealth::kUnhealthy || view.health == UpstreamHealth::kRejoining)
      grpc::experimental::ChannelResetConnectionBackoff(connection(view.address)->channel.get());
  }
  std::vector<std::unique_ptr<Check>> checks;
  std::mutex mutex;
  std::condition_variable finished;
  size_t pending = upstreams.size();
  for (const auto& upstream : upstreams) {
    auto check = std::make_unique<Check>();
    check->address = upstream->address;
    check->stub = grpc::health::v1::Health::NewStub(connection(upstream->address)->channel);
    check->context.set_deadline(std::chrono::system_clock::now() + options_.health_timeout);
    check->request.set_service(options_.health_service);
    checks.push_back(std::move(check));
  }
  for (auto& check : checks) {
    Check* raw = check.get();
    raw->stub->async()->Check(&raw->context, &raw->request, &raw->response,
                              [raw, &mutex, &finished, &pending](grpc::Status status) {
                                std::lock_guard lock(mutex);
                                raw->status = std::move(status);
                                raw->done = true;
                                if (--pending == 0) finished.notify_all();
                              });
  }
  {
    std::unique_lock lock(mutex);
    finished.wait(lock, [&] { return pending == 0; });  // every call ends by its deadline
  }
  auto now = std::chrono::system_clock::now();
  for (const auto& check : checks) {
    bool ok = check->status.ok() &&
              check->response.status() == grpc::health::v1::HealthCheckResponse::SERVING;
    std::string error;
    if (!check->status.ok()) {
      error = str_cat(status_code_name(check->status.error_code()), ": ",
                      check->status.error_message());
    } else if (!ok) {
      error = str_cat(options_.health_service, " is not SERVING");
    }
    if (auto report = router_.record_check(check->address, ok, error, now)) {
      this->report(*report);
      if (ok) {
        if (rebalances_) rebalances_->with().inc();
      } else if (failovers_) {
        failovers_->with().inc();
        logger_->warn("upstream {} is unhealthy: {}", check->address, error);
      }
    }
  }
}

}  // namespace telekern::proxy
