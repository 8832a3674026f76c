// A telekernd kernel in the benchmark's own process: auth on (one viewer
// API key), the RPC metrics interceptor, and the ping fixture module loaded,
// so a benchmark measures the full call path next to a bare peer.
#pragma once

#include <absl/status/statusor.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include "kernel/auth/crypto.h"
#include "kernel/kernel_config.h"
#include "kernel/kernel_service.h"
#include "kernel/lifecycle/module_manager.h"

namespace telekern::kernel {

struct BenchKernel {
  // Writes the config under `dir`, starts the kernel with the Kernel service
  // and the ping module; calls need `x-api-key: <api_key>`.
  static absl::StatusOr<std::unique_ptr<BenchKernel>> start(const std::filesystem::path& dir,
                                                            const std::string& api_key) {
    std::ofstream(dir / "telekernd.yaml")
        << "listen: 127.0.0.1:0\nhttp: ''\nload: [" << TELEKERN_BUILD_DIR
        << "/test-modules/telekern_ping.so]\nauth:\n  api_keys:\n    - {name: bench, sha256: "
        << auth::sha256_hex(api_key) << ", role: viewer}\n";
    auto config = load_kernel_config((dir / "telekernd.yaml").string(), {},
                                     {"", "", "", (dir / "data").string()}, "");
    if (!config.ok()) return config.status();
    auto settings =
        auth::parse_auth_settings(config->api_keys, config->users, "", std::chrono::seconds(3600));
    if (!settings.ok()) return settings.status();
    auto kernel = std::make_unique<BenchKernel>(*config, *settings);
    auto status =
        kernel->manager.start({bind_service<telekern::kernel::v1::Kernel>(kernel->kernel_service)});
    if (!status.ok()) return status;
    return kernel;
  }

  BenchKernel(KernelConfig kernel_config, const auth::AuthSettings& settings)
      : config(std::move(kernel_config)),
        authenticator(std::make_shared<const auth::Authenticator>(settings, "internal")),
        manager(config, metrics, rpc_metrics, authenticator),
        kernel_service(manager, [this] { return authenticator; }, {"bench", "bench", "", {}}) {}

  KernelConfig config;
  MetricsRegistry metrics;
  RpcMetrics rpc_metrics{metrics};
  std::shared_ptr<const auth::Authenticator> authenticator;
  ModuleManager manager;
  KernelService kernel_service;
};

}  // namespace telekern::kernel
