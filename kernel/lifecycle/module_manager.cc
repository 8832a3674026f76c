#include "kernel/lifecycle/module_manager.h"

#include <absl/strings/cord.h>
#include <google/protobuf/descriptor.h>
#include <grpcpp/create_channel.h>

#include <set>

#include "kernel/lifecycle/config_reload.h"
#include "telekern/credentials_interceptor.h"
#include "telekern/log.h"
#include "telekern/strings.h"

namespace telekern::kernel {

struct ModuleManager::Operation {
  enum class Kind { kLoad, kUnload, kReload } kind;
  std::string target;
  OperationCallback done;
};

namespace {

const char* operation_name(int kind) {
  static const char* names[] = {"load", "unload", "reload"};
  return names[kind];
}

// Marks a refusal because another module already serves the same service.
constexpr char kCollisionPayload[] = "telekern.dev/module-collision";

// "echo" for .../telekern_echo.so: the name a module file is known by before it is opened.
std::string module_name_of(const std::filesystem::path& file) {
  std::string stem = file.stem().string();
  return stem.starts_with("telekern_") ? stem.substr(9) : stem;
}

}  // namespace

ModuleManager::ModuleManager(KernelConfig config, MetricsRegistry& metrics, RpcMetrics& rpc_metrics,
                             std::shared_ptr<const auth::Authenticator> authenticator,
                             auth::LoginProviders* login_providers)
    : config_(std::move(config)),
      metrics_(metrics),
      rpc_metrics_(rpc_metrics),
      log_(make_logger("kernel")),
      login_providers_(login_providers),
      authenticator_(std::move(authenticator)),
      callers_(
          std::make_unique<auth::CallerIdentity>(authenticator_, authenticator_->internal_key())),
      retirement_(std::make_unique<CodeRetirement>(config_.module_release_grace, metrics)),
      channels_(
          std::make_unique<ModuleChannels>(ChannelOptions{.tls = config_.remote.tls,
                                                          .ca_file = config_.remote.ca_file,
                                                          .api_key = config_.remote.api_key,
                                                          .keepalive = config_.remote.keepalive},
                                           config_.remote_services)),
      module_up_(metrics.gauge("telekern_module_up",
                               "1 when the module runs and reports SERVING, 0 otherwise",
                               {"module"})),
      operations_(metrics.counter("telekern_module_operations_total",
                                  "Module load, unload and reload operations by outcome",
                                  {"operation", "outcome"})) {}

ModuleManager::~ModuleManager() { shutdown(); }

absl::Status ModuleManager::start(std::vector<ServiceBinding> kernel_services) {
  kernel_services_ = std::move(kernel_services);
  std::error_code error;
  std::filesystem::remove_all(config_.data_dir / ".modules", error);
  gate_ = std::make_shared<auth::CallGate>(authenticator_, config_.grpc_rate_per_credential,
                                           config_.rate_limits);
  // Calls held while a module reloads wait at most this long.
  router_ = std::make_unique<ModuleRouter>(config_.drain_timeout + std::chrono::seconds(10), *gate_,
                                           *callers_);

  std::vector<std::filesystem::path> files;
  if (config_.load.empty()) {
    if (std::filesystem::is_directory(config_.modules_dir, error)) {
      for (const auto& entry : std::filesystem::directory_iterator(config_.modules_dir, error)) {
        const auto name = entry.path().filename().string();
        if (name.rfind("telekern_", 0) == 0 && entry.path().extension() == ".so") {
          files.push_back(entry.path());
        }
      }
      std::sort(files.begin(), files.end());
    } else {
      log_->warn("modules dir {} does not exist; starting with no modules",
                 config_.modules_dir.string());
    }
  } else {
    for (const auto& name : config_.load) files.push_back(resolve(name));
  }
  // Open every module first (without starting it), so the public server can
  // register their unary methods as direct routes before it starts.
  std::vector<std::shared_ptr<Record>> prepared;
  std::vector<std::string> direct_services;
  for (const auto& file : files) {
    auto record = prepare(file, "");
    if (!record.ok()) {
      // Loading every module of the directory, one that serves what an
      // earlier one already serves (the proxy in front of the broker) is an
      // alternative, not a failure: it runs in a daemon of its own.
      if (config_.load.empty() && record.status().GetPayload(kCollisionPayload)) {
        log_->info(
            "module '{}' not loaded: {}; to run it, list it in `load:` of a daemon of "
            "its own",
            module_name_of(file), record.status().message());
        continue;
      }
      record_failure(file, "", record.status());
      continue;
    }
    prepared.push_back(*record);
    for (const auto& name : (*record)->service_names()) direct_services.push_back(name);
    std::lock_guard lock(mutex_);
    records_.push_back(*record);
  }
  auto direct = DirectRoutes::create(kernel_services_, direct_services, *router_, *gate_);
  if (!direct.ok()) {
    std::lock_guard lock(mutex_);
    records_.clear();
    return direct.status();
  }
  direct_ = std::move(*direct);
  local_calls_ = std::make_unique<LocalCalls>(*direct_, *gate_, rpc_metrics_);

  PublicServerSpec spec;
  spec.address = config_.listen;
  spec.tls = config_.tls;
  for (const auto& binding : kernel_services_) spec.health_names.push_back(binding.name);
  spec.direct_routes = direct_.get();
  spec.router = router_.get();
  spec.list_services = [this] { return service_names(); };
  spec.metrics = &rpc_metrics_;
  auto server = PublicServer::start(std::move(spec));
  if (!server.ok()) {
    std::lock_guard lock(mutex_);
    records_.clear();  // prepared, never started: destroying them is all it takes
    return server.status();
  }
  // Modules call each other through this channel as the kernel (admin).
  std::vector<std::unique_ptr<grpc::experimental::ClientInterceptorFactoryInterface>> as_kernel;
  as_kernel.push_back(credentials_interceptor([key = authenticator_->internal_key()] {
    return std::pair<std::string, std::string>{"x-api-key", key};
  }));
  channels_->set_local((*server)->in_process_channel(std::move(as_kernel)));
  {
    std::lock_guard lock(mutex_);
    server_ = std::move(*server);
    port_ = server_->port();
  }

  for (const auto& record : prepared) {
    if (auto status = launch(*record); !status.ok()) {
      {
        std::lock_guard lock(mutex_);
        std::erase(records_, record);
      }
      record_failure(record->file, record->name, status);
      continue;
    }
    record->generation = next_generation();
    route_to(*record);
  }
  worker_ = std::thread([this] { run(); });
  return absl::OkStatus();
}

void ModuleManager::route_to(const Record& record) {
  router_->add(record.service_names(), record.name, record.channel);
  int direct = 0;
  for (const auto& binding : record.bindings) {
    direct += direct_->attach(binding, record.direct_calls) ? 1 : 0;
  }
  log_->debug("module '{}': {} of {} services routed directly", record.name, direct,
              record.bindings.size());
}

void ModuleManager::load(std::string name_or_path, OperationCallback done) {
  std::lock_guard lock(mutex_);
  queue_.push_back(std::make_unique<Operation>(
      Operation{Operation::Kind::kLoad, std::move(name_or_path), std::move(done)}));
  queue_changed_.notify_one();
}

void ModuleManager::unload(std::string name, OperationCallback done) {
  std::lock_guard lock(mutex_);
  queue_.push_back(std::make_unique<Operation>(
      Operation{Operation::Kind::kUnload, std::move(name), std::move(done)}));
  queue_changed_.notify_one();
}

void ModuleManager::reload(std::string name, OperationCallback done) {
  std::lock_guard lock(mutex_);
  queue_.push_back(std::make_unique<Operation>(
      Operation{Operation::Kind::kReload, std::move(name), std::move(done)}));
  queue_changed_.notify_one();
}

void ModuleManager::run() {
  auto next_health = std::chrono::steady_clock::now();
  while (true) {
    std::unique_ptr<Operation> operation;
    {
      std::unique_lock lock(mutex_);
      queue_changed_.wait_until(lock, next_health, [&] { return stopping_ || !queue_.empty(); });
      if (stopping_) break;
      if (!queue_.empty()) {
        operation = std::move(queue_.front());
        queue_.pop_front();
      }
    }
    if (operation) {
      execute(*operation);
    } else {
      poll_health();
      router_->expire_held_calls();
      channels_->drop_retired(std::chrono::steady_clock::now());
      retirement_->collect(std::chrono::steady_clock::now());
      next_health = std::chrono::steady_clock::now() + std::chrono::seconds(1);
    }
  }
  // Operations still queued are answered, never dropped silently.
  std::deque<std::unique_ptr<Operation>> pending;
  {
    std::lock_guard lock(mutex_);
    pending.swap(queue_);
  }
  for (auto& operation : pending) {
    operation->done(absl::UnavailableError("kernel is shutting down; operation not run"));
  }
}

void ModuleManager::execute(Operation& operation) {
  const char* kind = operation_name(static_cast<int>(operation.kind));
  auto reply = [&](absl::StatusOr<OperationResult> result) {
    operations_.with({kind, result.ok() ? "ok" : "error"}).inc();
    if (!result.ok()) {
      log_->warn("module {} '{}' failed: {}", kind, operation.target, result.status().message());
    }
    operation.done(std::move(result));
  };

  if (operation.kind == Operation::Kind::kLoad) {
    auto file = resolve(operation.target);
    std::string stem = module_name_of(file);
    if (auto running = find_running(stem)) {
      return reply(absl::AlreadyExistsError(str_cat("module '", stem, "' is already loaded from ",
                                                    running->file.string(),
                                                    "; use `modules reload ", stem, "`")));
    }
    auto record = instantiate(file, "");
    if (!record.ok()) {
      record_failure(file, "", record.status());
      return reply(record.status());
    }
    uint64_t generation = next_generation();
    {
      std::lock_guard lock(mutex_);
      (*record)->generation = generation;
      std::erase_if(records_, [&](const auto& r) { return r->name == (*record)->name; });
      records_.push_back(*record);
    }
    route_to(**record);
    log_->info("module '{}' loaded from {} (generation {})", (*record)->name,
               (*record)->file.string(), generation);
    return reply(OperationResult{(*record)->status(), generation});
  }

  auto record = find_running(operation.target);
  if (!record) {
    return reply(absl::NotFoundError(
        str_cat("module '", operation.target, "' is not running; `modules list` shows what is")));
  }
  if (operation.kind == Operation::Kind::kReload) {
    // A config the new instance would refuse keeps the old one running.
    if (auto checked = effective_config(*record); !checked.ok()) {
      return reply(absl::Status(
          checked.status().code(),
          str_cat("module '", record->name, "' keeps running: ", checked.status().message())));
    }
  }
  {
    std::lock_guard lock(mutex_);
    record->state = ModuleState::kStopping;
  }
  auto old_services = record->service_names();

  direct_->detach(old_services);
  if (operation.kind == Operation::Kind::kUnload) {
    router_->remove(old_services,
                    grpc::Status(grpc::StatusCode::UNIMPLEMENTED,
                                 str_cat("module '", record->name, "' was unloaded")));
    for (const auto& service : old_services) server_->set_health(service, false);
    {
      std::lock_guard lock(mutex_);
      std::erase(records_, record);
    }
    ModuleStatus last = record->status();
    destroy(record);
    // What the caller sees is the outcome: stopped and gone, not serving.
    last.state = ModuleState::kUnloaded;
    last.health = {HealthState::kNotServing, "unloaded"};
    module_up_.with({last.name}).set(0);
    uint64_t generation = next_generation();
    log_->info("module '{}' unloaded (generation {})", last.name, generation);
    return reply(OperationResult{last, generation});
  }

  // Reload: hold new calls, let in-flight ones finish, stop and unload the old
  // instance (freeing its data directory and ports), start the new one from
  // the same file, then release the held calls to it.
  router_->hold(old_services);
  destroy(record);
  auto fresh = instantiate(record->file, record->name);
  uint64_t generation = next_generation();
  {
    std::lock_guard lock(mutex_);
    auto it = std::find(records_.begin(), records_.end(), record);
    if (fresh.ok()) {
      (*fresh)->generation = generation;
      if (it != records_.end()) *it = *fresh;
    } else if (it != records_.end()) {
      records_.erase(it);
    }
  }
  if (!fresh.ok()) {
    router_->remove(old_services,
                    grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                 str_cat("module '", record->name,
                                         "' failed to reload: ", fresh.status().message())));
    for (const auto& service : old_services) server_->set_health(service, false);
    record_failure(record->file, record->name, fresh.status());
    return reply(fresh.status());
  }
  auto new_services = (*fresh)->service_names();
  std::vector<std::string> gone;
  for (const auto& service : old_services) {
    if (std::find(new_services.begin(), new_services.end(), service) == new_services.end()) {
      gone.push_back(service);
    }
  }
  router_->remove(gone, grpc::Status(grpc::StatusCode::UNIMPLEMENTED,
                                     str_cat("module '", record->name, "' no longer serves it")));
  route_to(**fresh);
  log_->info("module '{}' reloaded from {} (generation {})", (*fresh)->name,
             (*fresh)->file.string(), generation);
  reply(OperationResult{(*fresh)->status(), generation});
}

