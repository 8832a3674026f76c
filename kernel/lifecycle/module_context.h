// The kernel's implementation of telekern::ModuleContext: one per running module.
#pragma once

#include <functional>

#include "kernel/auth/login_providers.h"
#include "kernel/routing/module_channels.h"
#include "telekern/module.h"

namespace telekern::kernel {

using CallerResolver = std::function<Caller(const grpc::ServerContextBase& call)>;

class ModuleContextImpl final : public ModuleContext {
 public:
  ModuleContextImpl(Config config, std::filesystem::path data_dir,
                    std::shared_ptr<spdlog::logger> logger, MetricsRegistry& metrics,
                    ModuleChannels& channels, CallerResolver callers,
                    auth::LoginProviders* login_providers = nullptr, std::string module = {})
      : config_(std::move(config)),
        data_dir_(std::move(data_dir)),
        logger_(std::move(logger)),
        metrics_(metrics),
        channels_(channels),
        callers_(std::move(callers)),
        login_providers_(login_providers),
        module_(std::move(module)) {}
  ~ModuleContextImpl() override { withdraw_login_providers(); }

  const Config& config() const override { return config_; }
  const std::filesystem::path& data_dir() const override { return data_dir_; }
  std::shared_ptr<spdlog::logger> logger() const override { return logger_; }
  MetricsRegistry& metrics() const override { return metrics_; }
  std::shared_ptr<grpc::Channel> channel(std::string_view service) const override {
    return channels_.for_service(service);
  }
  std::shared_ptr<grpc::Channel> channel_to(std::string_view address) const override {
    return channels_.to_address(address);
  }
  std::stop_token stop_token() const override { return stop_source_.get_token(); }
  Caller caller(const grpc::ServerContextBase& call) const override { return callers_(call); }

  void add_login_provider(const LoginProvider& provider) override {
    if (login_providers_ != nullptr) login_providers_->add(this, module_, provider);
  }

  // Every path that stops a module calls this before stop(): from then on
  // Login calls none of its providers.
  void request_stop() {
    withdraw_login_providers();
    stop_source_.request_stop();
  }
  void withdraw_login_providers() {
    if (login_providers_ != nullptr) login_providers_->remove_all(this);
  }

 private:
  Config config_;
  std::filesystem::path data_dir_;
  std::shared_ptr<spdlog::logger> logger_;
  MetricsRegistry& metrics_;
  ModuleChannels& channels_;
  CallerResolver callers_;
  auth::LoginProviders* login_providers_;
  std::string module_;
  std::stop_source stop_source_;
};

}  // namespace telekern::kernel
