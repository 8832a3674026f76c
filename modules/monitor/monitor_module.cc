// Registers the monitor module: its config (bound to MonitorOptions), the
// backend engine with its store and consumer, the optional host agent, and
// the Monitor service.
#include <absl/strings/str_cat.h>

#include <functional>
#include <optional>
#include <stop_token>

#include "agent.h"
#include "monitor_engine.h"
#include "monitor_options.h"
#include "monitor_service.h"
#include "telekern/configured_module.h"
#include "telekern/strings.h"

namespace telekern::monitor {
namespace {

constexpr const char* kDefaultTransport = "telekern://127.0.0.1:7070";

ConfigMap<MonitorOptions> monitor_config() {
  using O = MonitorOptions;
  ConfigMap<O> map;
  map.key("agent.enabled", &O::agent_enabled, "false",
          "Sample this host (CPU, memory, disk, network, load) and publish to `topic`")
      .key("agent.interval", &O::agent_interval, "5s",
           "Time between samples (the seed's METRIC_INTERVAL)", positive_duration())
      .key("agent.node_id", &O::node_id, "", "Node id in every sample; empty = host name")
      .key("agent.node_name", &O::node_name, "", "Human-readable node name; empty = node_id")
      .key("agent.buffer", &O::agent_buffer, "720",
           "Samples kept while publishing fails (oldest dropped first)", at_least<uint32_t>(1))
      .key("agent.proc_root", &O::proc_root, "/proc", "Where procfs is mounted")
      .key("agent.sys_root", &O::sys_root, "/sys", "Where sysfs is mounted")
      .key("backend.enabled", &O::backend_enabled, "true",
           "Consume `topic`, store samples, evaluate thresholds and serve the Monitor API")
      .key("topic", &O::topic, "metrics", "Topic agents publish to and the backend consumes")
      .key("backend.group", &O::group, "monitor", "Consumer group of the backend")
      .key("backend.sqlite_path", &O::sqlite_path, "monitor.db",
           "SQLite file (relative to the module's data dir) when no postgres_url is set")
      .secret("backend.postgres_url", &O::postgres_url,
              "PostgreSQL connection string (libpq, e.g. postgresql://user:pw@host/db); set = "
              "PostgreSQL instead of SQLite")
      .key("backend.retention", &O::retention, "7d",
           "How long samples are kept (0 = forever)")
      .key("backend.stale_intervals", &O::stale_intervals, "3",
           "Missed intervals before a node is stale", at_least<uint32_t>(1))
      .key("backend.down_after", &O::down_after, "60s",
           "Silence after which a node is down", positive_duration())
      .key("backend.evaluation_interval", &O::evaluation_interval, "250ms",
           "How often liveness and pending `for` breaches are checked", positive_duration())
      .key("backend.node_status_alerts", &O::node_status_alerts, "true",
           "Alert when a node turns stale (warning) or down (critical)")
      .key("backend.max_batch", &O::max_batch, "1000", "Records consumed and stored per batch",
           between<uint32_t>(1, 100000))
      .key("backend.worker_threads", &O::worker_threads, "2", "Threads serving API calls",
           at_least<uint32_t>(1))
      .nest("stream.", &O::stream, stream::stream_config_map())
      .rule({"backend.down_after", "backend.stale_intervals", "agent.interval"},
            [](const O& options) -> absl::Status {
              auto stale = options.agent_interval * options.stale_intervals;
              if (options.down_after > stale) return absl::OkStatus();
              return absl::InvalidArgumentError(str_cat(
                  "down_after=", options.down_after.count(), "ms must exceed stale_intervals x "
                  "agent.interval = ", stale.count(), "ms; raise down_after"));
            });
  return map;
}

class MonitorModule final : public ConfiguredModule<MonitorOptions> {
 public:
  MonitorModule()
      : ConfiguredModule({"monitor", "1.0.0",
                          "host metric agents, per-node thresholds, alerts with acknowledgement, "
                          "Prometheus and CSV export"},
                         monitor_config()) {}

  absl::Status start(ModuleContext& context, MonitorOptions options) override {
    logger_ = context.logger();
    stream::StreamConfig stream_config = options.stream;
    if (stream_config.transport == kDefaultTransport) {
      // The default means "the broker of this daemon": in process when loaded here.
      if (auto channel = context.channel("telekern.broker.v1.Broker")) stream_config.channel = channel;
    }
    if (options.backend_enabled) {
      std::unique_ptr<MonitorStore> store;
      absl::StatusOr<std::unique_ptr<MonitorStore>> opened =
          options.postgres_url.empty()
              ? open_sqlite_store((context.data_dir() / options.sqlite_path).string())
              : open_postgres_store(options.postgres_url);
      if (!opened.ok()) {
        set_problem(str_cat("store: ", std::string(opened.status().message())));
        logger_->error("monitor backend not started: {}", std::string(opened.status().message()));
      } else {
        engine_ = std::make_shared<MonitorEngine>(options, std::move(*opened), logger_,
                                                  &context.metrics());
        if (auto status = engine_->load(); !status.ok()) return status;
        auto password = engine_->ensure_admin();
        if (password.ok() && !password->empty())
          logger_->warn("created monitor user 'admin' with password '{}' (shown once; only its "
                        "hash is stored)", *password);
        stream::ConsumerOptions consumer_options{options.group, {options.topic},
                                                 stream::StartFrom::kEarliest};
        auto consumer = stream::make_consumer(stream_config, consumer_options);
        if (!consumer.ok()) {
          set_problem(str_cat("consumer: ", std::string(consumer.status().message())));
          engine_->start(nullptr);
        } else {
          engine_->start(std::move(*consumer));
        }
        service_.attach(engine_, [&context](const grpc::ServerContextBase& call) {
          return context.caller(call);
        });
      }
    }
    if (options.agent_enabled) {
      agent_ = std::make_unique<Agent>(
          options, [stream_config] { return stream::make_producer(stream_config); }, logger_,
          context.metrics());
      agent_->start();
    }
    stop_watch_.emplace(context.stop_token(), [this] { service_.end_streams(); });
    return absl::OkStatus();
  }

  std::vector<ServiceBinding> services() override {
    return {bind_service<v1::Monitor>(service_)};
  }

  ModuleHealth health() const override {
    std::string problem;
    {
      std::lock_guard lock(mutex_);
      problem = problem_;
    }
    if (!problem.empty()) return {HealthState::kDegraded, problem};
    if (engine_) {
      if (auto error = engine_->ingest_error(); !error.empty())
        return {HealthState::kDegraded, error};
    }
    if (agent_) {
      if (auto error = agent_->last_error(); !error.empty())
        return {HealthState::kDegraded, "agent: " + error};
    }
    return {};
  }

  void stop() override {
    stop_watch_.reset();
    if (agent_) {
      agent_->stop();
      agent_.reset();
    }
    service_.detach();
    if (engine_) {
      engine_->shutdown();
      engine_.reset();
    }
  }

 private:
  void set_problem(std::string problem) {
    std::lock_guard lock(mutex_);
    problem_ = std::move(problem);
  }

  MonitorService service_;
  std::shared_ptr<MonitorEngine> engine_;
  std::unique_ptr<Agent> agent_;
  std::shared_ptr<spdlog::logger> logger_;
  mutable std::mutex mutex_;
  std::string problem_;
  std::optional<std::stop_callback<std::function<void()>>> stop_watch_;
};

}  // namespace
}  // namespace telekern::monitor

TELEKERN_MODULE(telekern::monitor::MonitorModule)
