#include "kernel/module_manager.h"

#include <google/protobuf/descriptor.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/support/client_interceptor.h>

#include <set>

#include "telekern/log.h"
#include "telekern/strings.h"

namespace telekern::kernel {

struct ModuleManager::Record {
  std::string name;
  std::filesystem::path file;
  std::filesystem::path private_copy;
  ModuleInfo info;
  std::vector<ServiceBinding> bindings;
  ModuleState state = ModuleState::kLoading;
  std::string error;
  uint64_t generation = 0;
  std::chrono::system_clock::time_point load_time;
  ModuleHealth health;
  // Destroyed in this order: context after the module, the library last (inside LoadedModule).
  std::unique_ptr<ModuleContextImpl> context;
  std::unique_ptr<LoadedModule> loaded;
};

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

// Adds the kernel's internal API key to calls a module makes to other modules.
class InternalKeyInterceptor final : public grpc::experimental::Interceptor {
 public:
  explicit InternalKeyInterceptor(const std::string& key) : key_(key) {}
  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(
            grpc::experimental::InterceptionHookPoints::PRE_SEND_INITIAL_METADATA)) {
      auto* metadata = methods->GetSendInitialMetadata();
      if (metadata->find("x-api-key") == metadata->end() &&
          metadata->find("authorization") == metadata->end()) {
        metadata->insert({"x-api-key", key_});
      }
    }
    methods->Proceed();
  }

 private:
  const std::string& key_;
};

class InternalKeyFactory final : public grpc::experimental::ClientInterceptorFactoryInterface {
 public:
  explicit InternalKeyFactory(std::shared_ptr<const auth::Authenticator> authenticator)
      : authenticator_(std::move(authenticator)) {}
  grpc::experimental::Interceptor* CreateClientInterceptor(
      grpc::experimental::ClientRpcInfo*) override {
    return new InternalKeyInterceptor(authenticator_->internal_key());
  }

 private:
  std::shared_ptr<const auth::Authenticator> authenticator_;
};

std::string host_of(const std::string& address) {
  return address.substr(0, address.rfind(':'));
}

}  // namespace

const char* module_state_name(ModuleState state) {
  switch (state) {
    case ModuleState::kLoading: return "loading";
    case ModuleState::kRunning: return "running";
    case ModuleState::kStopping: return "stopping";
    case ModuleState::kFailed: return "failed";
  }
  return "?";
}

