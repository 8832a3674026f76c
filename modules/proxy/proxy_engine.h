// The proxy's engine: the router, one pooled channel per upstream, the
// health checker that feeds the router, the catalog of topic partition
// counts, the metrics, and the work queue the service's calls run on.
#pragma once

#include <absl/status/status.h>
#include <absl/status/statusor.h>
#include <grpcpp/channel.h>
#include <grpcpp/generic/generic_stub.h>
#include <spdlog/logger.h>

#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <thread>

#include "produce_lanes.h"
#include "proxy_options.h"
#include "router.h"
#include "telekern/broker/v1/broker.grpc.pb.h"
#include "telekern/metrics.h"
#include "telekern/service/polled_stream.h"
#include "telekern/work_queue.h"

namespace telekern::proxy {

// An upstream's pooled channel and its stub.
struct Connection {
  std::string address;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<broker::v1::Broker::Stub> broker;
  std::unique_ptr<grpc::GenericStub> generic;  // Produce forwarded as bytes
  std::unique_ptr<ProduceLanes> produce;       // over ProduceStream lanes
  // Metrics of produces answered OK, looked up once (a produce is the hot path).
  std::atomic<Counter*> produce_ok{nullptr};
};

// An upstream stream call the engine can end (on shutdown, which waits for
// every tracked one to finish) and tell about placement changes.
class UpstreamStream {
 public:
  virtual ~UpstreamStream() = default;
  virtual void cancel() = 0;
  virtual void placement_changed() = 0;
};

using ChannelFactory = std::function<std::shared_ptr<grpc::Channel>(const std::string& address)>;

// Shared: forwarded calls keep it alive until their last callback ran.
class ProxyEngine : public std::enable_shared_from_this<ProxyEngine> {
 public:
  ProxyEngine(ProxyOptions options, ChannelFactory channels, std::shared_ptr<spdlog::logger> logger,
              MetricsRegistry* metrics);
  ~ProxyEngine();
  ProxyEngine(const ProxyEngine&) = delete;
  ProxyEngine& operator=(const ProxyEngine&) = delete;

  // Applies the configured membership and starts the health checker.
  void start();
  // Stops the health checker and the work queue. Idempotent.
  void shutdown();

  absl::Status submit(std::function<void()> work);
  // Runs `work` after `delay` on the engine's timer thread (retry backoff);
  // work still waiting when the engine stops is dropped (destroyed, not run).
  void after(std::chrono::milliseconds delay, std::function<void()> work);
  void count_retries(size_t calls);

  const ProxyOptions& options() const { return options_; }
  Router& router() { return router_; }
  spdlog::logger& logger() { return *logger_; }
  // The pooled connection to `address`, made on first use.
  std::shared_ptr<Connection> connection(const std::string& address);

  // Membership changes from the admin service: log, count, answer the report.
  absl::StatusOr<RemapReport> add_upstream(const std::string& address);
  absl::StatusOr<RemapReport> remove_upstream(const std::string& address);
  absl::StatusOr<RemapReport> drain_upstream(const std::string& address);
  // Logs a remap report (every membership or health change that moved partitions).
  void report(const RemapReport& report);

  // Partition count of `topic` as the upstreams know it (cached); unknown
  // topics count default_partitions (the brokers create them on use).
  uint32_t partitions_of(const std::string& topic);
  void remember_partitions(const std::string& topic, uint32_t partitions);
  void forget_topic(const std::string& topic);

  // Increments when the routable set changes; open Consume streams compare it.
  uint64_t epoch() const { return epoch_.load(); }

  // The upstream serving each of partitions [0, partitions) of `topic`,
  // grouped by upstream address.
  absl::StatusOr<std::map<std::string, std::pair<std::shared_ptr<Upstream>, std::set<uint32_t>>>>
  owners(const std::string& topic, uint32_t partitions);

  // Routable upstreams other than `owners` (addresses) that hold records of
  // `topic`: those that took its writes while they stood in for an owner
  // that was down. Asks each with DescribeTopic (blocks: engine threads only).
  std::vector<std::shared_ptr<Upstream>> holders(const std::string& topic,
                                                 const std::set<std::string>& owners);
  // DescribeTopic of `topic` on `upstream`, within health_timeout (blocks).
  grpc::Status describe_topic(const Upstream& upstream, const std::string& topic,
                              broker::v1::DescribeTopicResponse* response);

  // Upstream streams in flight; untrack() from the stream's last callback.
  // 0 once shutdown() has begun: the stream must not start.
  uint64_t track(std::weak_ptr<UpstreamStream> stream);
  void untrack(uint64_t id);
  size_t tracked_streams();

  // Metrics of one routed call.
  void observe_call(const std::string& upstream, const char* method, grpc::StatusCode code,
                    double seconds);
  // observe_call of a Produce forwarded to `connection`'s upstream, without
  // a label lookup when it succeeded.
  void observe_produce(Connection& connection, grpc::StatusCode code, double seconds);

 private:
  void health_loop(std::stop_token stop);
  void check_all();

  ProxyOptions options_;
  ChannelFactory channels_;
  std::shared_ptr<spdlog::logger> logger_;
  MetricsRegistry* metrics_;
  Router router_;
  WorkQueue queue_;
  std::mutex timer_mutex_;
  std::unique_ptr<StepScheduler> timer_;
  std::mutex mutex_;
  std::map<std::string, std::shared_ptr<Connection>> connections_;
  std::map<std::string, uint32_t> partitions_;
  std::atomic<uint64_t> epoch_{0};
  std::mutex streams_mutex_;
  std::condition_variable streams_ended_;
  std::map<uint64_t, std::weak_ptr<UpstreamStream>> streams_;
  bool stopping_ = false;  // guarded by streams_mutex_
  uint64_t next_stream_ = 0;
  std::jthread health_thread_;
  std::mutex wake_mutex_;
  std::condition_variable_any wake_;
  CounterFamily* routed_ = nullptr;
  CounterFamily* failovers_ = nullptr;
  CounterFamily* retries_ = nullptr;
  CounterFamily* rebalances_ = nullptr;
  CounterFamily* lane_messages_ = nullptr;
  CounterFamily* lane_produces_ = nullptr;
  HistogramFamily* latency_ = nullptr;
  std::atomic<Histogram*> produce_latency_{nullptr};  // latency_ of Produce, once used
  std::unique_ptr<CollectorHandle> collector_;
};

}  // namespace telekern::proxy
