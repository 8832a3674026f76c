// The module ABI: the interface every telekern module implements and the one
// macro that exports it. The kernel loads modules with Boost.DLL.
//
// Lifecycle contract (the kernel relies on every word of it):
//  - The kernel reads telekern_module_abi first and refuses the module when
//    the major version differs or the module's minor is newer than the kernel's.
//  - info() and services() may be called before start(); services() returns
//    objects owned by the module that live until the module is destroyed.
//    Services are protoc-generated (`Foo::CallbackService` subclasses get the
//    fast path: the kernel calls their unary handlers straight from its public
//    server; any other kind is reached through an in-process hop). Those
//    that also derive from LocalUnaryMethods (service/local_unary.h) have
//    their named unary handlers run by the HTTP gateway without gRPC.
//  - start() returns quickly: long work runs on the module's own threads,
//    watching context.stop_token(). An error status means "not started"; the
//    kernel then calls stop() and destroys the module.
//  - health() is cheap and thread-safe; it is polled about once a second.
//  - stop() is idempotent and safe without start(). After stop() returns the
//    module makes no further calls into the context and the kernel calls
//    nothing but the destructor. Handlers already running when stop() is
//    called may still finish (the kernel turns new calls away first); they
//    must answer an error rather than crash.
//  - No exception leaves any of these functions; errors are status values.
//  - The module object is destroyed before its library is unloaded.
#pragma once

#include <absl/status/status.h>
#include <grpcpp/channel.h>
#include <grpcpp/impl/service_type.h>
#include <grpcpp/server_context.h>
#include <spdlog/logger.h>

#include <boost/config.hpp>
#include <boost/dll/alias.hpp>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <stop_token>
#include <string>
#include <string_view>
#include <vector>

#include "telekern/config.h"
#include "telekern/config_map.h"
#include "telekern/log.h"
#include "telekern/metrics.h"