ModuleManager::ModuleManager(KernelConfig config, MetricsRegistry& metrics,
                             RpcMetrics& rpc_metrics,
                             std::shared_ptr<const auth::Authenticator> authenticator)
    : config_(std::move(config)),
      metrics_(metrics),
      rpc_metrics_(rpc_metrics),
      log_(make_logger("kernel")),
      authenticator_(std::move(authenticator)),
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
  // The first generation serves only the kernel, so the port is known (and
  // clients can connect) before modules start and ask for channels.
  if (auto status = swap_generation([] {}); !status.ok()) return status;

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
      log_->warn("modules dir {} does not exist; starting with no modules", config_.modules_dir.string());
    }
  } else {
    for (const auto& name : config_.load) files.push_back(resolve(name));
  }
  for (const auto& file : files) {
    auto record = instantiate(file, "");
    if (!record.ok()) {
      record_failure(file, "", record.status());
      continue;
    }
    std::lock_guard lock(mutex_);
    records_.push_back(*record);
  }
  if (!files.empty()) {
    if (auto status = swap_generation([] {}); !status.ok()) return status;
  }
  worker_ = std::thread([this] { run(); });
  return absl::OkStatus();
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
  bool replied = false;
  auto reply = [&](absl::StatusOr<OperationResult> result) {
    operations_.with({kind, result.ok() ? "ok" : "error"}).inc();
    if (!result.ok()) {
      log_->warn("module {} '{}' failed: {}", kind, operation.target, result.status().message());
    }
    replied = true;
    operation.done(std::move(result));
  };

  if (operation.kind == Operation::Kind::kLoad) {
    auto file = resolve(operation.target);
    std::string stem = file.stem().string();
    if (stem.rfind("telekern_", 0) == 0) stem = stem.substr(9);
    if (auto running = find_running(stem)) {
      reply(absl::AlreadyExistsError(str_cat(
          "module '", stem, "' is already loaded from ", running->file.string(),
          "; use `modules reload ", stem, "`")));
      return;
    }
    auto record = instantiate(file, "");
    if (!record.ok()) {
      record_failure(file, "", record.status());
      reply(record.status());
      return;
    }
    {
      std::lock_guard lock(mutex_);
      std::erase_if(records_, [&](const auto& r) { return r->name == (*record)->name; });
      records_.push_back(*record);
    }
    auto status = swap_generation([&] {
      log_->info("module '{}' loaded from {} (generation {})", (*record)->name,
                 (*record)->file.string(), generation_);
      reply(OperationResult{status_of(**record), generation_});
    });
    if (!status.ok()) {
      std::lock_guard lock(mutex_);
      std::erase(records_, *record);
    }
    if (!status.ok()) {
      destroy(*record);
      reply(status);
    }
    return;
  }

  auto record = find_running(operation.target);
  if (!record) {
    reply(absl::NotFoundError(str_cat("module '", operation.target,
                                           "' is not running; `modules list` shows what is")));
    return;
  }
  std::string verb = operation.kind == Operation::Kind::kUnload ? "unloaded" : "reloaded";
  for (const auto& binding : record->bindings) {
    current_->gate().block_service(
        binding.name, str_cat("module '", record->name, "' is being ", verb, "; retry"));
  }
  {
    std::lock_guard lock(mutex_);
    record->state = ModuleState::kStopping;
  }

  if (operation.kind == Operation::Kind::kUnload) {
    record->context->request_stop();
    {
      std::lock_guard lock(mutex_);
      std::erase(records_, record);
    }
    ModuleStatus last = status_of(*record);
    auto status = swap_generation([&] {
      log_->info("module '{}' unloaded (generation {})", record->name, generation_);
      reply(OperationResult{last, generation_});
    });
    if (!status.ok()) reply(status);
    destroy(record);
    module_up_.with({last.name}).set(0);
    return;
  }

  // Reload: stop the old instance first so the new one can take its resources
  // (data directory locks, ports), then serve the new one.
  record->context->request_stop();
  try {
    record->loaded->module().stop();
  } catch (const std::exception& exception) {
    log_->error("module '{}' stop threw: {}", record->name, exception.what());
  }
  auto fresh = instantiate(record->file, record->name);
  {
    std::lock_guard lock(mutex_);
    auto it = std::find(records_.begin(), records_.end(), record);
    if (fresh.ok()) {
      if (it != records_.end()) *it = *fresh;
    } else if (it != records_.end()) {
      records_.erase(it);
    }
  }
  if (!fresh.ok()) record_failure(record->file, record->name, fresh.status());
  auto status = swap_generation([&] {
    if (fresh.ok()) {
      log_->info("module '{}' reloaded from {} (generation {})", (*fresh)->name,
                 (*fresh)->file.string(), generation_);
      reply(OperationResult{status_of(**fresh), generation_});
    } else {
      reply(fresh.status());
    }
  });
  if (!status.ok() && !replied) reply(status);
  destroy(record);
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
      if (current_) {
        for (const auto& binding : record->bindings) current_->set_health(binding.name, serving);
      }
    }
    module_up_.with({record->name}).set(health.state == HealthState::kServing ? 1 : 0);
  }
}