void ModuleManager::poll_health() {
  std::vector<std::shared_ptr<Record>> running;
  {
    std::lock_guard lock(mutex_);
    for (const auto& record : records_) {
      if (record->state == ModuleState::kRunning) running.push_back(record);
    }
  }
  for (const auto& record : running) {
    ModuleHealth health;
    try {
      health = record->loaded->module().health();
    } catch (const std::exception& exception) {
      health = {HealthState::kNotServing, str_cat("health() threw: ", exception.what())};
    }
    bool serving = health.state != HealthState::kNotServing;
    {
      std::lock_guard lock(mutex_);
      record->health = health;
      if (server_) {
        for (const auto& binding : record->bindings) server_->set_health(binding.name, serving);
      }
    }
    module_up_.with({record->name}).set(health.state == HealthState::kServing ? 1 : 0);
  }
}

absl::StatusOr<std::shared_ptr<ModuleManager::Record>> ModuleManager::instantiate(
    const std::filesystem::path& file, const std::string& replacing) {
  auto record = prepare(file, replacing);
  if (!record.ok()) return record.status();
  if (auto status = launch(**record); !status.ok()) return status;
  return record;
}

absl::StatusOr<std::shared_ptr<ModuleManager::Record>> ModuleManager::prepare(
    const std::filesystem::path& file, const std::string& replacing) {
  std::filesystem::path copy;
  {
    std::lock_guard lock(mutex_);
    copy = config_.data_dir / ".modules" / str_cat(file.stem().string(), ".", ++copies_, ".so");
  }
  auto opened =
      ModuleInstance::open(file, copy,
                           [retirement = retirement_.get(), name = module_name_of(file)](
                               LibraryHandle library, std::filesystem::path loaded_from) {
                             retirement->retire(name, std::move(library), std::move(loaded_from));
                           });
  if (!opened.ok()) return opened.status();
  auto record = *opened;
  auto fail = [&](absl::Status status) {
    record->release();
    return status;
  };
  if (replacing.empty()) {
    if (auto running = find_running(record->name)) {
      return fail(absl::AlreadyExistsError(
          str_cat("module '", record->name, "' is already loaded from ", running->file.string())));
    }
  }
  // Refuse services another module (or the kernel) already serves, naming both.
  std::set<std::string> own;
  for (const auto& binding : record->bindings) {
    if (binding.service == nullptr || binding.name.empty()) {
      return fail(absl::FailedPreconditionError(
          str_cat(file.string(), ": services() returned an unnamed or null service")));
    }
    if (!own.insert(binding.name).second) {
      return fail(absl::FailedPreconditionError(
          str_cat(file.string(), ": service '", binding.name, "' listed twice")));
    }
    for (const auto& kernel_binding : kernel_services_) {
      if (kernel_binding.name == binding.name) {
        return fail(absl::FailedPreconditionError(
            str_cat("module '", record->name, "' (", file.string(), ") provides service '",
                    binding.name, "', which the kernel itself serves")));
      }
    }
    std::lock_guard lock(mutex_);
    for (const auto& other : records_) {
      if (other->state == ModuleState::kFailed || other->name == replacing) continue;
      for (const auto& other_binding : other->bindings) {
        if (other_binding.name == binding.name) {
          absl::Status collision = absl::FailedPreconditionError(str_cat(
              "module '", record->name, "' (", file.string(), ") provides service '", binding.name,
              "', already served by module '", other->name, "' (", other->file.string(), ")"));
          collision.SetPayload(kCollisionPayload, absl::Cord(other->name));
          return fail(collision);
        }
      }
    }
  }
  auto module_config = effective_config(*record);
  if (!module_config.ok()) return fail(module_config.status());
  record->config_yaml = module_config->to_yaml();

  auto data_dir = config_.data_dir / record->name;
  std::error_code error;
  std::filesystem::create_directories(data_dir, error);
  if (error) {
    return fail(absl::InternalError(str_cat("module '", record->name, "': cannot create data dir ",
                                            data_dir.string(), ": ", error.message())));
  }
  record->context = std::make_unique<ModuleContextImpl>(
      *module_config, data_dir, make_logger(record->name), metrics_, *channels_,
      [callers = callers_.get()](const grpc::ServerContextBase& call) {
        return callers->caller_of(call);
      },
      login_providers_, record->name);
  return record;
}

