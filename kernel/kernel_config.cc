#include "kernel/kernel_config.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <memory>

#include "kernel/http/rate_limiter.h"
#include "telekern/strings.h"

namespace telekern::kernel {
namespace {

absl::Status check_one_of(const YAML::Node& node, std::initializer_list<std::string_view> allowed) {
  std::string value = node.IsScalar() ? node.Scalar() : "";
  for (auto candidate : allowed) {
    if (value == candidate) return absl::OkStatus();
  }
  std::string list;
  for (auto candidate : allowed) str_append(list, list.empty() ? "" : ", ", candidate);
  return absl::InvalidArgumentError(str_cat("'", value, "' is not one of: ", list));
}

absl::Status check_address(const YAML::Node& node) {
  std::string value = node.IsScalar() ? node.Scalar() : "";
  if (value.empty()) return absl::OkStatus();
  if (value.rfind("unix:", 0) == 0) return absl::OkStatus();
  auto colon = value.rfind(':');
  if (colon == std::string::npos || colon + 1 == value.size()) {
    return absl::InvalidArgumentError(str_cat("'", value, "' is not host:port"));
  }
  return absl::OkStatus();
}

}  // namespace

const ConfigSchema& kernel_schema() {
  static const ConfigSchema schema = {
      {"listen", ConfigType::kString, "127.0.0.1:7070",
       "gRPC address (host:port; port 0 picks one)", check_address},
      {"http", ConfigType::kString, "127.0.0.1:7071",
       "HTTP address for /metrics, /health, /ready; empty disables", check_address},
      {"http_public_metrics", ConfigType::kBool, "false",
       "Serve /metrics without credentials when auth is on (else a viewer key or token)"},
      {"http_gateway.rate_per_credential", ConfigType::kDouble, "200",
       "Gateway requests a second per API key or token (burst twice that); 0 = unlimited"},
      {"http_gateway.rate_per_address", ConfigType::kDouble, "400",
       "Gateway requests a second per client address (burst twice that); 0 = unlimited"},
      {"http_gateway.max_body_bytes", ConfigType::kInt, "4194304",
       "Largest gateway request body; larger ones get 413"},
      {"http_gateway.call_timeout", ConfigType::kDuration, "30s",
       "Deadline of unary and client-streaming calls made by the gateway"},
      {"http_gateway.workers", ConfigType::kInt, "32",
       "HTTP worker threads (each request, and each open stream, holds one while served)",
       [](const YAML::Node& value) -> absl::Status {
         return value.as<int64_t>() >= 2 ? absl::OkStatus()
                                         : absl::InvalidArgumentError("must be at least 2");
       }},
      {"http_gateway.max_streams", ConfigType::kInt, "16",
       "Server streams (SSE/NDJSON) open at once; more get 503, so at least workers - "
       "max_streams workers always serve other requests"},
      {"http_gateway.cors_origins", ConfigType::kStringList, "",
       "Origins browsers may call the gateway from (CORS); empty = CORS off"},
      {"http_console.dir", ConfigType::kString, "",
       "Directory of the web console served at /; empty = ../share/telekern/web next to the "
       "binary (when built), off = no console"},
      {"grpc_rate_per_credential", ConfigType::kDouble, "0",
       "Calls a second per credential on gRPC, gateway calls included (burst twice that); "
       "0 = unlimited"},
      {"rate_limits", ConfigType::kNode, "",
       "Calls a second per caller (credential, or client address without one; burst twice "
       "that) by route family or service: `/api/v1/: 50` limits HTTP paths under that "
       "prefix, `telekern.broker.v1.Broker: 1000` or `telekern.broker.v1.Broker/Produce: "
       "5000` limit gRPC and gateway calls alike; the longest prefix and the most specific "
       "service rule apply"},
      {"data_dir", ConfigType::kString, "./data",
       "Directory under which each module gets its own data directory"},
      {"modules_dir", ConfigType::kString, "",
       "Where telekern_<name>.so modules are found; empty = ../modules next to the binary"},
      {"load", ConfigType::kStringList, "",
       "Modules to load at start (names or paths); empty loads every module in modules_dir"},
      {"log.format", ConfigType::kString, "text", "text or json, one line per event",
       [](const YAML::Node& node) {
         return check_one_of(node, {"text", "json"});
       }},
      {"log.level", ConfigType::kString, "info", "trace, debug, info, warn, error or critical",
       [](const YAML::Node& node) {
         return check_one_of(node, {"trace", "debug", "info", "warn", "error", "critical"});
       }},
      {"drain_timeout", ConfigType::kDuration, "5s",
       "How long in-flight calls may finish on shutdown or module swap"},
      {"module_release_grace", ConfigType::kDuration, "10s",
       "After a module instance is gone (unload, reload), how long its code copy waits before "
       "it is unmapped (once no thread can still run it)"},
      {"tls.cert", ConfigType::kString, "", "PEM certificate; enables TLS"},
      {"tls.key", ConfigType::kString, "", "PEM private key for tls.cert"},
      {"tls.ca", ConfigType::kString, "",
       "PEM CA bundle; when set, clients must present certificates it signed"},
      {"auth.api_keys", ConfigType::kNode, "",
       "List of {name, sha256, role}; sha256 is the hex SHA-256 of the key (telekernd "
       "--hash-api-key)"},
      {"auth.users", ConfigType::kNode, "",
       "List of {name, password_hash, role}; hash from telekernd --hash-password"},
      {"auth.jwt_secret", ConfigType::kSecret, "",
       "HS256 key for tokens issued by Login (32+ characters; required with users)"},
      {"auth.jwt_ttl", ConfigType::kDuration, "1h", "Lifetime of tokens issued by Login"},
      {"remote_services", ConfigType::kNode, "",
       "Map of gRPC service name to host:port, for services not loaded here"},
      {"remote.api_key", ConfigType::kSecret, "",
       "API key sent (x-api-key) on calls to remote_services, for daemons with auth"},
      {"remote.tls", ConfigType::kBool, "false", "Call remote_services over TLS"},
      {"remote.ca", ConfigType::kString, "",
       "PEM CA bundle that signs the remote daemons' certificates; empty = system roots"},
      {"remote.keepalive", ConfigType::kDuration, "30s",
       "HTTP/2 keepalive ping interval on channels to other daemons (remote_services, "
       "channel_to: the proxy's upstreams), so dead peers are noticed; 0 = off"},
      {"modules", ConfigType::kNode, "",
       "One section per module (modules.<name>.<key>), validated by the module's schema"},
  };
  return schema;
}

namespace {

bool is_loopback_ip(const sockaddr* address) {
  if (address->sa_family == AF_INET) {
    const auto* v4 = reinterpret_cast<const sockaddr_in*>(address);
    return (ntohl(v4->sin_addr.s_addr) >> 24) == 127;  // 127.0.0.0/8
  }
  if (address->sa_family == AF_INET6) {
    const auto* v6 = reinterpret_cast<const sockaddr_in6*>(address);
    if (IN6_IS_ADDR_LOOPBACK(&v6->sin6_addr)) return true;
    // ::ffff:127.x.y.z
    return IN6_IS_ADDR_V4MAPPED(&v6->sin6_addr) && v6->sin6_addr.s6_addr[12] == 127;
  }
  return false;
}

}  // namespace

bool is_loopback_address(const std::string& address) {
  if (address.rfind("unix:", 0) == 0) return true;
  std::string host = address.substr(0, address.rfind(':'));
  if (!host.empty() && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  // An empty host or a wildcard binds every interface.
  if (host.empty()) return false;
  // Decide on addresses, never on spelling: "127.evil.example" is a name, and
  // a name is loopback only when everything it resolves to is.
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* resolved = nullptr;
  if (getaddrinfo(host.c_str(), nullptr, &hints, &resolved) != 0 || resolved == nullptr) {
    return false;
  }
  std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> owned(resolved, &freeaddrinfo);
  for (const addrinfo* entry = resolved; entry != nullptr; entry = entry->ai_next) {
    if (!is_loopback_ip(entry->ai_addr)) return false;
  }
  return true;
}

absl::StatusOr<KernelConfig> load_kernel_config(
    const std::string& file, const std::map<std::string, std::string>& environment,
    const CommandLineOverrides& overrides, const std::filesystem::path& default_modules_dir) {
  YAML::Node root;
  if (!file.empty()) {
    auto loaded = load_yaml_file(file);
    if (!loaded.ok()) return loaded.status();
    root = *loaded;
  }
  auto validated = validate_config(kernel_schema(), root, {file, "", environment});
  if (!validated.ok()) return validated.status();
  const Config& config = *validated;

  KernelConfig result;
  result.config_file = file;
  result.listen = overrides.listen.empty() ? config.get_string("listen") : overrides.listen;
  result.http = overrides.http.empty() ? config.get_string("http") : overrides.http;
  result.http_public_metrics = config.get_bool("http_public_metrics");
  result.gateway.rate_per_credential = config.get_double("http_gateway.rate_per_credential");
  result.gateway.rate_per_address = config.get_double("http_gateway.rate_per_address");
  result.gateway.max_body_bytes =
      static_cast<size_t>(std::max<int64_t>(0, config.get_int("http_gateway.max_body_bytes")));
  result.gateway.call_timeout = config.get_duration("http_gateway.call_timeout");
  result.gateway.cors_origins = config.get_string_list("http_gateway.cors_origins");
  result.gateway.workers = static_cast<size_t>(config.get_int("http_gateway.workers"));
  result.gateway.max_streams =
      static_cast<size_t>(std::max<int64_t>(0, config.get_int("http_gateway.max_streams")));
  if (result.gateway.max_streams >= result.gateway.workers) {
    return absl::InvalidArgumentError(
        str_cat(file, ": key 'http_gateway.max_streams': ", result.gateway.max_streams,
                " must be below http_gateway.workers (", result.gateway.workers,
                ") so requests other than streams always find a worker"));
  }
  result.console_dir = config.get_string("http_console.dir");
  result.grpc_rate_per_credential = config.get_double("grpc_rate_per_credential");
  result.data_dir = overrides.data_dir.empty() ? config.get_string("data_dir") : overrides.data_dir;
  std::string modules_dir =
      overrides.modules_dir.empty() ? config.get_string("modules_dir") : overrides.modules_dir;
  result.modules_dir =
      modules_dir.empty() ? default_modules_dir : std::filesystem::path(modules_dir);
  result.load = config.get_string_list("load");
  result.log_format = config.get_string("log.format");
  result.log_level = config.get_string("log.level");
  result.drain_timeout = config.get_duration("drain_timeout");
  result.module_release_grace = config.get_duration("module_release_grace");
  result.tls = {config.get_string("tls.cert"), config.get_string("tls.key"),
                config.get_string("tls.ca")};
  if (result.tls.enabled() && result.tls.key_file.empty()) {
    return absl::InvalidArgumentError(str_cat(file, ": key 'tls.key': required with tls.cert"));
  }
  result.api_keys = config.get_node("auth.api_keys");
  result.users = config.get_node("auth.users");
  result.jwt_secret = config.get_string("auth.jwt_secret");
  result.jwt_ttl = config.get_duration("auth.jwt_ttl");
  result.remote.api_key = config.get_string("remote.api_key");
  result.remote.tls = config.get_bool("remote.tls");
  result.remote.ca_file = config.get_string("remote.ca");
  result.remote.keepalive = std::chrono::duration_cast<std::chrono::milliseconds>(
      config.get_duration("remote.keepalive"));
  auto limits = config.get_node("rate_limits");
  if (limits.IsDefined() && limits.IsMap()) {
    for (const auto& entry : limits) {
      auto where = str_cat(file, ":", entry.first.Mark().line + 1, ": key 'rate_limits.",
                           entry.first.IsScalar() ? entry.first.Scalar() : "?", "': ");
      if (!entry.first.IsScalar() || !entry.second.IsScalar()) {
        return absl::InvalidArgumentError(
            str_cat(where, "each entry is a route prefix or service: calls a second"));
      }
      if (auto invalid = http::RateRules::invalid_scope(entry.first.Scalar())) {
        return absl::InvalidArgumentError(str_cat(where, *invalid));
      }
      double rate = 0;
      try {
        rate = entry.second.as<double>();
      } catch (const YAML::Exception&) {
        rate = -1;
      }
      if (!(rate > 0)) {
        return absl::InvalidArgumentError(
            str_cat(where, "'", entry.second.Scalar(), "' must be a number of calls a second > 0"));
      }
      result.rate_limits[entry.first.Scalar()] = rate;
    }
  } else if (limits.IsDefined() && !limits.IsNull()) {
    return absl::InvalidArgumentError(str_cat(
        file, ": key 'rate_limits': must map route prefixes or services to calls a second"));
  }
  auto remote = config.get_node("remote_services");
  if (remote.IsDefined() && remote.IsMap()) {
    for (const auto& entry : remote) {
      if (!entry.first.IsScalar() || !entry.second.IsScalar()) {
        return absl::InvalidArgumentError(
            str_cat(file, ":", entry.first.Mark().line + 1,
                    ": key 'remote_services': each entry is service.Name: host:port"));
      }
      result.remote_services[entry.first.Scalar()] = entry.second.Scalar();
    }
  } else if (remote.IsDefined() && !remote.IsNull()) {
    return absl::InvalidArgumentError(
        str_cat(file, ": key 'remote_services': must map service names to host:port"));
  }
  result.module_sections = config.get_node("modules");
  if (result.module_sections.IsDefined() && !result.module_sections.IsNull() &&
      !result.module_sections.IsMap()) {
    return absl::InvalidArgumentError(
        str_cat(file, ": key 'modules': must map module names to their settings"));
  }
  result.validated = config;
  return result;
}

}  // namespace telekern::kernel
