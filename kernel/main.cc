// telekernd: loads telekern modules and serves their gRPC services.
#include <absl/synchronization/mutex.h>
#include <grpc/support/log.h>
#include <grpcpp/health_check_service_interface.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <termios.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "kernel/auth/authenticator.h"
#include "kernel/auth/call_gate.h"
#include "kernel/auth/crypto.h"
#include "kernel/http/http_access.h"
#include "kernel/http_endpoint.h"
#include "kernel/kernel_config.h"
#include "kernel/kernel_service.h"
#include "kernel/lifecycle/module_loader.h"
#include "kernel/lifecycle/module_manager.h"
#include "kernel/process_metrics.h"
#include "kernel/version.h"
#include "telekern/log.h"
#include "telekern/strings.h"

namespace {

using namespace telekern;
using namespace telekern::kernel;

constexpr int kExitConfig = 2;
constexpr int kExitRuntime = 1;

std::string read_secret(const std::string& prompt) {
  bool tty = isatty(STDIN_FILENO);
  termios saved{};
  if (tty) {
    std::cerr << prompt << std::flush;
    tcgetattr(STDIN_FILENO, &saved);
    termios quiet = saved;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    tcsetattr(STDIN_FILENO, TCSANOW, &quiet);
  }
  std::string secret;
  std::getline(std::cin, secret);
  if (tty) {
    tcsetattr(STDIN_FILENO, TCSANOW, &saved);
    std::cerr << "\n";
  }
  return secret;
}

// gRPC's own log lines go through the daemon's logger (component "grpc"), so
// they follow log.format and log.level like every other line.
void route_grpc_logs() {
  gpr_set_log_function([](gpr_log_func_args* args) {
    static const auto logger = make_logger("grpc");
    switch (args->severity) {
      case GPR_LOG_SEVERITY_DEBUG:
        logger->debug("{} ({}:{})", args->message, args->file, args->line);
        break;
      case GPR_LOG_SEVERITY_INFO:
        logger->info("{}", args->message);
        break;
      default:
        logger->error("{} ({}:{})", args->message, args->file, args->line);
        break;
    }
  });
}

std::filesystem::path default_modules_dir() {
  std::error_code error;
  auto exe = std::filesystem::read_symlink("/proc/self/exe", error);
  if (error) return "modules";
  return exe.parent_path().parent_path() / "modules";
}

absl::StatusOr<std::shared_ptr<const auth::Authenticator>> make_authenticator(
    const KernelConfig& config, const std::string& internal_key,
    const auth::LoginProviders& login_providers) {
  auto settings =
      auth::parse_auth_settings(config.api_keys, config.users, config.jwt_secret,
                                std::chrono::duration_cast<std::chrono::seconds>(config.jwt_ttl));
  if (!settings.ok()) {
    return absl::Status(settings.status().code(),
                        str_cat(config.config_file.empty() ? "<defaults>" : config.config_file,
                                ": ", settings.status().message()));
  }
  return std::make_shared<const auth::Authenticator>(std::move(*settings), internal_key,
                                                     &login_providers);
}

// Prints the effective kernel config and, for every module in the modules dir,
// its effective section with defaults.
int print_config(const KernelConfig& config) {
  std::cout << "# telekernd effective configuration\n" << config.validated.to_yaml() << "\n";
  std::error_code error;
  if (!std::filesystem::is_directory(config.modules_dir, error)) return 0;
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::directory_iterator(config.modules_dir, error)) {
    if (entry.path().extension() == ".so") files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  for (const auto& file : files) {
    auto loaded = load_module(file);
    if (!loaded.ok()) continue;
    ModuleInfo info = loaded->module().info();
    YAML::Node section = child_or_undefined(config.module_sections, info.name);
    auto module_config = validate_config(
        info.config, section, {config.config_file, "modules." + info.name, telekern_environment()});
    std::cout << "# module " << info.name << " " << info.version << ": " << info.description
              << "\n";
    if (!module_config.ok()) {
      std::cout << "# invalid: " << module_config.status().message() << "\n";
      continue;
    }
    std::cout << "modules." << info.name << ":\n";
    std::istringstream lines(module_config->to_yaml());
    for (std::string line; std::getline(lines, line);) std::cout << "  " << line << "\n";
  }
  return 0;
}

// Raises the soft open-files limit to the hard one, as Redis and the Go
// runtime do: modules with many files (the broker's segments) need
// descriptors, and the usual soft default of 1024 only guards select(),
// which telekernd does not use. Returns the line to log.
std::string raise_open_files_limit() {
  struct rlimit limit {};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0)
    return std::string("open files: cannot read RLIMIT_NOFILE: ") + std::strerror(errno);
  const rlim_t soft = limit.rlim_cur;
  auto text = [](rlim_t value) {
    return value == RLIM_INFINITY ? std::string("unlimited") : std::to_string(value);
  };
  if (limit.rlim_cur == limit.rlim_max) {
    return "open files: soft limit " + text(soft) + " already equals the hard limit " +
           text(limit.rlim_max);
  }
  limit.rlim_cur = limit.rlim_max;
  if (setrlimit(RLIMIT_NOFILE, &limit) != 0 && limit.rlim_max == RLIM_INFINITY) {
    // An unlimited hard limit still stops at fs.nr_open.
    std::ifstream nr_open("/proc/sys/fs/nr_open");
    unsigned long long most = 0;
    if (nr_open >> most && most > soft) {
      limit.rlim_cur = static_cast<rlim_t>(most);
      if (setrlimit(RLIMIT_NOFILE, &limit) != 0) limit.rlim_cur = soft;
    } else {
      limit.rlim_cur = soft;
    }
  }
  getrlimit(RLIMIT_NOFILE, &limit);
  return "open files: soft limit raised from " + text(soft) + " to " + text(limit.rlim_cur) +
         " (hard limit " + text(limit.rlim_max) + ")";
}

}  // namespace