absl::StatusOr<std::shared_ptr<ModuleManager::Record>> ModuleManager::instantiate(
    const std::filesystem::path& file, const std::string& replacing) {
  std::filesystem::path copy;
  {
    std::lock_guard lock(mutex_);
    copy = config_.data_dir / ".modules" /
           str_cat(file.stem().string(), ".", ++copies_, ".so");
  }
  auto loaded = load_module(file, copy);
  if (!loaded.ok()) {
    std::error_code ignored;
    std::filesystem::remove(copy, ignored);
    return loaded.status();
  }
  auto record = std::make_shared<Record>();
  record->file = file;
  record->private_copy = copy;
  record->loaded = std::make_unique<LoadedModule>(std::move(*loaded));
  Module& module = record->loaded->module();
  auto fail = [&](absl::Status status) {
    record->loaded.reset();
    std::error_code ignored;
    std::filesystem::remove(copy, ignored);
    return status;
  };
  try {
    record->info = module.info();
    record->bindings = module.services();
  } catch (const std::exception& exception) {
    return fail(absl::InternalError(
        str_cat(file.string(), ": info() or services() threw: ", exception.what())));
  }
  record->name = record->info.name;
  if (record->name.empty()) {
    return fail(absl::FailedPreconditionError(str_cat(file.string(), ": module has no name")));
  }
  if (replacing.empty()) {
    if (auto running = find_running(record->name)) {
      return fail(absl::AlreadyExistsError(str_cat(
          "module '", record->name, "' is already loaded from ", running->file.string())));
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
        return fail(absl::FailedPreconditionError(str_cat(
            "module '", record->name, "' (", file.string(), ") provides service '", binding.name,
            "', which the kernel itself serves")));
      }
    }
    std::lock_guard lock(mutex_);
    for (const auto& other : records_) {
      if (other->state == ModuleState::kFailed || other->name == replacing) continue;
      for (const auto& other_binding : other->bindings) {
        if (other_binding.name == binding.name) {
          return fail(absl::FailedPreconditionError(str_cat(
              "module '", record->name, "' (", file.string(), ") provides service '",
              binding.name, "', already served by module '", other->name, "' (",
              other->file.string(), ")")));
        }
      }
    }
  }
  YAML::Node section;
  if (config_.module_sections.IsDefined() && config_.module_sections.IsMap()) {
    const YAML::Node& sections = config_.module_sections;
    section = sections[record->name];
  }
  auto module_config = validate_config(
      record->info.config, section,
      {config_.config_file, str_cat("modules.", record->name), telekern_environment()});
  if (!module_config.ok()) return fail(module_config.status());

  auto data_dir = config_.data_dir / record->name;
  std::error_code error;
  std::filesystem::create_directories(data_dir, error);
  if (error) {
    return fail(absl::InternalError(str_cat("module '", record->name,
                                                 "': cannot create data dir ", data_dir.string(),
                                                 ": ", error.message())));
  }
  record->context = std::make_unique<ModuleContextImpl>(
      *module_config, data_dir, make_logger(record->name), metrics_,
      [this](std::string_view service) { return channel_for(service); });
  absl::Status started;
  try {
    started = module.start(*record->context);
  } catch (const std::exception& exception) {
    started = absl::InternalError(str_cat("start() threw: ", exception.what()));
  } catch (...) {
    started = absl::InternalError("start() threw a non-standard exception");
  }
  if (!started.ok()) {
    record->context->request_stop();
    try {
      module.stop();
    } catch (...) {
      log_->error("module '{}': stop() after failed start threw", record->name);
    }
    return fail(absl::Status(started.code(), str_cat("module '", record->name,
                                                          "' failed to start: ",
                                                          started.message())));
  }
  record->state = ModuleState::kRunning;
  record->load_time = std::chrono::system_clock::now();
  module_up_.with({record->name}).set(1);
  return record;
}

absl::Status ModuleManager::swap_generation(const std::function<void()>& before_drain) {
  GenerationSpec spec;
  std::shared_ptr<const auth::Authenticator> authenticator;
  {
    std::lock_guard lock(mutex_);
    spec.number = generation_ + 1;
    spec.address = port_ == 0 ? config_.listen
                              : str_cat(host_of(config_.listen), ":", port_);
    spec.services = kernel_services_;
    for (const auto& record : records_) {
      if (record->state != ModuleState::kRunning) continue;
      spec.services.insert(spec.services.end(), record->bindings.begin(), record->bindings.end());
    }
    authenticator = authenticator_;
  }
  spec.tls = config_.tls;
  spec.gate = std::make_shared<auth::CallGate>(authenticator, rpc_metrics_);
  spec.metrics = &rpc_metrics_;
  auto next = ServerGeneration::start(std::move(spec));
  if (!next.ok()) return next.status();
  std::unique_ptr<ServerGeneration> old;
  {
    std::lock_guard lock(mutex_);
    old = std::move(current_);
    current_ = std::move(*next);
    generation_ = current_->number();
    port_ = current_->port();
    for (const auto& record : records_) {
      if (record->state == ModuleState::kRunning) record->generation = generation_;
    }
  }
  // GOAWAY goes out on the old generation's connections before anyone hears
  // about the change, so a client's next call already lands on the new one.
  if (old) old->begin_drain();
  before_drain();
  if (old) old->drain(config_.drain_timeout);
  return absl::OkStatus();
}

