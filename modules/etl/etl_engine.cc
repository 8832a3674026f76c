#include "etl_engine.h"

#include <filesystem>
#include <fstream>

#include "declarative_processor.h"
#include "telekern/log.h"
#include "telekern/strings.h"

namespace telekern::etl {

EtlEngine::EtlEngine(EtlOptions options, MetricsRegistry* metrics,
                     std::shared_ptr<spdlog::logger> logger)
    : environment_(std::make_shared<PipelineEnvironment>()) {
  environment_->declarative = options.processors;
  environment_->options = std::move(options);
  environment_->metrics = metrics;
  environment_->logger = std::move(logger);
}

EtlEngine::~EtlEngine() { shutdown(); }

std::vector<std::pair<std::string, absl::StatusOr<PipelineSpec>>> EtlEngine::configured() const {
  const auto& o = environment_->options;
  std::vector<std::pair<std::string, absl::StatusOr<PipelineSpec>>> specs;
  if (auto spec = default_pipeline(o)) specs.emplace_back("default", *spec);
  auto add = [&](const YAML::Node& node) {
    std::string name = node.IsMap() && node["name"] ? node["name"].as<std::string>("") : "";
    specs.emplace_back(name.empty() ? "(unnamed)" : name, parse_pipeline(node, o));
  };
  if (o.pipelines && o.pipelines.IsSequence())
    for (const auto& node : o.pipelines) add(node);
  if (!o.pipelines_dir.empty()) {
    std::error_code error;
    for (const auto& entry : std::filesystem::directory_iterator(o.pipelines_dir, error)) {
      auto extension = entry.path().extension();
      if (extension != ".yaml" && extension != ".yml") continue;
      try {
        add(YAML::LoadFile(entry.path().string()));
      } catch (const YAML::Exception& e) {
        specs.emplace_back(
            entry.path().stem().string(),
            absl::InvalidArgumentError(str_cat(entry.path().string(), ": ", e.what())));
      }
    }
  }
  return specs;
}

void EtlEngine::start() {
  for (auto& [name, spec] : configured()) {
    if (!spec.ok()) {
      environment_->logger->error("pipeline {} is invalid: {}", name, spec.status().message());
      PipelineSpec broken;
      broken.name = name;
      std::lock_guard lock(mutex_);
      failed_[name] = {broken, std::string(spec.status().message())};
      continue;
    }
    auto started = launch(*spec);
    if (!started.ok())
      environment_->logger->error("pipeline {} did not start: {}", name,
                                  started.status().message());
  }
}

void EtlEngine::shutdown() {
  work_.stop();
  std::map<std::string, std::unique_ptr<Pipeline>> pipelines;
  {
    std::lock_guard lock(mutex_);
    pipelines.swap(pipelines_);
  }
  for (auto& [_, pipeline] : pipelines) pipeline->stop();
}

absl::Status EtlEngine::submit(std::function<void()> work) {
  if (work_.try_submit(std::move(work))) return absl::OkStatus();
  return absl::ResourceExhaustedError("etl module is busy; retry");
}

PipelineView EtlEngine::view_of(const std::string& name) const {
  PipelineView view;
  if (auto it = pipelines_.find(name); it != pipelines_.end()) {
    view.spec = it->second->spec();
    view.counters = it->second->counters();
    for (const auto* processor : it->second->processors())
      view.processors.push_back(processor->describe().name);
    return view;
  }
  const auto& [spec, why] = failed_.at(name);
  view.spec = spec;
  view.counters.state = PipelineState::kFailed;
  view.counters.last_error = why;
  view.processors = spec.clickhouse_processors;
  return view;
}

absl::StatusOr<PipelineView> EtlEngine::launch(PipelineSpec spec) {
  std::string name = spec.name;
  {
    std::lock_guard lock(mutex_);
    if (pipelines_.count(name))
      return absl::AlreadyExistsError(str_cat("pipeline ", name, " is running; stop it first"));
  }
  auto pipeline = std::make_unique<Pipeline>(spec, environment_);
  auto status = pipeline->start();
  std::lock_guard lock(mutex_);
  if (!status.ok()) {
    failed_[name] = {spec, std::string(status.message())};
    return status;
  }
  failed_.erase(name);
  pipelines_[name] = std::move(pipeline);
  return view_of(name);
}

std::vector<PipelineView> EtlEngine::list() const {
  std::lock_guard lock(mutex_);
  std::vector<PipelineView> out;
  for (const auto& [name, _] : pipelines_) out.push_back(view_of(name));
  for (const auto& [name, _] : failed_)
    if (!pipelines_.count(name)) out.push_back(view_of(name));
  return out;
}

absl::StatusOr<PipelineView> EtlEngine::view(const std::string& name) const {
  std::lock_guard lock(mutex_);
  if (!pipelines_.count(name) && !failed_.count(name))
    return absl::NotFoundError(str_cat("no pipeline ", name, "; `etl pipelines` lists them"));
  return view_of(name);
}

absl::StatusOr<PipelineView> EtlEngine::start_pipeline(const std::string& name,
                                                       const std::string& yaml,
                                                       const std::string& file) {
  YAML::Node node;
  try {
    if (!yaml.empty()) node = YAML::Load(yaml);
    if (!file.empty()) node = YAML::LoadFile(file);
  } catch (const YAML::Exception& error) {
    return absl::InvalidArgumentError(str_cat("pipeline definition: ", error.what()));
  }
  if (node && node.IsMap()) {
    if (!name.empty() && !node["name"]) node["name"] = name;
    auto spec = parse_pipeline(node, environment_->options);
    if (!spec.ok()) return spec.status();
    return launch(*spec);
  }
  if (name.empty())
    return absl::InvalidArgumentError("give a pipeline name, a YAML definition or a file");
  for (auto& [configured_name, spec] : configured()) {
    if (configured_name != name) continue;
    if (!spec.ok()) return spec.status();
    return launch(*spec);
  }
  return absl::NotFoundError(
      str_cat("no configured pipeline ", name, "; define it under pipelines: or pass --file"));
}

absl::StatusOr<PipelineView> EtlEngine::stop_pipeline(const std::string& name) {
  std::unique_ptr<Pipeline> pipeline;
  {
    std::lock_guard lock(mutex_);
    auto it = pipelines_.find(name);
    if (it == pipelines_.end()) return absl::NotFoundError(str_cat("no running pipeline ", name));
    pipeline = std::move(it->second);
    pipelines_.erase(it);
  }
  pipeline->stop();
  PipelineView view;
  view.spec = pipeline->spec();
  view.counters = pipeline->counters();
  return view;
}

std::vector<ProcessorDescription> EtlEngine::processors() const {
  std::vector<ProcessorDescription> out;
  auto settings = builtin_settings(environment_->options);
  for (const auto& name : builtin_processor_names()) {
    auto processor = make_builtin_processor(name, settings);
    if (processor.ok()) out.push_back((*processor)->describe());
  }
  const auto& declarative = environment_->declarative;
  if (declarative && declarative.IsSequence()) {
    for (const auto& node : declarative) {
      auto processor = make_declarative_processor(node);
      if (processor.ok()) out.push_back((*processor)->describe());
    }
  }
  return out;
}

absl::StatusOr<DryRunResult> EtlEngine::dry_run(const std::string& processor,
                                                const std::string& message, const std::string& yaml,
                                                const ServerProfile& profile) const {
  // yaml-cpp nodes alias on assignment: build fresh ones, never assign into shared ones.
  PipelineEnvironment environment;
  environment.options = environment_->options;
  environment.logger = environment_->logger;
  std::vector<std::string> names;
  YAML::Node merged(YAML::NodeType::Sequence);
  if (environment_->declarative && environment_->declarative.IsSequence())
    for (const auto& node : environment_->declarative) merged.push_back(YAML::Clone(node));
  if (!yaml.empty()) {
    try {
      YAML::Node extra = YAML::Load(yaml);
      std::vector<YAML::Node> definitions;
      if (extra.IsMap()) {
        definitions.push_back(extra);
      } else {
        for (const auto& node : extra) definitions.push_back(node);
      }
      for (const auto& node : definitions) {
        merged.push_back(node);
        if (processor.empty()) names.push_back(node["name"].as<std::string>(""));
      }
    } catch (const YAML::Exception& error) {
      return absl::InvalidArgumentError(str_cat("processor YAML: ", error.what()));
    }
  }
  environment.declarative = merged;
  if (!processor.empty()) {
    names = {processor};
  } else if (names.empty()) {
    names = builtin_processor_names();
    if (environment.declarative && environment.declarative.IsSequence())
      for (const auto& node : environment.declarative)
        names.push_back(node["name"].as<std::string>(""));
  }
  auto processors = make_processors(names, environment);
  if (!processors.ok()) return processors.status();
  simdjson::dom::parser parser;
  auto parsed = parser.parse(message);
  if (parsed.error())
    return absl::InvalidArgumentError(
        str_cat("message is not JSON: ", simdjson::error_message(parsed.error())));
  // Refs resolve as in a pipeline: through Redis (metadata_import's hashes).
  const auto& o = environment.options;
  RedisClient redis(RedisOptions{o.redis_host, o.redis_port, o.redis_db, o.redis_password});
  Cachers cachers(nullptr, &redis, {});
  BuildContext context;
  context.refs = &cachers;
  context.profile = profile;
  context.unknown = parse_unknown(environment.options.unknown_fields);
  DryRunResult result;
  Message input;
  input.topic = "dry-run";
  input.partition = 0;
  input.offset = 0;
  input.value = message;
  input.timestamp = std::chrono::system_clock::now();
  for (const auto& candidate : *processors) {
    if (!candidate->match(parsed.value_unsafe())) continue;
    result.matched = true;
    std::vector<Row> rows;
    auto status = candidate->build(parsed.value_unsafe(), input, context, rows);
    if (!status.ok()) {
      result.rejected.emplace_back(candidate->describe().name, std::string(status.message()));
      continue;
    }
    for (const auto& row : rows) {
      std::string table = row.store == Store::kRedis ? str_cat(row.table, ":", row.key) : row.table;
      result.rows.push_back({candidate->describe().name, table, row.json()});
    }
  }
  return result;
}

std::string EtlEngine::problems() const {
  std::lock_guard lock(mutex_);
  std::string out;
  for (const auto& [name, pipeline] : pipelines_) {
    auto counters = pipeline->counters();
    if (counters.state == PipelineState::kRetrying)
      str_append(out, out.empty() ? "" : "; ", "pipeline ", name,
                 " retrying: ", counters.last_error);
  }
  for (const auto& [name, failed] : failed_)
    if (!pipelines_.count(name))
      str_append(out, out.empty() ? "" : "; ", "pipeline ", name, " failed: ", failed.second);
  return out;
}

}  // namespace telekern::etl
