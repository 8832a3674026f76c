// Registers the proxy module: its config (bound to ProxyOptions), the
// engine's lifetime, the Broker service it serves by forwarding and its admin
// service.
#include <functional>
#include <optional>
#include <stop_token>

#include "proxy_engine.h"
#include "proxy_options.h"
#include "proxy_service.h"
#include "telekern/configured_module.h"
#include "telekern/strings.h"

namespace telekern::proxy {
namespace {

ConfigMap<ProxyOptions> proxy_config() {
  using O = ProxyOptions;
  ConfigMap<O> map;
  map.key("upstreams", &O::upstreams, "[]",
          "Upstream brokers (host:port of telekernds serving telekern.broker.v1.Broker)")
      .key("broker_service", &O::broker_service, "",
           "StatefulSet-style upstream names <broker_service>-<i>.<broker_service>:<broker_port> "
           "(the seed's BROKER_SERVICE); DNS is re-resolved by each upstream's channel")
      .key("broker_count", &O::broker_count, "0",
           "How many <broker_service>-<i> names, i = 0..count-1 (the seed's BROKER_COUNT)")
      .key("broker_port", &O::broker_port, "7070", "Port of the broker_service names",
           between<uint32_t>(1, 65535))
      .choice("algorithm", &O::algorithm, "ring",
              "Placement: ring (consistent hashing with virtual nodes) or maglev (lookup table)",
              {{"ring", Algorithm::kRing}, {"maglev", Algorithm::kMaglev}})
      .key("virtual_nodes", &O::virtual_nodes, "150",
           "Ring points per upstream (the seed's VIRTUAL_NODES)", between<uint32_t>(1, 10000))
      .key("ring_probes", &O::ring_probes, "4",
           "Lookups per key on the ring; the nearest point clockwise of any wins (multi-probe "
           "consistent hashing: 4 keeps max/mean ownership under 1.10 at 150 virtual nodes; 1 is "
           "the classic ring, the first point clockwise of the hash)",
           between<uint32_t>(1, 64))
      .key("max_partitions", &O::max_partitions, "64",
           "Most partitions a topic may have through the proxy (the seed's MAX_PARTITIONS)",
           at_least<uint32_t>(1))
      .key("default_partitions", &O::default_partitions, "4",
           "Partitions assumed for a topic no upstream knows yet (match the brokers' "
           "default_partitions)",
           at_least<uint32_t>(1))
      .key("health_interval", &O::health_interval, "2s",
           "How often every upstream gets a grpc.health.v1 check", positive_duration())
      .key("health_timeout", &O::health_timeout, "1s", "Deadline of one health check",
           positive_duration())
      .key("unhealthy_threshold", &O::unhealthy_threshold, "3",
           "Failed checks in a row before an upstream's partitions fail over",
           at_least<uint32_t>(1))
      .key("healthy_threshold", &O::healthy_threshold, "2",
           "Passed checks in a row before a failed upstream counts as healthy again",
           at_least<uint32_t>(1))
      .key("health_service", &O::health_service, "telekern.broker.v1.Broker",
           "Service name asked in health checks (empty = the whole server)")
      .choice("failback", &O::failback, "immediate",
              "When a recovered upstream takes its partitions back: immediate or after_drain "
              "(once calls on the fallback owners drained, at most failback_timeout)",
              {{"immediate", Failback::kImmediate}, {"after_drain", Failback::kAfterDrain}})
      .key("failback_timeout", &O::failback_timeout, "30s",
           "after_drain: longest wait before a recovered upstream takes its partitions back",
           positive_duration())
      .key("call_timeout", &O::call_timeout, "30s",
           "Deadline of a forwarded unary call when the client gives a longer one or none",
           positive_duration())
      .key("max_in_flight", &O::max_in_flight, "1000",
           "Calls in flight per upstream; more are refused with RESOURCE_EXHAUSTED",
           at_least<uint32_t>(1))
      .key("produce_streams", &O::produce_streams, "2",
           "ProduceStream calls per upstream that carry produces to an explicit partition "
           "(a stream message costs both ends far less than a unary call); 0 = a unary call each",
           between<uint32_t>(0, 64))
      .key("produce_stream_window", &O::produce_stream_window, "2",
           "Messages a produce stream keeps unanswered by a broker that takes batches; produces "
           "arriving meanwhile wait and go together in the next message (fewer, larger messages "
           "under load); 0 = no batching, every produce written at once in a message of its own",
           between<uint32_t>(0, 1024))
      .key("retry_attempts", &O::retry_attempts, "3",
           "Attempts of an idempotent call (every Broker call but Produce and Consume) per "
           "upstream answering UNAVAILABLE (1 = no retry)",
           between<uint32_t>(1, 10))
      .key("retry_backoff", &O::retry_backoff, "100ms",
           "First retry delay (exponential, full jitter, at most 2s)", positive_duration())
      .key("worker_threads", &O::worker_threads, "2", "Proxy threads that route calls",
           at_least<uint32_t>(1))
      .key("max_pending_requests", &O::max_pending_requests, "2000",
           "Calls waiting for a proxy thread; more are refused with RESOURCE_EXHAUSTED",
           at_least<uint32_t>(1))
      .rule({"broker_count", "broker_service"},
            [](const O& options) -> absl::Status {
              if (options.broker_count == 0 || !options.broker_service.empty())
                return absl::OkStatus();
              return absl::InvalidArgumentError(
                  str_cat("broker_count=", options.broker_count,
                          " needs broker_service (the name the upstreams share, e.g. msg-queue)"));
            })
      .rule({"default_partitions", "max_partitions"},
            [](const O& options) -> absl::Status {
              if (options.default_partitions <= options.max_partitions) return absl::OkStatus();
              return absl::InvalidArgumentError(str_cat(
                  "default_partitions=", options.default_partitions, " exceeds max_partitions=",
                  options.max_partitions, "; raise max_partitions or lower it"));
            })
      .rule({"health_timeout", "health_interval"},
            [](const O& options) -> absl::Status {
              if (options.health_timeout <= options.health_interval) return absl::OkStatus();
              return absl::InvalidArgumentError(
                  str_cat("health_timeout=", options.health_timeout.count(),
                          "ms exceeds health_interval=", options.health_interval.count(),
                          "ms; checks would overlap: lower health_timeout"));
            })
      .rule({"upstreams"}, [](const O& options) -> absl::Status {
        for (const auto& address : options.upstreams) {
          if (address.find(':') == std::string::npos)
            return absl::InvalidArgumentError(
                str_cat("upstream '", address, "' is not host:port; e.g. broker-0.local:7070"));
        }
        return absl::OkStatus();
      });
  return map;
}

class ProxyModule final : public ConfiguredModule<ProxyOptions> {
 public:
  ProxyModule()
      : ConfiguredModule({"proxy", "1.0.0",
                          "consistent-hashing router in front of several brokers: serves "
                          "telekern.broker.v1.Broker by forwarding each partition to its owner, "
                          "with health checks, failover and failback"},
                         proxy_config()) {}

