// The daemon's own settings, declared once: validation, environment overrides
// (TELEKERN_<KEY>), --print-config and the README table follow from kernel_schema().
#pragma once

#include <absl/status/statusor.h>
#include <yaml-cpp/yaml.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <string>

#include "kernel/routing/public_server.h"
#include "telekern/config.h"

namespace telekern::kernel {

const ConfigSchema& kernel_schema();

struct KernelConfig {
  std::string config_file;  // "" when running on defaults
  std::string listen;
  std::string http;
  bool http_public_metrics = false;  // /metrics without credentials when auth is on
  struct Gateway {
    double rate_per_credential = 200;
    double rate_per_address = 400;
    size_t max_body_bytes = 4 << 20;
    std::chrono::milliseconds call_timeout{30'000};
    std::vector<std::string> cors_origins;
    size_t workers = 32;
    size_t max_streams = 16;
  } gateway;                            // http_gateway.*
  std::string console_dir;              // http_console.dir: "" = default, "off" = none
  double grpc_rate_per_credential = 0;  // 0: unlimited
  // rate_limits: route family ("/api/v1/") or service/method -> calls a
  // second per caller (http::RateRules)
  std::map<std::string, double> rate_limits;
  std::filesystem::path data_dir;
  std::filesystem::path modules_dir;
  std::vector<std::string> load;  // modules to load at start; empty = all in modules_dir
  std::string log_format;
  std::string log_level;
  std::chrono::milliseconds drain_timeout{5000};
  std::chrono::milliseconds module_release_grace{10000};
  TlsSettings tls;
  YAML::Node api_keys;
  YAML::Node users;
  std::string jwt_secret;
  std::chrono::milliseconds jwt_ttl{3600 * 1000};
  std::map<std::string, std::string> remote_services;  // service name -> host:port
  struct Remote {
    std::string api_key;
    bool tls = false;
    std::string ca_file;
    std::chrono::milliseconds keepalive{30000};
  } remote;                    // how channels to remote_services connect
  YAML::Node module_sections;  // "modules:" map, validated per module when it loads
  Config validated;            // for GetConfig and --print-config
};

struct CommandLineOverrides {
  std::string listen, http, modules_dir, data_dir;
};

// Reads `file` (may be empty), applies TELEKERN_* from `environment`, then the
// command line. Errors name file, line and key.
absl::StatusOr<KernelConfig> load_kernel_config(
    const std::string& file, const std::map<std::string, std::string>& environment,
    const CommandLineOverrides& overrides, const std::filesystem::path& default_modules_dir);

// Whether a host:port names only loopback: an IP in 127.0.0.0/8 or ::1, or a
// name that resolves to nothing else. Unresolvable names are not loopback.
bool is_loopback_address(const std::string& address);

}  // namespace telekern::kernel
