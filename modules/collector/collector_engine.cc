#include "collector_engine.h"

#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <condition_variable>
#include <fstream>
#include <set>

#include "influx_store.h"
#include "sqlite_store.h"
#include "telekern/retry.h"
#include "telekern/sleep.h"
#include "telekern/strings.h"

namespace telekern::collector {
namespace {

std::string default_instance() {
  char host[256] = {0};
  gethostname(host, sizeof host - 1);
  return str_cat(host, "-", getpid());
}

}  // namespace

absl::StatusOr<double> parse_rate(const std::string& text) {
  if (text.empty()) return 0.0;
  std::string number = text;
  double per = 1;
  auto slash = text.find('/');
  if (slash != std::string::npos) {
    number = text.substr(0, slash);
    std::string unit = text.substr(slash + 1);
    if (unit == "s")
      per = 1;
    else if (unit == "m")
      per = 60;
    else if (unit == "h")
      per = 3600;
    else
      return absl::InvalidArgumentError(
          str_cat("rate '", text, "': unit '", unit, "' is not s, m or h (e.g. 1000/s)"));
  }
  double value = 0;
  auto [end, error] = std::from_chars(number.data(), number.data() + number.size(), value);
  if (error != std::errc() || end != number.data() + number.size() || value < 0)
    return absl::InvalidArgumentError(
        str_cat("rate '", text, "' is not rows per second (e.g. 1000/s, 600/m, 50)"));
  return value / per;
}

CollectorEngine::CollectorEngine(CollectorOptions options, std::filesystem::path data_dir,
                                 std::shared_ptr<spdlog::logger> log, MetricsRegistry* metrics)
    : options_(std::move(options)),
      data_dir_(std::move(data_dir)),
      log_(std::move(log)),
      metrics_(metrics),
      rejects_(options_.reject_file.empty() ? (data_dir_ / "rejects.csv").string()
                                            : options_.reject_file) {
  if (options_.instance.empty()) options_.instance = default_instance();
  rows_ingested_ = &metrics_
                        ->counter("telekern_collector_rows_ingested_total",
                                  "CSV rows and points published to the telemetry topic")
                        .with();
  rows_rejected_ = &metrics_->counter("telekern_collector_rows_rejected_total",
                                      "Rows not published or not stored, by reason", {"reason"});
  points_written_ =
      &metrics_->counter("telekern_collector_points_written_total", "Points the store accepted")
           .with();
  write_errors_ = &metrics_
                       ->counter("telekern_collector_write_errors_total",
                                 "Batches the store refused for good (bad data)")
                       .with();
  ingester_ = std::make_unique<CsvIngester>(
      IngestSettings{options_.topic, options_.publish_attempts, options_.publish_backoff},
      [this]() { return stream::make_producer(options_.stream); }, rejects_,
      IngestMetrics{rows_ingested_, rows_rejected_}, log_);
}

CollectorEngine::~CollectorEngine() { shutdown(); }

absl::Status CollectorEngine::start() {
  if (options_.store == StoreKind::kSqlite) {
    auto path =
        options_.sqlite_path.empty() ? (data_dir_ / "telemetry.db").string() : options_.sqlite_path;
    auto store = SqliteStore::open(path);
    if (!store.ok()) return store.status();
    store_ = std::move(*store);
  } else {
    InfluxOptions influx;
    influx.url = options_.influxdb_url;
    influx.token = options_.influxdb_token;
    influx.org = options_.influxdb_org;
    influx.bucket = options_.influxdb_bucket;
    influx.measurement = options_.influxdb_measurement;
    influx.precision = options_.influxdb_precision;
    influx.create_database = options_.influxdb_create_database;
    influx.http.request_timeout = options_.influxdb_timeout;
    influx.http.max_idle_connections = options_.consumers + options_.worker_threads;
    influx.http.backoff = {options_.retry_initial, options_.retry_max, 2.0, 0};
    influx.http.breaker_failures = static_cast<int>(options_.breaker_failures);
    influx.http.breaker_open_for = options_.breaker_open_for;
    auto store = InfluxStore::create(std::move(influx));
    if (!store.ok()) return store.status();
    store_ = std::move(*store);
  }

  auto& histogram_batch =
      metrics_->histogram("telekern_collector_batch_size", "Points per store write", {},
                          {1, 10, 100, 500, 1000, 2000, 5000, 10000, 50000});
  auto& histogram_duration = metrics_->histogram("telekern_collector_write_duration_seconds",
                                                 "Time to write one batch, retries included");
  WorkerMetrics worker_metrics{points_written_,
                               write_errors_,
                               &metrics_
                                    ->counter("telemetry_data_points_total",
                                              "Telemetry data points processed (the seed's name)")
                                    .with(),
                               rows_rejected_,
                               &histogram_batch.with(),
                               &histogram_duration.with()};
  collector_handle_ = metrics_->add_collector([this] { return collect(); });

  work_ = std::make_unique<WorkQueue>(options_.worker_threads, options_.max_pending_requests);
  threads_.emplace_back([this](std::stop_token stop) { check_store(stop); });
  for (uint32_t i = 0; i < options_.consumers; ++i) {
    WorkerSettings settings{
        options_.topic,      options_.group,     str_cat(options_.instance, "-", i),
        options_.batch_size, options_.batch_age, options_.batch_linger,
        options_.stream};
    workers_.push_back(
        std::make_unique<CollectorWorker>(settings, *store_, rejects_, worker_metrics, log_));
  }
  for (auto& worker : workers_)
    threads_.emplace_back([worker = worker.get()](std::stop_token stop) { worker->run(stop); });
  if (!options_.watch_dir.empty())
    threads_.emplace_back([this](std::stop_token stop) { watch_directory(stop); });
  if (!workers_.empty()) threads_.emplace_back([this](std::stop_token stop) { follow_lag(stop); });
  watch_tap_ = std::make_unique<WatchTap>(
      WatchTapSettings{options_.topic, str_cat(options_.group, "-watch-", options_.instance),
                       options_.stream},
      feed_, log_);
  threads_.emplace_back([this](std::stop_token stop) { watch_tap_->run(stop); });
  log_->info("collector: {} consumers in group '{}' on topic '{}', store {}", options_.consumers,
             options_.group, options_.topic, store_->describe());
  return absl::OkStatus();
}

void CollectorEngine::shutdown() {
  std::vector<std::jthread> threads;
  {
    std::lock_guard lock(mutex_);
    if (stopped_) return;
    stopped_ = true;
    threads = std::move(threads_);
  }
  for (auto& thread : threads) thread.request_stop();
  threads.clear();  // joins
  if (work_) work_->stop();
  collector_handle_.reset();
}

absl::Status CollectorEngine::submit(std::function<void()> work) {
  if (!work_ || !work_->try_submit(std::move(work)))
    return absl::ResourceExhaustedError(str_cat("collector is busy (",
                                                options_.max_pending_requests,
                                                " requests queued) or stopping; retry"));
  return absl::OkStatus();
}

void CollectorEngine::check_store(std::stop_token stop) {
  Backoff backoff({std::chrono::milliseconds(200), std::chrono::seconds(5), 2.0, 0});
  int attempt = 0;
  while (!stop.stop_requested()) {
    auto prepared = store_->prepare();
    {
      std::lock_guard lock(mutex_);
      store_ready_ = prepared.ok();
      store_error_ = prepared.ok() ? "" : std::string(prepared.message());
    }
    if (prepared.ok()) {
      if (attempt > 0) log_->info("store {} is reachable", store_->describe());
      attempt = 0;
      if (!sleep_for(std::chrono::seconds(5), stop)) return;
      continue;
    }
    if (attempt == 0)
      log_->warn("store {} unreachable: {}; collectors hold their batches and retry",
                 store_->describe(), prepared.ToString());
    if (!sleep_for(backoff.delay(++attempt), stop)) return;
  }
}

void CollectorEngine::follow_lag(std::stop_token stop) {
  constexpr auto kLagInterval = std::chrono::seconds(2);
  do {
    std::shared_ptr<stream::Consumer> consumer;
    for (const auto& worker : workers_)
      if ((consumer = worker->consumer())) break;
    absl::StatusOr<std::vector<stream::PartitionLag>> lags =
        consumer ? consumer->lag(std::chrono::seconds(5))
                 : absl::UnavailableError("no collector is connected to the stream yet");
    std::lock_guard lock(mutex_);
    if (lags.ok()) {
      lags_ = std::move(*lags);
      lag_error_.clear();
    } else {
      lag_error_ = std::string(lags.status().message());
    }
  } while (sleep_for(kLagInterval, stop));
}

std::string CollectorEngine::degraded_reason() const {
  std::lock_guard lock(mutex_);
  if (store_ready_) return {};
  return str_cat("store ", store_->describe(), " unreachable (", store_error_,
                 "); start InfluxDB or set modules.collector.influxdb.url");
}

absl::StatusOr<IngestOutcome> CollectorEngine::ingest(const IngestRequest& request) {
  IngestRun run;
  if (request.path.empty() && request.csv.empty())
    return absl::InvalidArgumentError("give a file path or inline csv rows");
  run.from_file = request.csv.empty();
  run.source = run.from_file ? request.path : "inline";
  run.text = request.csv;
  run.replay = request.replay;
  run.rate = request.rate > 0 ? request.rate : (request.replay ? options_.replay_rate : 0);
  run.loop = request.loop || (request.replay && options_.replay_loop);
  IngestOutcome outcome;
  outcome.reject_file = rejects_.path();
  if (run.loop) {
    if (run.from_file && !std::filesystem::exists(run.source))
      return absl::NotFoundError(str_cat("cannot read '", run.source, "': no such file"));
    std::lock_guard lock(mutex_);
    if (stopped_) return absl::UnavailableError("collector is stopping");
    threads_.emplace_back([this, run](std::stop_token stop) {
      auto result = ingester_->run(run, stop);
      if (!result.ok())
        log_->error("replay of {} ended: {}", run.source, result.status().ToString());
    });
    outcome.background = true;
    return outcome;
  }
  std::stop_source never;
  auto result = ingester_->run(run, never.get_token());
  if (!result.ok()) return result.status();
  outcome.result = std::move(*result);
  return outcome;
}

absl::StatusOr<IngestOutcome> CollectorEngine::ingest_lines(const std::string& source, bool replay,
                                                            double rate, LineReader& lines,
                                                            std::stop_token stop) {
  IngestRun run;
  run.source = source.empty() ? "stream" : source;
  run.from_file = false;
  run.replay = replay;
  run.rate = rate > 0 ? rate : (replay ? options_.replay_rate : 0);
  auto result = ingester_->run_lines(run, lines, stop);
  if (!result.ok()) return result.status();
  IngestOutcome outcome;
  outcome.reject_file = rejects_.path();
  outcome.result = std::move(*result);
  return outcome;
}

absl::StatusOr<std::string> CollectorEngine::submit_point(const TelemetryPoint& point) {
  return ingester_->publish_one(point);
}

absl::StatusOr<std::vector<GpuInfo>> CollectorEngine::list_gpus(const std::string& host) {
  return store_->list_gpus(host);
}

absl::StatusOr<TelemetryPage> CollectorEngine::query(const TelemetryQuery& query) {
  return store_->query(query);
}

absl::StatusOr<std::vector<HostInfo>> CollectorEngine::list_hosts() {
  auto gpus = store_->list_gpus("");
  if (!gpus.ok()) return gpus.status();
  std::map<std::string, HostInfo> hosts;
  for (const auto& gpu : *gpus) {
    auto& host = hosts[gpu.hostname];
    host.hostname = gpu.hostname;
    ++host.gpus;
    host.last_seen = std::max(host.last_seen, gpu.last_seen);
  }
  std::vector<HostInfo> out;
  for (auto& [name, host] : hosts) out.push_back(std::move(host));
  return out;
}

absl::StatusOr<std::vector<std::string>> CollectorEngine::list_namespaces() {
  return store_->list_namespaces();
}

uint64_t CollectorEngine::rows_waiting() const {
  uint64_t total = 0;
  for (const auto& worker : workers_) total += worker->waiting();
  return total;
}

CollectorStatus CollectorEngine::status() const {
  CollectorStatus status;
  status.store = store_ ? store_->describe() : "";
  {
    std::lock_guard lock(mutex_);
    status.store_reachable = store_ready_;
    status.store_error = store_error_;
    status.lags = lags_;
    status.lag_error = lag_error_;
  }
  for (const auto& lag : status.lags) status.consumer_lag += static_cast<uint64_t>(lag.lag());
  status.breaker = store_ ? store_->breaker_state() : 0;
  status.retries = store_ ? store_->retries() : 0;
  status.rows_waiting = rows_waiting();
  status.rows_ingested = static_cast<uint64_t>(rows_ingested_->value());
  double rejected = 0;
  rows_rejected_->for_each(
      [&](const auto&, const Counter& counter) { rejected += counter.value(); });
  status.rows_rejected = static_cast<uint64_t>(rejected);
  status.points_written = static_cast<uint64_t>(points_written_->value());
  status.write_errors = static_cast<uint64_t>(write_errors_->value());
  status.consumers = options_.consumers;
  status.topic = options_.topic;
  status.group = options_.group;
  return status;
}

std::vector<CollectedFamily> CollectorEngine::collect() const {
  auto status = this->status();
  CollectedFamily lag{"telekern_collector_consumer_lag",
                      "Records on the telemetry topic the collector group has not written and "
                      "committed yet, by partition",
                      "gauge",
                      {}};
  for (const auto& partition : status.lags)
    lag.samples.push_back({lag.name,
                           {{"partition", std::to_string(partition.partition)}},
                           static_cast<double>(partition.lag())});
  return {
      std::move(lag),
      {"telekern_collector_breaker_state",
       "Store circuit breaker: 0 closed, 1 open, 2 half-open",
       "gauge",
       {{"telekern_collector_breaker_state", {}, static_cast<double>(status.breaker)}}},
      {"telekern_collector_write_retries_total",
       "Store write attempts retried (the retry budget spent)",
       "counter",
       {{"telekern_collector_write_retries_total", {}, static_cast<double>(status.retries)}}},
      {"telekern_collector_rows_waiting",
       "Points consumed and not yet written (the collectors' backlog)",
       "gauge",
       {{"telekern_collector_rows_waiting", {}, static_cast<double>(status.rows_waiting)}}},
      {"telekern_collector_store_up",
       "1 when the store answered its last check",
       "gauge",
       {{"telekern_collector_store_up", {}, status.store_reachable ? 1.0 : 0.0}}},
  };
}

void CollectorEngine::watch_directory(std::stop_token stop) {
  // Files already ingested (name size mtime), kept across restarts.
  auto state_path = data_dir_ / "watched.txt";
  std::set<std::string> done;
  {
    std::ifstream in(state_path);
    for (std::string line; std::getline(in, line);) done.insert(line);
  }
  std::map<std::string, std::string> seen;  // path -> signature at the previous scan
  do {
    std::error_code error;
    std::filesystem::directory_iterator it(options_.watch_dir, error);
    if (error) {
      log_->warn("watch_dir '{}': {}", options_.watch_dir, error.message());
      continue;
    }
    std::vector<std::filesystem::path> files;
    for (const auto& entry : it)
      if (entry.is_regular_file() && entry.path().extension() == ".csv") files.push_back(entry);
    std::sort(files.begin(), files.end());
    for (const auto& file : files) {
      auto size = std::filesystem::file_size(file, error);
      auto mtime = std::filesystem::last_write_time(file, error).time_since_epoch().count();
      std::string signature = str_cat(file.string(), " ", size, " ", mtime);
      if (done.count(signature)) continue;
      // Take a file once it stopped growing between two scans.
      if (seen[file.string()] != signature) {
        seen[file.string()] = signature;
        continue;
      }
      IngestRun run{file.string(),
                    "",
                    true,
                    options_.watch_replay,
                    options_.watch_replay ? options_.replay_rate : 0,
                    false};
      auto result = ingester_->run(run, stop);
      if (stop.stop_requested()) return;
      if (result.ok()) {
        log_->info("watch_dir: {} published {} rows, rejected {}", file.string(), result->published,
                   result->rejected);
      } else {
        log_->error("watch_dir: {}: {}", file.string(), result.status().ToString());
      }
      done.insert(signature);
      std::ofstream out(state_path, std::ios::app);
      out << signature << '\n';
    }
  } while (sleep_for(options_.watch_interval, stop));
}

}  // namespace telekern::collector
