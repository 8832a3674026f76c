#include "live_feed.h"

#include <algorithm>

namespace telekern::collector {
namespace {
constexpr size_t kQueueLimit = 10'000;
}

bool WatchFilter::matches(const TelemetryPoint& point) const {
  if (!gpu.empty() && point.uuid != gpu && point.device != gpu) return false;
  if (!host.empty() && point.hostname != host) return false;
  if (!metrics.empty() &&
      std::find(metrics.begin(), metrics.end(), point.metric_name) == metrics.end())
    return false;
  return true;
}

std::optional<TelemetryPoint> LiveFeed::Subscription::next(std::chrono::milliseconds timeout,
                                                           std::stop_token stop) {
  std::unique_lock lock(mutex_);
  ready_.wait_for(lock, stop, timeout, [&] { return !queue_.empty(); });
  if (queue_.empty()) return std::nullopt;
  TelemetryPoint point = std::move(queue_.front());
  queue_.pop_front();
  return point;
}

uint64_t LiveFeed::Subscription::dropped() const {
  std::lock_guard lock(mutex_);
  return dropped_;
}

void LiveFeed::Subscription::offer(const TelemetryPoint& point) {
  if (!filter_.matches(point)) return;
  {
    std::lock_guard lock(mutex_);
    if (queue_.size() >= kQueueLimit) {
      queue_.pop_front();
      ++dropped_;
    }
    queue_.push_back(point);
  }
  ready_.notify_one();
}

std::shared_ptr<LiveFeed::Subscription> LiveFeed::subscribe(WatchFilter filter) {
  auto subscription = std::make_shared<Subscription>(std::move(filter));
  std::lock_guard lock(mutex_);
  subscriptions_.push_back(subscription);
  return subscription;
}

bool LiveFeed::has_subscribers() const {
  std::lock_guard lock(mutex_);
  return std::any_of(subscriptions_.begin(), subscriptions_.end(),
                     [](const auto& weak) { return !weak.expired(); });
}

void LiveFeed::publish(const std::vector<TelemetryPoint>& points) {
  std::vector<std::shared_ptr<Subscription>> live;
  {
    std::lock_guard lock(mutex_);
    std::erase_if(subscriptions_, [](const auto& weak) { return weak.expired(); });
    for (const auto& weak : subscriptions_)
      if (auto subscription = weak.lock()) live.push_back(std::move(subscription));
  }
  for (const auto& subscription : live)
    for (const auto& point : points) subscription->offer(point);
}

}  // namespace telekern::collector
