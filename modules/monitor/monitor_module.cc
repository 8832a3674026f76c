// Registers the monitor module: its config (bound to MonitorOptions), the
// backend engine with its store and consumer, the optional host agent, and
// the Monitor service.
#include <absl/strings/str_cat.h>

#include <functional>
#include <optional>
#include <stop_token>

#include "agent.h"
#include "monitor_config.h"
#include "monitor_engine.h"
#include "monitor_options.h"
#include "monitor_service.h"
#include "telekern/configured_module.h"
#include "telekern/strings.h"

namespace telekern::monitor {
namespace {

constexpr const char* kDefaultTransport = "telekern://127.0.0.1:7070";

// Offers the monitor's users to the kernel's Login, so one token works for
// every module. The kernel stops asking before stop(); `engine` empties then.
class MonitorLogins final : public LoginProvider {
 public:
  void attach(std::shared_ptr<MonitorEngine> engine, std::shared_ptr<spdlog::logger> logger) {
    std::lock_guard lock(mutex_);
    engine_ = std::move(engine);
    logger_ = std::move(logger);
  }
  void detach() { attach(nullptr, nullptr); }

  std::optional<LoginCredentials> find_login(std::string_view user) const override {
    std::shared_ptr<MonitorEngine> engine;
    std::shared_ptr<spdlog::logger> logger;
    {
      std::lock_guard lock(mutex_);
      engine = engine_;
      logger = logger_;
    }
    if (!engine) return std::nullopt;
    auto found = engine->find_user(user);
    if (!found.ok()) {
      if (logger) logger->error("login of '{}': {}", user, std::string(found.status().message()));
      return std::nullopt;
    }
    if (!*found) return std::nullopt;
    switch ((*found)->role) {
      case telekern::options::v1::ROLE_VIEWER:
        return LoginCredentials{(*found)->password_hash, "viewer"};
      case telekern::options::v1::ROLE_OPERATOR:
        return LoginCredentials{(*found)->password_hash, "operator"};
      case telekern::options::v1::ROLE_ADMIN:
        return LoginCredentials{(*found)->password_hash, "admin"};
      default:
        return std::nullopt;  // create_user stores no other role
    }
  }

 private:
  mutable std::mutex mutex_;
  std::shared_ptr<MonitorEngine> engine_;
  std::shared_ptr<spdlog::logger> logger_;
};

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
      if (auto channel = context.channel("telekern.broker.v1.Broker"))
        stream_config.channel = channel;
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
          logger_->warn(
              "created monitor user 'admin' with password '{}' (shown once; only its "
              "hash is stored)",
              *password);
        stream::ConsumerOptions consumer_options{
            options.group, {options.topic}, stream::StartFrom::kEarliest};
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
        logins_.attach(engine_, logger_);
        context.add_login_provider(logins_);
      }
    }
    if (options.agent_enabled) {
      agent_ = std::make_shared<Agent>(
          options, [stream_config] { return stream::make_producer(stream_config); }, logger_,
          context.metrics());
      agent_->start();
    }
    stop_watch_.emplace(context.stop_token(), [this] { service_.end_streams(); });
    std::lock_guard lock(mutex_);
    started_ = true;
    return absl::OkStatus();
  }

  std::vector<ServiceBinding> services() override { return {bind_service<v1::Monitor>(service_)}; }

  ModuleHealth health() const override {
    std::string problem;
    std::shared_ptr<MonitorEngine> engine;
    std::shared_ptr<Agent> agent;
    {
      std::lock_guard lock(mutex_);
      if (!started_) return {HealthState::kNotServing, "not running"};
      problem = problem_;
      engine = engine_;
      agent = agent_;
    }
    if (!problem.empty()) return {HealthState::kDegraded, problem};
    if (engine) {
      if (auto error = engine->ingest_error(); !error.empty())
        return {HealthState::kDegraded, error};
    }
    if (agent) {
      if (auto error = agent->last_error(); !error.empty())
        return {HealthState::kDegraded, "agent: " + error};
    }
    return {};
  }

  void stop() override {
    std::shared_ptr<MonitorEngine> engine;
    std::shared_ptr<Agent> agent;
    {
      std::lock_guard lock(mutex_);
      started_ = false;
      problem_.clear();
      engine = std::move(engine_);
      agent = std::move(agent_);
    }
    stop_watch_.reset();
    logins_.detach();
    if (agent) agent->stop();
    service_.detach();
    if (engine) engine->shutdown();
  }

 private:
  void set_problem(std::string problem) {
    std::lock_guard lock(mutex_);
    problem_ = std::move(problem);
  }

  MonitorService service_;
  MonitorLogins logins_;
  std::shared_ptr<MonitorEngine> engine_;
  std::shared_ptr<Agent> agent_;
  std::shared_ptr<spdlog::logger> logger_;
  mutable std::mutex mutex_;
  std::string problem_;
  bool started_ = false;
  std::optional<std::stop_callback<std::function<void()>>> stop_watch_;
};

}  // namespace
}  // namespace telekern::monitor

TELEKERN_MODULE(telekern::monitor::MonitorModule)