namespace telekern {

struct AbiVersion {
  uint32_t major = 0;
  uint32_t minor = 0;
};

// Bump minor for additions old modules can ignore, major for anything else.
// 2.0: ModuleInfo::validate, ModuleContext::channel_to(), Config keeps where values came from.
// 2.1: ModuleContext::add_login_provider() (appended to the vtable; 2.0 modules never call it).
inline constexpr AbiVersion kAbiVersion{2, 1};

struct ModuleInfo {
  std::string name;     // short name, e.g. "broker"; also the config section
  std::string version;  // module version, semver
  std::string description;
  ConfigSchema config;  // every key the module reads, with defaults
  // Rules across keys, run on the section validated against `config`. The
  // kernel runs it with the per-key checks before start() and before it
  // stops a running instance for a reload, so a refused change keeps it.
  SectionCheck validate;
};

enum class HealthState { kServing, kDegraded, kNotServing };

struct ModuleHealth {
  HealthState state = HealthState::kServing;
  std::string detail;  // why it is not serving; empty when healthy
};

// A gRPC service a module serves, with its full name ("telekern.broker.v1.Broker").
struct ServiceBinding {
  std::string name;
  grpc::Service* service = nullptr;
};

// bind_service<telekern::broker::v1::Broker>(impl) names impl after the generated service.
template <typename GeneratedService>
ServiceBinding bind_service(grpc::Service& implementation) {
  return {GeneratedService::service_full_name(), &implementation};
}

// Who made a call, as the kernel authenticated it. role is "viewer",
// "operator" or "admin"; calls from other modules are {"kernel", "admin"},
// and without configured credentials every caller is {"anonymous", "admin"}.
struct Caller {
  std::string subject;
  std::string role;
};

// A user a module keeps, as the kernel's Login needs it.
struct LoginCredentials {
  // PBKDF2 hash as telekern/crypto.h's hash_password() writes it; never the password.
  std::string password_hash;
  std::string role;  // "viewer", "operator" or "admin"
};

// Lets the kernel's Login sign in users a module keeps (the monitor's users):
// Login tries the kernel's auth.users first, then each provider in the order
// they were added. The kernel verifies the password itself, so every login
// costs the same hash work and the token it issues works for every module.
class BOOST_SYMBOL_VISIBLE LoginProvider {
 public:
  virtual ~LoginProvider() = default;
  // The credentials of `user`, or nullopt when the module does not know it.
  // Thread-safe and cheap: a lookup, no hashing.
  virtual std::optional<LoginCredentials> find_login(std::string_view user) const = 0;
};

// What the kernel hands a module at start. Owned by the kernel; valid until
// the module's stop() returns.
class ModuleContext {
 public:
  virtual ~ModuleContext() = default;
  // The module's config section, validated against info().config, defaults filled.
  virtual const Config& config() const = 0;
  // A directory only this module writes to; created by the kernel.
  virtual const std::filesystem::path& data_dir() const = 0;
  // Logger whose lines carry the module's name.
  virtual std::shared_ptr<spdlog::logger> logger() const = 0;
  // The process-wide registry served on /metrics.
  virtual MetricsRegistry& metrics() const = 0;
  // A channel to the named gRPC service (e.g. "telekern.broker.v1.Broker"),
  // local when that service is loaded here, else the configured remote address.
  virtual std::shared_ptr<grpc::Channel> channel(std::string_view service) const = 0;
  // A channel to another telekernd at `address` (host:port), with the
  // kernel's remote.* credentials (TLS, CA, API key); one per address.
  virtual std::shared_ptr<grpc::Channel> channel_to(std::string_view address) const = 0;
  // Requested when the module is being stopped.
  virtual std::stop_token stop_token() const = 0;
  // The caller of a call this module is serving (the kernel has already
  // enforced the method's min_role). Clients cannot forge it: an identity
  // the router forwards carries the kernel's own proof, and x-telekern-*
  // metadata a client writes itself is ignored.
  virtual Caller caller(const grpc::ServerContextBase& call) const = 0;
  // (ABI 2.1) Offers `provider`'s users to the kernel's Login. The kernel
  // stops calling it before it calls the module's stop() (and waits for a
  // lookup in progress), so it must live until stop() is called.
  virtual void add_login_provider(const LoginProvider& provider) = 0;
};

class BOOST_SYMBOL_VISIBLE Module {
 public:
  virtual ~Module() = default;
  virtual ModuleInfo info() const = 0;
  virtual absl::Status start(ModuleContext& context) = 0;
  virtual std::vector<ServiceBinding> services() = 0;
  virtual ModuleHealth health() const = 0;
  virtual void stop() = 0;
};

using ModuleAbiFunction = AbiVersion();
using ModuleCreateFunction = std::unique_ptr<Module>();

inline constexpr const char* kModuleAbiSymbol = "telekern_module_abi";
inline constexpr const char* kModuleCreateSymbol = "telekern_module_create";

}  // namespace telekern

// Exports the ABI version a module was built against and its factory.
// Use once per module, at global scope: TELEKERN_MODULE(telekern::broker::BrokerModule)
#define TELEKERN_MODULE_WITH_ABI(ModuleClass, abi_major, abi_minor)                    \
  namespace {                                                                          \
  ::telekern::AbiVersion telekern_module_abi_impl() { return {abi_major, abi_minor}; } \
  std::unique_ptr<::telekern::Module> telekern_module_create_impl() {                  \
    return std::make_unique<ModuleClass>();                                            \
  }                                                                                    \
  }                                                                                    \
  BOOST_DLL_ALIAS(telekern_module_abi_impl, telekern_module_abi)                       \
  BOOST_DLL_ALIAS(telekern_module_create_impl, telekern_module_create)

#define TELEKERN_MODULE(ModuleClass)                                   \
  TELEKERN_MODULE_WITH_ABI(ModuleClass, ::telekern::kAbiVersion.major, \
                           ::telekern::kAbiVersion.minor)