absl::StatusOr<Config> ModuleManager::effective_config(const Record& record) const {
  YAML::Node sections;
  {
    std::lock_guard lock(mutex_);
    sections = config_.module_sections;
  }
  return module_section_config(record.loaded->module().info(), sections, config_.config_file);
}

std::vector<std::string> ModuleManager::apply_module_sections(YAML::Node sections) {
  std::vector<RunningConfig> running;
  std::vector<std::pair<std::string, std::filesystem::path>> failed;
  {
    std::lock_guard lock(mutex_);
    config_.module_sections = sections;
    for (const auto& record : records_) {
      if (record->state == ModuleState::kRunning)
        running.push_back({record->name, record->info.config, record->config_yaml});
      if (record->state == ModuleState::kFailed && !record->file.empty())
        failed.emplace_back(record->name, record->file);
    }
  }
  // A module that failed (a config it refused, most often) is loaded again:
  // fixing the file and sending SIGHUP is how an operator brings it up.
  for (const auto& [name, file] : failed) {
    log_->info("SIGHUP: loading failed module '{}' again", name);
    load(file.string(), [this, name](absl::StatusOr<OperationResult> result) {
      if (result.ok()) {
        log_->info("SIGHUP: module '{}' is running now (generation {})", name, result->generation);
      }  // else the load logged why it failed again
    });
  }
  auto changed = changed_modules(running, sections, config_.config_file);
  for (const auto& name : changed) {
    reload(name, [this, name](absl::StatusOr<OperationResult> result) {
      if (result.ok()) {
        log_->info("SIGHUP: module '{}' reloaded with its new config (generation {})", name,
                   result->generation);
      } else {
        log_->error("SIGHUP: module '{}': {}", name, result.status().message());
      }
    });
  }
  return changed;
}

