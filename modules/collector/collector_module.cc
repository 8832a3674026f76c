// Registers the collector module: its config (bound to CollectorOptions),
// the engine's lifetime and telekern.collector.v1.Collector.
#include <functional>
#include <optional>
#include <stop_token>

#include "collector_engine.h"
#include "collector_options.h"
#include "collector_service.h"
#include "telekern/configured_module.h"
#include "telekern/strings.h"

namespace telekern::collector {
namespace {

constexpr const char* kDefaultTransport = "telekern://127.0.0.1:7070";

ConfigMap<CollectorOptions> collector_config() {
  using O = CollectorOptions;
  ConfigMap<O> map;
  map.nest("stream.", &O::stream, stream::stream_config_map())
      .key("topic", &O::topic, "telemetry", "Topic the streamer publishes to and collectors read")
      .key("group", &O::group, "collector",
           "Consumer group of the collectors; instances in one group split the partitions")
      .key("instance", &O::instance, "",
           "Member name prefix of this instance's consumers (default: hostname-pid)")
      .key("consumers", &O::consumers, "4",
           "Group members in this instance, each writing the partitions the broker assigns it",
           between<uint32_t>(0, 256))
      .key("batch_size", &O::batch_size, "5000", "Most points in one store write",
           between<uint32_t>(1, 100000))
      .key("batch_age", &O::batch_age, "1s", "Oldest a point waits before its batch is written",
           positive_duration())
      .key("batch_linger", &O::batch_linger, "20ms",
           "A batch is also written once no record arrived for this long (the topic is drained "
           "for now), so the tail of a burst does not wait for batch_age; 0 = only batch_size "
           "and batch_age decide")
      .choice("store", &O::store, "sqlite",
              "Store the collectors write to: sqlite (embedded, no server) or influxdb",
              {{"sqlite", StoreKind::kSqlite}, {"influxdb", StoreKind::kInfluxDb}})
      .key("sqlite.path", &O::sqlite_path, "",
           "SQLite database file (WAL mode); default <data_dir>/collector/telemetry.db")
      .key("influxdb.url", &O::influxdb_url, "http://127.0.0.1:8086",
           "InfluxDB 1.x base URL (the seed's INFLUXDB_URL)")
      .secret("influxdb.token", &O::influxdb_token,
              "InfluxDB credentials as user:password, or a token sent as 'Token <token>' "
              "(the seed's INFLUXDB_TOKEN)")
      .key("influxdb.org", &O::influxdb_org, "",
           "Organisation (the seed's INFLUXDB_ORG); InfluxDB 1.x has none and ignores it")
      .key("influxdb.bucket", &O::influxdb_bucket, "telemetry",
           "database or database/retention_policy (the seed's INFLUXDB_BUCKET)")
      .key("influxdb.measurement", &O::influxdb_measurement, "gpu_telemetry",
           "Measurement holding every metric, with a metric tag")
      .key("influxdb.precision", &O::influxdb_precision, "ms",
           "Timestamp precision of writes: ns, u, ms or s", one_of({"ns", "u", "ms", "s"}))
      .key("influxdb.create_database", &O::influxdb_create_database, "true",
           "CREATE DATABASE at start and when a write finds it missing (needs admin rights "
           "when auth is on); false: writes wait until someone creates it")
      .key("influxdb.timeout", &O::influxdb_timeout, "10s", "Deadline of one HTTP request",
           positive_duration())
      .key("retry.initial", &O::retry_initial, "100ms",
           "First delay before a failed write is retried (exponential, full jitter)",
           positive_duration())
      .key("retry.max", &O::retry_max, "5s", "Longest delay between write retries",
           positive_duration())
      .key("breaker.failures", &O::breaker_failures, "5",
           "Consecutive failed writes that open the circuit breaker (consumption pauses)",
           at_least<uint32_t>(1))
      .key("breaker.open_for", &O::breaker_open_for, "5s",
           "How long an open breaker refuses writes before one trial", positive_duration())
      .key("publish_attempts", &O::publish_attempts, "3",
           "Attempts to publish a chunk of rows before they go to the reject file",
           between<uint32_t>(1, 20))
      .key("publish_backoff", &O::publish_backoff, "100ms",
           "First delay between publish attempts (exponential, full jitter)", positive_duration())
      .key("reject_file", &O::reject_file, "",
           "CSV of rejected rows (source,line,reason,row); default <data_dir>/rejects.csv")
      .key("watch_dir", &O::watch_dir, "",
           "Directory whose new *.csv files are ingested once each (empty = off)")
      .key("watch_interval", &O::watch_interval, "2s", "How often watch_dir is scanned",
           positive_duration())
      .key("watch_replay", &O::watch_replay, "false",
           "Ingest watched files in replay mode (re-stamped to now, paced at replay_rate)")
      .key("replay_rate", &O::replay_rate, "1000", "Rows per second of a replay that names no rate")
      .key("replay_loop", &O::replay_loop, "false",
           "A replay starts over at the end of its file until the module stops")
      .key("worker_threads", &O::worker_threads, "4", "Threads that serve the API's calls",
           between<uint32_t>(1, 64))
      .key("max_pending_requests", &O::max_pending_requests, "256",
           "Calls waiting for a worker thread; more are refused with RESOURCE_EXHAUSTED",
           at_least<uint32_t>(1))
      .rule({"replay_rate"},
            [](const O& options) -> absl::Status {
              if (options.replay_rate > 0) return absl::OkStatus();
              return absl::InvalidArgumentError(
                  str_cat("replay_rate=", options.replay_rate, " must be above 0 rows/s"));
            })
      .rule({"retry.initial", "retry.max"}, [](const O& options) -> absl::Status {
        if (options.retry_initial <= options.retry_max) return absl::OkStatus();
        return absl::InvalidArgumentError(
            str_cat("retry.initial=", options.retry_initial.count(),
                    "ms exceeds retry.max=", options.retry_max.count(), "ms; lower retry.initial"));
      });
  return map;
}

class CollectorModule final : public ConfiguredModule<CollectorOptions> {
 public:
  CollectorModule()
      : ConfiguredModule({"collector", "1.0.0",
                          "GPU telemetry: DCGM CSV streamed through the broker into InfluxDB by a "
                          "group of collectors, with its query API"},
                         collector_config()) {}

  absl::Status start(ModuleContext& context, CollectorOptions options) override {
    // The default transport means "the broker of this daemon": in process
    // when it is loaded here, else the kernel's configured remote.
    if (options.stream.transport == kDefaultTransport && !options.stream.channel)
      options.stream.channel = context.channel("telekern.broker.v1.Broker");
    engine_ = std::make_shared<CollectorEngine>(std::move(options), context.data_dir(),
                                                context.logger(), &context.metrics());
    auto started = engine_->start();
    if (!started.ok()) return started;
    service_.serve(engine_, context.stop_token());
    return absl::OkStatus();
  }

  std::vector<ServiceBinding> services() override {
    return {bind_service<v1::Collector>(service_)};
  }

  ModuleHealth health() const override {
    auto engine = engine_;
    if (!engine) return {HealthState::kNotServing, "not started"};
    auto reason = engine->degraded_reason();
    if (!reason.empty()) return {HealthState::kDegraded, reason};
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
  CollectorService service_;
  std::shared_ptr<CollectorEngine> engine_;
};

}  // namespace
}  // namespace telekern::collector

TELEKERN_MODULE(telekern::collector::CollectorModule)