void ModuleManager::destroy(std::shared_ptr<Record> record) {
  if (!record || !record->loaded) return;
  if (record->context) record->context->request_stop();
  try {
    record->loaded->module().stop();
  } catch (const std::exception& exception) {
    log_->error("module '{}' stop threw: {}", record->name, exception.what());
  }
  record->loaded.reset();  // module object first, then its library
  record->context.reset();
  std::error_code ignored;
  std::filesystem::remove(record->private_copy, ignored);
}

void ModuleManager::record_failure(const std::filesystem::path& file, const std::string& name,
                                   const absl::Status& status) {
  std::string module_name = name;
  if (module_name.empty()) {
    module_name = file.stem().string();
    if (module_name.rfind("telekern_", 0) == 0) module_name = module_name.substr(9);
  }
  log_->error("module '{}' failed: {}", module_name, status.message());
  auto record = std::make_shared<Record>();
  record->name = module_name;
  record->file = file;
  record->state = ModuleState::kFailed;
  record->error = std::string(status.message());
  record->load_time = std::chrono::system_clock::now();
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

std::shared_ptr<grpc::Channel> ModuleManager::channel_for(std::string_view service) {
  std::lock_guard lock(mutex_);
  if (auto it = channels_.find(service); it != channels_.end()) return it->second;
  std::string target;
  if (auto remote = config_.remote_services.find(std::string(service));
      remote != config_.remote_services.end()) {
    target = remote->second;
  } else {
    std::string host = host_of(config_.listen);
    if (host == "0.0.0.0" || host == "[::]" || host.empty()) host = "127.0.0.1";
    target = str_cat(host, ":", port_);
  }
  grpc::ChannelArguments arguments;
  std::vector<std::unique_ptr<grpc::experimental::ClientInterceptorFactoryInterface>> interceptors;
  interceptors.push_back(std::make_unique<InternalKeyFactory>(authenticator_));
  auto channel = grpc::experimental::CreateCustomChannelWithInterceptors(
      target, grpc::InsecureChannelCredentials(), arguments, std::move(interceptors));
  channels_.emplace(std::string(service), channel);
  return channel;
}

std::vector<ModuleStatus> ModuleManager::list() const {
  std::lock_guard lock(mutex_);
  std::vector<ModuleStatus> result;
  for (const auto& record : records_) result.push_back(status_of(*record));
  return result;
}

ModuleStatus ModuleManager::status_of(const Record& record) {
  ModuleStatus status;
  status.name = record.name;
  status.version = record.info.version;
  status.description = record.info.description;
  status.file = record.file.string();
  status.state = record.state;
  for (const auto& binding : record.bindings) status.services.push_back(binding.name);
  status.health = record.health;
  if (record.state == ModuleState::kFailed) {
    status.health = {HealthState::kNotServing, record.error};
  }
  status.load_time = record.load_time;
  status.error = record.error;
  status.generation = record.generation;
  return status;
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
  if (!current_) problems.push_back("not serving yet");
  if (detail) *detail = join(problems, "; ");
  return problems.empty();
}

absl::StatusOr<std::string> ModuleManager::module_config(const std::string& name) const {
  std::lock_guard lock(mutex_);
  for (const auto& record : records_) {
    if (record->name == name && record->context) return record->context->config().to_yaml();
  }
  return absl::NotFoundError(str_cat("module '", name, "' is not running"));
}

void ModuleManager::set_authenticator(std::shared_ptr<const auth::Authenticator> authenticator) {
  std::lock_guard lock(mutex_);
  authenticator_ = authenticator;
  if (current_) current_->gate().set_authenticator(std::move(authenticator));
}

void ModuleManager::shutdown() {
  {
    std::lock_guard lock(mutex_);
    if (stopping_ && !worker_.joinable() && !current_ && records_.empty()) return;
    stopping_ = true;
    queue_changed_.notify_all();
  }
  if (worker_.joinable()) worker_.join();
  std::unique_ptr<ServerGeneration> last;
  std::vector<std::shared_ptr<Record>> records;
  {
    std::lock_guard lock(mutex_);
    last = std::move(current_);
    records.swap(records_);
  }
  // In-flight calls finish first (up to the deadline); then modules stop.
  if (last) last->drain(config_.drain_timeout);
  last.reset();
  for (auto it = records.rbegin(); it != records.rend(); ++it) {
    if ((*it)->loaded) log_->info("stopping module '{}'", (*it)->name);
    destroy(*it);
  }
}

}  // namespace telekern::kernel