absl::Status ModuleManager::launch(Record& record) {
  if (auto status = record.start(); !status.ok()) return status;
  {
    std::lock_guard lock(mutex_);
    record.state = ModuleState::kRunning;
    record.load_time = std::chrono::system_clock::now();
  }
  module_up_.with({record.name}).set(1);
  for (const auto& binding : record.bindings) server_->set_health(binding.name, true);
  return absl::OkStatus();
}

uint64_t ModuleManager::next_generation() {
  std::lock_guard lock(mutex_);
  return ++generation_;
}

std::vector<std::string> ModuleManager::service_names() const {
  std::vector<std::string> names;
  for (const auto& binding : kernel_services_) names.push_back(binding.name);
  if (router_) {
    auto routed = router_->services();
    names.insert(names.end(), routed.begin(), routed.end());
  }
  names.insert(names.end(), {"grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection",
                             "grpc.reflection.v1alpha.ServerReflection"});
  return names;
}

void ModuleManager::destroy(std::shared_ptr<Record> record) {
  if (!record || !record->loaded) return;
  if (record->context) record->context->request_stop();
  // The routes hand this instance out no more (detach, hold or remove came
  // first); let calls already on it finish, up to drain_timeout: shutting the
  // in-process server down closes its transport at once, and calls that run
  // on the public server need the module object.
  auto deadline = std::chrono::steady_clock::now() + config_.drain_timeout;
  int running = record->direct_calls->wait_until_idle(deadline);
  if (record->server) running += router_->wait_until_idle(record->channel.get(), deadline);
  if (running > 0) {
    log_->warn("module '{}': {} calls still running after drain_timeout; stopping it anyway",
               record->name, running);
  }
  // Stop the module while its server still exists: its threads may still be
  // finishing reactors of calls the server owns; once stop() returns they are
  // joined, and the server can go.
  try {
    record->loaded->module().stop();
  } catch (const std::exception& exception) {
    log_->error("module '{}' stop threw: {}", record->name, exception.what());
  }
  if (record->server) {
    channels_->retire(
        std::move(record->channel),
        std::chrono::steady_clock::now() + config_.drain_timeout + std::chrono::seconds(10));
    record->server->Shutdown(std::chrono::system_clock::now() + config_.drain_timeout);
    record->server->Wait();
    if (exiting_) {
      kept_for_exit_.push_back(std::move(record->server));
    } else {
      record->server.reset();
    }
  }
  // Direct calls are not the in-process server's to cancel: a handler that
  // still has not answered after stop() keeps the module object alive for
  // good rather than running on a destroyed one.
  if (int stuck = record->direct_calls->wait_until_idle(std::chrono::steady_clock::now() +
                                                        config_.drain_timeout);
      stuck > 0) {
    log_->error("module '{}': {} calls never finished after stop(); leaking the module object",
                record->name, stuck);
    [[maybe_unused]] auto* leaked_module = record->loaded.release();
    [[maybe_unused]] auto* leaked_context = record->context.release();
    return;
  }
  record->release();
}

