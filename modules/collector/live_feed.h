// Points just written, fanned out to WatchTelemetry subscribers. A slow
// subscriber loses its oldest points (bounded queue), never the collector's time.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>
#include <vector>

#include "telemetry_point.h"

namespace telekern::collector {

struct WatchFilter {
  std::string gpu;   // uuid or device; empty = any
  std::string host;  // empty = any
  std::vector<std::string> metrics;
  bool matches(const TelemetryPoint& point) const;
};

class LiveFeed {
 public:
  class Subscription {
   public:
    explicit Subscription(WatchFilter filter) : filter_(std::move(filter)) {}
    // The next point, or nullopt after `timeout` or on stop.
    std::optional<TelemetryPoint> next(std::chrono::milliseconds timeout, std::stop_token stop);
    uint64_t dropped() const;

   private:
    friend class LiveFeed;
    void offer(const TelemetryPoint& point);
    WatchFilter filter_;
    mutable std::mutex mutex_;
    std::condition_variable_any ready_;
    std::deque<TelemetryPoint> queue_;
    uint64_t dropped_ = 0;
  };

  std::shared_ptr<Subscription> subscribe(WatchFilter filter);
  void publish(const std::vector<TelemetryPoint>& points);
  bool has_subscribers() const;

 private:
  mutable std::mutex mutex_;
  std::vector<std::weak_ptr<Subscription>> subscriptions_;
};

}  // namespace telekern::collector