  absl::Status start(ModuleContext& context, ProxyOptions options) override {
    ChannelFactory channels = [&context](const std::string& address) {
      return context.channel_to(address);
    };
    engine_ = std::make_shared<ProxyEngine>(std::move(options), std::move(channels),
                                            context.logger(), &context.metrics());
    engine_->start();
    broker_.attach(engine_);
    admin_.attach(engine_);
    // Consume streams never end by themselves: end them when the kernel asks to stop.
    stop_watch_.emplace(context.stop_token(), [this] { broker_.end_streams(); });
    return absl::OkStatus();
  }

  std::vector<ServiceBinding> services() override {
    return {bind_service<broker::v1::Broker>(broker_), bind_service<v1::Proxy>(admin_)};
  }

  ModuleHealth health() const override {
    auto engine = engine_;
    if (!engine) return {HealthState::kNotServing, "not started"};
    size_t members = engine->router().member_count();
    size_t routable = engine->router().routable_count();
    if (members == 0) return {HealthState::kDegraded, "no upstreams"};
    if (routable == 0)
      return {HealthState::kDegraded,
              str_cat("no healthy upstream of ", members, "; check the brokers")};
    if (routable < members)
      return {HealthState::kDegraded,
              str_cat(members - routable, " of ", members, " upstreams unhealthy or drained")};
    return {};
  }

  void stop() override {
    stop_watch_.reset();
    broker_.detach();
    admin_.detach();
    if (engine_) {
      engine_->shutdown();
      engine_.reset();
    }
  }

 private:
  ProxyBrokerService broker_;
  ProxyAdminService admin_;
  std::shared_ptr<ProxyEngine> engine_;
  std::optional<std::stop_callback<std::function<void()>>> stop_watch_;
};

}  // namespace
}  // namespace telekern::proxy

TELEKERN_MODULE(telekern::proxy::ProxyModule)
