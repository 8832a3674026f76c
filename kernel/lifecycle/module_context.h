// The kernel's implementation of telekern::ModuleContext: one per running module.
#pragma once

#include <functional>

#include "kernel/routing/module_channels.h"
#include "telekern/module.h"

namespace telekern::kernel {

using CallerResolver = std::function<Caller(const grpc::ServerContextBase& call)>;

class ModuleContextImpl final : public ModuleContext {
 public:
  ModuleContextImpl(Config config, std::filesystem::path data_dir,
                    std::shared_ptr<spdlog::logger> logger, MetricsRegistry& metrics,
                    ModuleChannels& channels, CallerResolver callers)
      : config_(std::move(config)),
        data_dir_(std::move(data_dir)),
        logger_(std::move(logger)),
        metrics_(metrics),
        channels_(channels),
        callers_(std::move(callers)) {}

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

  void request_stop() { stop_source_.request_stop(); }

 private:
  Config config_;
  std::filesystem::path data_dir_;
  std::shared_ptr<spdlog::logger> logger_;
  MetricsRegistry& metrics_;
  ModuleChannels& channels_;
  CallerResolver callers_;
  std::stop_source stop_source_;
};

}  // namespace telekern::kernel
