#include "bench_engine.h"

#include <fstream>
#include <sstream>

#include "health.h"
#include "results_json.h"
#include "telekern/strings.h"

namespace telekern::bench {
namespace {

bool looks_like_yaml(const std::string& text) { return text.find('\n') != std::string::npos; }

absl::StatusOr<std::string> read_text(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(str_cat("cannot read '", path.string(), "'"));
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

}  // namespace

BenchEngine::BenchEngine(BenchOptions options, std::filesystem::path data_dir,
                         DriverEnvironment environment, std::shared_ptr<spdlog::logger> logger)
    : options_(std::move(options)),
      store_(std::filesystem::absolute(options_.results_dir.empty()
                                           ? data_dir / "results"
                                           : std::filesystem::path(options_.results_dir))),
      environment_(std::move(environment)),
      logger_(std::move(logger)),
      queue_(options_.worker_threads, options_.max_pending_requests) {}

BenchEngine::~BenchEngine() { shutdown(); }

absl::Status BenchEngine::submit(std::function<void()> work) {
  if (queue_.try_submit(std::move(work))) return absl::OkStatus();
  return absl::ResourceExhaustedError(str_cat("bench request queue is full (max_pending_requests=",
                                              options_.max_pending_requests, "); retry"));
}

void BenchEngine::shutdown() {
  {
    std::lock_guard lock(mutex_);
    for (auto& [_, source] : running_) source.request_stop();
  }
  queue_.stop();
}

absl::StatusOr<Workload> BenchEngine::resolve_workload(const RunRequest& request) const {
  if (request.workload.empty())
    return absl::InvalidArgumentError(
        "give a workload: a YAML file (OMB's workloads/*.yaml) or the YAML itself");
  absl::StatusOr<Workload> workload;
  if (looks_like_yaml(request.workload)) {
    workload = parse_workload(request.workload);
  } else {
    std::filesystem::path path = request.workload;
    if (path.is_relative() && !options_.workloads_dir.empty() && !std::filesystem::exists(path))
      path = std::filesystem::path(options_.workloads_dir) / path;
    workload = load_workload(path.string());
  }
  if (!workload.ok()) return workload.status();
  if (request.duration.count() > 0) workload->test_duration = request.duration;
  if (request.warmup) workload->warmup_duration = *request.warmup;
  return workload;
}

absl::StatusOr<DriverSpec> BenchEngine::resolve_driver(const RunRequest& request) const {
  std::string text = request.driver.empty() ? options_.default_driver : request.driver;
  if (!looks_like_yaml(text) && (text.ends_with(".yaml") || text.ends_with(".yml"))) {
    std::filesystem::path path = text;
    if (path.is_relative() && !options_.workloads_dir.empty() && !std::filesystem::exists(path))
      path = std::filesystem::path(options_.workloads_dir) / path;
    auto content = read_text(path);
    if (!content.ok()) return content.status();
    text = *content + "\n";
  }
  return parse_driver(text);
}

absl::StatusOr<RunSummary> BenchEngine::run(const RunRequest& request, std::stop_token stop,
                                            const std::function<void(const Progress&)>& progress) {
  auto workload = resolve_workload(request);
  if (!workload.ok()) return workload.status();
  auto spec = resolve_driver(request);
  if (!spec.ok()) return spec.status();
  std::vector<HealthTarget> targets;
  for (const auto& name :
       request.health_targets.empty() ? options_.health_targets : request.health_targets) {
    auto target = parse_health_target(name);
    if (!target.ok()) return target.status();
    targets.push_back(std::move(*target));
  }
  {
    std::lock_guard lock(mutex_);
    if (running_.size() >= options_.max_concurrent_runs)
      return absl::ResourceExhaustedError(
          str_cat(running_.size(), " run(s) in progress (max_concurrent_runs=",
                  options_.max_concurrent_runs, "); wait or cancel one with `bench cancel ID`"));
  }
  auto id = store_.create_run();
  if (!id.ok()) return id.status();
  std::stop_source source;
  {
    std::lock_guard lock(mutex_);
    running_[*id] = source;
  }
  std::stop_callback forward(stop, [&source] { source.request_stop(); });
  struct Unregister {
    BenchEngine* engine;
    std::string id;
    ~Unregister() {
      std::lock_guard lock(engine->mutex_);
      engine->running_.erase(id);
    }
  } unregister{this, *id};

  RunSummary summary;
  summary.id = *id;
  summary.workload = workload->name;
  summary.driver = spec->name;
  summary.state = "running";
  (void)store_.write_state(*id, summary);
  (void)store_.write_file(*id, "benchmark_results/workload.yaml", workload->source);
  (void)store_.write_file(*id, "benchmark_results/driver.yaml", spec->source);
  if (logger_) logger_->info("run {}: workload '{}' on driver {}", *id, workload->name, spec->name);

  Progress started;
  started.run_id = *id;
  started.planned_seconds =
      std::chrono::duration<double>(workload->warmup_duration + workload->test_duration).count();
  if (progress) progress(started);

  auto fail = [&](const absl::Status& status) -> absl::Status {
    summary.state = "failed";
    summary.error = std::string(status.message());
    (void)store_.write_state(*id, summary);
    if (logger_) logger_->warn("run {} failed: {}", *id, std::string(status.message()));
    return absl::Status(status.code(), str_cat("run ", *id, ": ", status.message()));
  };

  auto driver = make_driver(*spec, environment_);
  if (!driver.ok()) return fail(driver.status());

  // Health collection never fails the run: errors are marked in the snapshots.
  HealthCollector health(
      targets,
      request.health_interval.count() > 0 ? request.health_interval : options_.health_interval,
      logger_);
  health.collect_baseline();
  health.start_background();

  RunOptions run_options;
  run_options.window = request.window.count() > 0 ? request.window : options_.window;
  run_options.max_publish_delay = options_.max_publish_delay;
  run_options.topic_prefix = str_cat("bench-", *id);
  run_options.payload_dir = options_.workloads_dir;
  auto result = run_workload(*workload, *spec, **driver, run_options, source.get_token(),
                             [&](const WindowStats& window) {
                               Progress p;
                               p.kind = Progress::Kind::kWindow;
                               p.run_id = *id;
                               p.planned_seconds = started.planned_seconds;
                               p.window = window;
                               if (progress) progress(p);
                             });
  health.collect_final();
  if (auto s = health.write(store_.dir(*id) / "metrics"); !s.ok() && logger_)
    logger_->warn("run {}: health snapshots not written: {}", *id, std::string(s.message()));
  if (!result.ok()) return fail(result.status());

  auto failures = health.failures();
  for (const auto& [target, error] : failures)
    result->notes.push_back(str_cat("health target ", target, " not read: ", error));
  auto json = full_result(*result, *id);
  if (auto s = store_.write_file(*id, "benchmark_results/result.json", json.dump(2)); !s.ok())
    return fail(s);
  summary = summarize(json);
  summary.id = *id;
  (void)store_.write_state(*id, summary);
  store_.point_latest(*id);

  Progress finished;
  finished.kind = Progress::Kind::kFinished;
  finished.run_id = *id;
  finished.planned_seconds = started.planned_seconds;
  finished.summary = summary;
  finished.invalid_reasons = result->invalid_reasons;
  for (const auto& [target, error] : failures)
    finished.health_failures.push_back(target + ": " + error);
  if (request.report.value_or(options_.report)) {
    auto path = render_run_report(store_, *id);
    if (path.ok()) {
      finished.report_path = path->string();
    } else if (logger_) {
      logger_->warn("run {}: report not rendered: {}", *id, std::string(path.status().message()));
    }
  }
  if (progress) progress(finished);
  if (logger_)
    logger_->info("run {} {}: {:.1f} msg/s, publish p99 {:.3f} ms{}", *id, summary.state,
                  summary.publish_rate, summary.publish_p99_ms, summary.valid ? "" : " (invalid)");
  return summary;
}

absl::Status BenchEngine::cancel(const std::string& id) {
  std::lock_guard lock(mutex_);
  auto it = running_.find(id);
  if (it == running_.end()) {
    if (store_.check_id(id).ok())
      return absl::FailedPreconditionError(str_cat("run ", id, " is not running"));
    return absl::NotFoundError(str_cat("no run '", id, "'; list runs with `bench runs`"));
  }
  it->second.request_stop();
  return absl::OkStatus();
}

std::vector<RunSummary> BenchEngine::list() const { return store_.list(); }

absl::StatusOr<nlohmann::json> BenchEngine::get(const std::string& id) const {
  return store_.result(id);
}

absl::StatusOr<std::filesystem::path> BenchEngine::render_report(const std::string& id) const {
  return render_run_report(store_, id);
}

absl::StatusOr<ComparisonReport> BenchEngine::compare(const std::vector<std::string>& ids) const {
  return render_comparison(store_, ids, options_.regression_threshold);
}

size_t BenchEngine::running() const {
  std::lock_guard lock(mutex_);
  return running_.size();
}

}  // namespace telekern::bench
