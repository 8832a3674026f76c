// The channels modules are handed: the in-process channel to the public
// server (calls as the kernel), channels to remote_services and to any other
// daemon (ModuleContext::channel_to), and the retired in-process channels of
// destroyed instances, kept until no forwarded call can still hold them.
#pragma once

#include <grpcpp/channel.h>

#include <chrono>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "telekern/channel.h"

namespace telekern::kernel {

class ModuleChannels {
 public:
  // `remote`: how channels to other daemons connect (TLS, CA, API key);
  // `remote_services`: service name -> host:port of the daemon serving it.
  ModuleChannels(ChannelOptions remote, std::map<std::string, std::string> remote_services);

  // The in-process channel to the public server, set once it listens.
  void set_local(std::shared_ptr<grpc::Channel> channel);
  // Local when `service` is not a remote service, else the channel to its daemon.
  std::shared_ptr<grpc::Channel> for_service(std::string_view service);
  // A channel to the daemon at `address`, made once per address.
  std::shared_ptr<grpc::Channel> to_address(std::string_view address);

  // Keeps `channel` until `until`: in gRPC 1.51 a channel whose last
  // reference goes inside a callback (a forwarded call deleting itself in
  // OnDone) can abort the process.
  void retire(std::shared_ptr<grpc::Channel> channel, std::chrono::steady_clock::time_point until);
  // Releases retired channels whose time has come (every one with max()).
  void drop_retired(std::chrono::steady_clock::time_point now);
  // Drops the local channel (shutdown).
  void reset_local();

 private:
  ChannelOptions remote_;
  std::map<std::string, std::string> remote_services_;
  std::mutex mutex_;
  std::shared_ptr<grpc::Channel> local_;
  std::map<std::string, std::shared_ptr<grpc::Channel>, std::less<>> by_address_;
  std::deque<std::pair<std::chrono::steady_clock::time_point, std::shared_ptr<grpc::Channel>>>
      retired_;  // oldest first
};

}  // namespace telekern::kernel