void ModuleManager::record_failure(const std::filesystem::path& file, const std::string& name,
                                   const absl::Status& status) {
  std::string module_name = name.empty() ? module_name_of(file) : name;
  log_->error("module '{}' failed: {}", module_name, status.message());
  auto record = ModuleInstance::failed(file, module_name, status);
  std::lock_guard lock(mutex_);
  record->generation = generation_;
  std::erase_if(records_, [&](const auto& r) {
    return r->name == module_name && r->state == ModuleState::kFailed;
  });
  records_.push_back(record);
}

std::shared_ptr<ModuleManager::Record> ModuleManager::find_running(const std::string& name) const {
  std::lock_guard lock(mutex_);
  for (const auto& record : records_) {
    if (record->name == name && record->state != ModuleState::kFailed) return record;
  }
  return nullptr;
}

std::filesystem::path ModuleManager::resolve(const std::string& name_or_path) const {
  if (name_or_path.find('/') != std::string::npos || name_or_path.ends_with(".so")) {
    return std::filesystem::absolute(name_or_path);
  }
  return config_.modules_dir / str_cat("telekern_", name_or_path, ".so");
}

std::vector<ModuleStatus> ModuleManager::list() const {
  std::lock_guard lock(mutex_);
  std::vector<ModuleStatus> result;
  for (const auto& record : records_) result.push_back(record->status());
  return result;
}