int main(int argc, char** argv) {
  // Debian builds Abseil without NDEBUG, which leaves its mutex deadlock
  // detector on: every lock gRPC takes then goes through a global graph under
  // a spinlock. A daemon has no use for it.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  CLI::App app{"telekernd: hosts telekern modules behind gRPC (health, reflection, auth, metrics)"};
  std::string config_file, ready_file;
  CommandLineOverrides overrides;
  bool print = false, hash_password = false, hash_api_key = false, version = false;
  app.add_option("-c,--config", config_file, "YAML config file (see deploy/telekernd.yaml)")
      ->check(CLI::ExistingFile);
  app.add_option("--listen", overrides.listen,
                 "gRPC address host:port (default 127.0.0.1:7070; port 0 picks one)");
  app.add_option("--http", overrides.http,
                 "HTTP address for /metrics /health /ready (default 127.0.0.1:7071)");
  app.add_option("--modules-dir", overrides.modules_dir, "directory of telekern_<name>.so modules");
  app.add_option("--data-dir", overrides.data_dir, "data directory (default ./data)");
  app.add_option("--ready-file", ready_file,
                 "write {\"grpc\":ADDR,\"http\":ADDR} here once serving (for scripts and tests)");
  app.add_flag("--print-config", print,
               "print the effective config of the kernel and every module, then exit");
  app.add_flag("--hash-password", hash_password,
               "read a password on stdin, print its hash for auth.users");
  app.add_flag("--hash-api-key", hash_api_key,
               "read an API key on stdin, print its sha256 for auth.api_keys");
  app.add_flag("--version", version, "print version and exit");
  app.footer(
      "Every config key can be overridden by TELEKERN_<KEY> (e.g. TELEKERN_LOG_LEVEL=debug,\n"
      "TELEKERN_MODULES_BROKER_MAX_PARTITIONS=8). Signals: TERM/INT drain and stop, HUP re-reads\n"
      "the file: log and auth settings apply at once, modules whose config changed reload,\n"
      "failed modules load again.\n"
      "Exit status 2 means invalid configuration.");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    return app.exit(error) == 0 ? 0 : kExitConfig;
  }

  if (version) {
    std::cout << "telekernd " << kTelekernVersion << " (" << kTelekernGitRevision << ")\n";
    return 0;
  }
  if (hash_password) {
    std::cout << auth::hash_password(read_secret("password: ")) << "\n";
    return 0;
  }
  if (hash_api_key) {
    std::cout << auth::sha256_hex(read_secret("api key: ")) << "\n";
    return 0;
  }

  auto config =
      load_kernel_config(config_file, telekern_environment(), overrides, default_modules_dir());
  if (!config.ok()) {
    std::cerr << "telekernd: " << config.status().message() << "\n";
    return kExitConfig;
  }
  if (print) return print_config(*config);

  configure_logging(config->log_format == "json" ? LogFormat::kJson : LogFormat::kText,
                    config->log_level);
  auto log = make_logger("kernel");
  route_grpc_logs();
  log->info("{}", raise_open_files_limit());
  const std::string internal_key = auth::base64url_encode(auth::random_bytes(32));
  // Modules' users (the monitor's) for Login; outlives the manager and every authenticator.
  auth::LoginProviders login_providers;
  auto authenticator = make_authenticator(*config, internal_key, login_providers);
  if (!authenticator.ok()) {
    std::cerr << "telekernd: " << authenticator.status().message() << "\n";
    return kExitConfig;
  }
  if (!(*authenticator)->enabled() &&
      (!is_loopback_address(config->listen) ||
       (!config->http.empty() && !is_loopback_address(config->http)))) {
    std::cerr << "telekernd: refusing to listen on " << config->listen
              << " without auth: configure auth.api_keys or auth.users, or listen on 127.0.0.1\n";
    return kExitConfig;
  }

  // Signals are handled by sigwait on this thread; every thread started from
  // here on inherits the blocked mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  grpc::EnableDefaultHealthCheckService(true);

  MetricsRegistry metrics;
  auto process_metrics = register_process_metrics(metrics);
  metrics
      .gauge("telekern_build_info", "Build information; value is always 1", {"version", "revision"})
      .with({kTelekernVersion, kTelekernGitRevision})
      .set(1);
  RpcMetrics rpc_metrics(metrics);

  std::mutex authenticator_mutex;
  std::shared_ptr<const auth::Authenticator> current_authenticator = *authenticator;
  auto authenticator_source = [&] {
    std::lock_guard lock(authenticator_mutex);
    return current_authenticator;
  };

  ModuleManager manager(*config, metrics, rpc_metrics, current_authenticator, &login_providers);
  auto start_time = std::chrono::system_clock::now();
  std::atomic<bool> public_metrics = config->http_public_metrics;
  HttpEndpoint http(metrics,
                    HttpHandlers{[&](bool with_modules) {
                                   nlohmann::json body{{"status", "ok"}};
                                   if (!with_modules) return body.dump();
                                   nlohmann::json modules = nlohmann::json::array();
                                   for (const auto& module : manager.list()) {
                                     modules.push_back({{"name", module.name},
                                                        {"state", module_state_name(module.state)},
                                                        {"detail", module.health.detail}});
                                   }
                                   body["modules"] = modules;
                                   return body.dump();
                                 },
                                 [&](std::string* detail) { return manager.ready(detail); },
                                 [&](std::string_view api_key, std::string_view authorization) {
                                   return http::authorize_http_viewer(*authenticator_source(),
                                                                      api_key, authorization);
                                 },
                                 [&] { return public_metrics.load(); }},
                    {.workers = config->gateway.workers});
  std::shared_ptr<const http::ConsoleFiles> console;
  if (auto dir = http::console_directory(config->console_dir)) {
    console = std::make_shared<const http::ConsoleFiles>(*dir);
  }
  http.enable_gateway(
      {[&] { return manager.gateway_channel(); }, [&] { return manager.service_names(); },
       [&](std::string_view api_key, std::string_view authorization, std::string_view path) {
         return auth::check_credentials(*authenticator_source(), api_key, authorization, path);
       },
       [&] { return manager.local_calls(); }},
      {.call_timeout = config->gateway.call_timeout,
       .max_body_bytes = config->gateway.max_body_bytes,
       .version = kTelekernVersion,
       .per_credential = {config->gateway.rate_per_credential, 0},
       .per_address = {config->gateway.rate_per_address, 0},
       .rate_limits = config->rate_limits,
       .cors_origins = config->gateway.cors_origins,
       .max_streams = config->gateway.max_streams,
       .console = console});
  std::string http_address;
  if (!config->http.empty()) {
    if (auto status = http.start(config->http); !status.ok()) {
      log->critical("{}", status.message());
      return kExitRuntime;
    }
    http_address = str_cat(config->http.substr(0, config->http.rfind(':')), ":", http.port());
  }
  auth::LoginThrottle login_throttle(metrics);
  KernelService kernel_service(manager, authenticator_source,
                               {kTelekernVersion, kTelekernGitRevision, http_address, start_time},
                               &login_throttle);
  if (auto status = manager.start({bind_service<telekern::kernel::v1::Kernel>(kernel_service)});
      !status.ok()) {
    log->critical("{}", status.message());
    return kExitRuntime;
  }
  std::string grpc_address =
      str_cat(config->listen.substr(0, config->listen.rfind(':')), ":", manager.port());
  log->info("telekernd {} serving gRPC on {} (generation {}), HTTP on {}, auth {}",
            kTelekernVersion, grpc_address, manager.generation(),
            http_address.empty() ? "off" : http_address,
            (*authenticator)->enabled() ? "on" : "off (loopback only)");
  if (console && !http_address.empty()) {
    log->info("web console at http://{}/ (from {})", http_address, console->root().string());
  }
  if (!ready_file.empty()) {
    std::ofstream out(ready_file + ".tmp");
    out << nlohmann::json{{"grpc", grpc_address}, {"http", http_address}, {"pid", getpid()}}.dump()
        << "\n";
    out.close();
    std::filesystem::rename(ready_file + ".tmp", ready_file);
  }

  while (true) {
    int signal_number = 0;
    sigwait(&signals, &signal_number);
    if (signal_number == SIGHUP) {
      auto fresh =
          load_kernel_config(config_file, telekern_environment(), overrides, default_modules_dir());
      if (!fresh.ok()) {
        log->error("SIGHUP: keeping the running config: {}", fresh.status().message());
        continue;
      }
      configure_logging(fresh->log_format == "json" ? LogFormat::kJson : LogFormat::kText,
                        fresh->log_level);
      auto fresh_authenticator = make_authenticator(*fresh, internal_key, login_providers);
      if (!fresh_authenticator.ok()) {
        log->error("SIGHUP: keeping the running auth settings: {}",
                   fresh_authenticator.status().message());
        continue;
      }
      {
        std::lock_guard lock(authenticator_mutex);
        current_authenticator = *fresh_authenticator;
      }
      manager.set_authenticator(*fresh_authenticator);
      public_metrics = fresh->http_public_metrics;
      auto reloading = manager.apply_module_sections(fresh->module_sections);
      log->info("SIGHUP: applied log and auth settings; modules with a changed config: {}",
                reloading.empty() ? "none" : join(reloading, ", "));
      continue;
    }
    log->info("received {}, draining (up to {} ms) and stopping modules",
              signal_number == SIGTERM ? "SIGTERM" : "SIGINT", config->drain_timeout.count());
    break;
  }
  manager.shutdown(/*for_exit=*/true);
  http.stop();
  log->info("stopped");
  // Every module has stopped; what is left is memory. Leaving without
  // destructors keeps gRPC 1.51's callback threads from racing the teardown
  // of the last servers and channels (an abort after a clean drain).
  spdlog::shutdown();
  std::fflush(nullptr);
  std::_Exit(0);
}
