// Feeds WatchTelemetry from the topic itself, so a watcher on any instance
// sees the points of every instance of the group (a collector writes only
// its own partitions). While someone watches, the tap reads the topic in a
// group of its own (`<group>-watch-<instance>`), starting at the end: only
// points published after the watch began are shown. It commits what it read
// so the broker does not count the tap as a lagging reader, and skips what
// was already on the topic when it (re)started.
#pragma once

#include <spdlog/logger.h>

#include <memory>
#include <stop_token>
#include <string>

#include "live_feed.h"
#include "telekern/stream.h"

namespace telekern::collector {

struct WatchTapSettings {
  std::string topic = "telemetry";
  std::string group;  // the tap's own group
  stream::StreamConfig stream;
};

class WatchTap {
 public:
  WatchTap(WatchTapSettings settings, LiveFeed& feed, std::shared_ptr<spdlog::logger> log);
  // Follows the topic while the feed has subscribers, until `stop`.
  void run(std::stop_token stop);

 private:
  // Reads and fans out until nobody watched for a while; false when stopped.
  void follow(stream::Consumer& consumer, std::stop_token stop);

  WatchTapSettings settings_;
  LiveFeed& feed_;
  std::shared_ptr<spdlog::logger> log_;
};

}  // namespace telekern::collector