LocalCalls* ModuleManager::local_calls() {
  std::lock_guard lock(mutex_);
  return server_ && !stopping_ ? local_calls_.get() : nullptr;
}

std::shared_ptr<grpc::Channel> ModuleManager::gateway_channel() {
  std::lock_guard lock(mutex_);
  if (!gateway_channel_ && server_ && !stopping_) {
    gateway_channel_ = server_->in_process_channel({});
  }
  return gateway_channel_;
}

uint64_t ModuleManager::generation() const {
  std::lock_guard lock(mutex_);
  return generation_;
}

int ModuleManager::port() const {
  std::lock_guard lock(mutex_);
  return port_;
}

bool ModuleManager::ready(std::string* detail) const {
  std::lock_guard lock(mutex_);
  std::vector<std::string> problems;
  for (const auto& record : records_) {
    if (record->state == ModuleState::kFailed) {
      problems.push_back(str_cat(record->name, ": failed: ", record->error));
    } else if (record->health.state != HealthState::kServing) {
      problems.push_back(str_cat(record->name, ": ", record->health.detail));
    }
  }
  if (!server_) problems.push_back("not serving yet");
  if (detail) *detail = join(problems, "; ");
  return problems.empty();
}

absl::StatusOr<std::string> ModuleManager::module_config(const std::string& name) const {
  std::lock_guard lock(mutex_);
  for (const auto& record : records_) {
    if (record->name == name && record->state != ModuleState::kFailed) return record->config_yaml;
  }
  return absl::NotFoundError(str_cat("module '", name, "' is not running"));
}

