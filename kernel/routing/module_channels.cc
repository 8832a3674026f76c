#include "kernel/routing/module_channels.h"

#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>

#include <vector>

#include "telekern/log.h"

namespace telekern::kernel {

ModuleChannels::ModuleChannels(ChannelOptions remote,
                               std::map<std::string, std::string> remote_services)
    : remote_(std::move(remote)), remote_services_(std::move(remote_services)) {}

void ModuleChannels::set_local(std::shared_ptr<grpc::Channel> channel) {
  std::lock_guard lock(mutex_);
  local_ = std::move(channel);
}

std::shared_ptr<grpc::Channel> ModuleChannels::for_service(std::string_view service) {
  std::string address;
  {
    std::lock_guard lock(mutex_);
    auto remote = remote_services_.find(std::string(service));
    if (remote == remote_services_.end()) return local_;
    address = remote->second;
  }
  return to_address(address);
}

std::shared_ptr<grpc::Channel> ModuleChannels::to_address(std::string_view address) {
  std::lock_guard lock(mutex_);
  if (auto it = by_address_.find(address); it != by_address_.end()) return it->second;
  ChannelOptions options = remote_;
  options.target = std::string(address);
  auto made = make_channel(options);
  std::shared_ptr<grpc::Channel> channel;
  if (made.ok()) {
    channel = std::move(*made);
  } else {
    // remote.ca is checked when the config loads; should the file vanish
    // later, calls fail rather than go out without the TLS asked for.
    make_logger("kernel")->error("channel to {}: {}", address, made.status().message());
    channel = grpc::CreateChannel("unix:/nonexistent/telekern-remote-misconfigured",
                                  grpc::InsecureChannelCredentials());
  }
  by_address_.emplace(std::string(address), channel);
  return channel;
}

void ModuleChannels::retire(std::shared_ptr<grpc::Channel> channel,
                            std::chrono::steady_clock::time_point until) {
  if (!channel) return;
  std::lock_guard lock(mutex_);
  retired_.emplace_back(until, std::move(channel));
}

void ModuleChannels::drop_retired(std::chrono::steady_clock::time_point now) {
  std::vector<std::shared_ptr<grpc::Channel>> expired;  // released outside the lock
  std::lock_guard lock(mutex_);
  while (!retired_.empty() && retired_.front().first <= now) {
    expired.push_back(std::move(retired_.front().second));
    retired_.pop_front();
  }
}

void ModuleChannels::reset_local() {
  std::lock_guard lock(mutex_);
  local_.reset();
}

}  // namespace telekern::kernel
