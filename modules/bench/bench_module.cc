// Registers the bench module: its config (bound to BenchOptions), the
// engine's lifetime and the Bench service.
#include <functional>
#include <optional>
#include <stop_token>

#include "bench_engine.h"
#include "bench_service.h"
#include "health.h"
#include "telekern/configured_module.h"
#include "telekern/strings.h"

namespace telekern::bench {
namespace {

ConfigMap<BenchOptions> bench_config() {
  using O = BenchOptions;
  ConfigMap<O> map;
  map.key("results_dir", &O::results_dir, "",
          "Where runs are stored (results/<exp-id>/...); empty = <data_dir>/bench/results")
      .key("workloads_dir", &O::workloads_dir, "",
           "Where relative workload, driver and payloadFile paths are looked up")
      .key("default_driver", &O::default_driver, "telekern",
           "Driver when a run names none: telekern (this daemon's broker), sink, "
           "telekern://H:P, kafka://H:P, redis://H:P, nats://H:P or a driver YAML file")
      .key("window", &O::window, "10s", "Statistics window of a run (OMB: 10s)",
           positive_duration())
      .key("health_interval", &O::health_interval, "30s",
           "Continuous health snapshot interval (at least 1s)",
           FieldCheck<std::chrono::milliseconds>([](const std::chrono::milliseconds& value) {
             if (value >= std::chrono::seconds(1)) return absl::OkStatus();
             return absl::InvalidArgumentError("must be at least 1s");
           }))
      .key("health_targets", &O::health_targets, "[self]",
           "Health targets: Prometheus endpoints (http://H:P/metrics), pid:N, self")
      .key("max_publish_delay", &O::max_publish_delay, "100ms",
           "A run whose p99 publish delay (behind schedule) exceeds this is flagged invalid",
           positive_duration())
      .key("report", &O::report, "true", "Render the HTML report when a run ends")
      .key("regression_threshold", &O::regression_threshold, "0.1",
           "Compare: a figure worse than this fraction of the baseline is a regression",
           between<double>(0.0, 10.0))
      .key("max_concurrent_runs", &O::max_concurrent_runs, "1",
           "Runs at once; more are refused with RESOURCE_EXHAUSTED", between<uint32_t>(1, 16))
      .key("worker_threads", &O::worker_threads, "2", "Threads serving list/get/report calls",
           at_least<uint32_t>(1))
      .key("max_pending_requests", &O::max_pending_requests, "64",
           "Calls waiting for a worker thread; more are refused with RESOURCE_EXHAUSTED",
           at_least<uint32_t>(1))
      .rule({"health_targets"},
            [](const O& options) -> absl::Status {
              for (const auto& target : options.health_targets) {
                if (auto status = parse_health_target(target); !status.ok()) return status.status();
              }
              return absl::OkStatus();
            })
      .rule({"default_driver"}, [](const O& options) -> absl::Status {
        if (options.default_driver.ends_with(".yaml") || options.default_driver.ends_with(".yml"))
          return absl::OkStatus();
        return parse_driver(options.default_driver).status();
      });
  return map;
}

class BenchModule final : public ConfiguredModule<BenchOptions> {
 public:
  BenchModule()
      : ConfiguredModule({"bench", "1.0.0",
                          "messaging benchmarks (OpenMessaging Benchmark workloads and results) "
                          "with health snapshots and a self-contained interactive HTML report"},
                         bench_config()) {}

  absl::Status start(ModuleContext& context, BenchOptions options) override {
    DriverEnvironment environment;
    environment.broker_channel = context.channel("telekern.broker.v1.Broker");
    engine_ = std::make_shared<BenchEngine>(std::move(options), context.data_dir(),
                                            std::move(environment), context.logger());
    // Running benchmarks end when the kernel asks the module to stop.
    service_.serve(engine_, context.stop_token());
    return absl::OkStatus();
  }

  std::vector<ServiceBinding> services() override { return {bind_service<v1::Bench>(service_)}; }

  ModuleHealth health() const override {
    auto engine = engine_;
    if (!engine) return {HealthState::kNotServing, "not started"};
    return {};
  }

  void stop() override {
    service_.withdraw();
    if (engine_) {
      engine_->shutdown();
      engine_.reset();
    }
  }

 private:
  BenchService service_;
  std::shared_ptr<BenchEngine> engine_;
};

}  // namespace
}  // namespace telekern::bench

TELEKERN_MODULE(telekern::bench::BenchModule)