void ModuleManager::set_authenticator(std::shared_ptr<const auth::Authenticator> authenticator) {
  std::lock_guard lock(mutex_);
  authenticator_ = authenticator;
  callers_->set_authenticator(authenticator);
  if (gate_) gate_->set_authenticator(std::move(authenticator));
}

void ModuleManager::shutdown(bool for_exit) {
  {
    std::lock_guard lock(mutex_);
    if (stopping_ && !worker_.joinable() && !server_ && records_.empty()) return;
    stopping_ = true;
    exiting_ = for_exit;
    queue_changed_.notify_all();
  }
  if (worker_.joinable()) worker_.join();
  std::unique_ptr<PublicServer> server;
  std::vector<std::shared_ptr<Record>> records;
  {
    std::lock_guard lock(mutex_);
    server = std::move(server_);
    records.swap(records_);
  }
  // New calls to modules are refused first (UNAVAILABLE); then, in reverse
  // load order, each module's in-flight calls may finish (all modules share
  // one drain_timeout) before it stops; the public server drains last.
  // Modules that call others in process (stream consumers retrying on
  // UNAVAILABLE) keep a live server under them until they stop: a call
  // created on the in-process channel of a server that was shut down
  // crashes gRPC 1.51. A consumer stream on a module loaded earlier ends
  // when its module stops, before that one's turn.
  if (router_)
    router_->remove(router_->services(),
                    grpc::Status(grpc::StatusCode::UNAVAILABLE, "kernel is shutting down"));
  auto drain_deadline = std::chrono::steady_clock::now() + config_.drain_timeout;
  for (auto it = records.rbegin(); it != records.rend(); ++it) {
    const auto& record = *it;
    if (record->loaded) {
      log_->info("stopping module '{}'", record->name);
      record->direct_calls->wait_until_idle(drain_deadline);
      if (record->server) router_->wait_until_idle(record->channel.get(), drain_deadline);
    }
    destroy(record);
  }
  if (server) server->drain(config_.drain_timeout);
  if (for_exit) {
    // The process ends next: gRPC objects are left to it. (In gRPC 1.51 the
    // last servers and channels going away can race its callback threads'
    // own teardown and abort an exit that was otherwise clean.)
    kept_public_server_ = std::move(server);
    return;
  }
  channels_->reset_local();
  channels_->drop_retired(std::chrono::steady_clock::time_point::max());  // no call runs now
  server.reset();
}

}  // namespace telekern::kernel
