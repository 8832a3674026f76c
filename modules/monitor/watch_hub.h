// Fan-out of live events (alert changes, samples) to the open Watch streams.
// Each subscriber has a bounded queue; one that falls behind is cut off (its
// stream ends and the client reconnects, getting a fresh snapshot) rather
// than silently losing events or slowing ingestion.
#pragma once

#include <absl/status/status.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string_view>
#include <vector>

#include "telekern/strings.h"

namespace telekern::monitor {

template <typename Event>
class WatchHub {
 public:
  class Subscription {
   public:
    explicit Subscription(size_t capacity) : capacity_(capacity) {}
    // The next event, or nullopt after `timeout` or when cut off (see overflowed()).
    std::optional<Event> next(std::chrono::milliseconds timeout) {
      std::unique_lock lock(mutex_);
      ready_.wait_for(lock, timeout, [&] { return !queue_.empty() || overflowed_; });
      if (queue_.empty()) return std::nullopt;
      Event event = std::move(queue_.front());
      queue_.pop_front();
      return event;
    }
    bool overflowed() const {
      std::lock_guard lock(mutex_);
      return overflowed_ && queue_.empty();
    }
    // How a cut-off watcher's call ends: RESOURCE_EXHAUSTED naming the cause,
    // so a client tells it from a cancel and knows to reconnect.
    absl::Status overflow_status(std::string_view watch, std::string_view events) const {
      return absl::ResourceExhaustedError(str_cat(
          watch, ": this watcher fell ", capacity_, " ", events,
          " behind (it read more slowly than they arrived) and was cut off so ingestion never "
          "waits for it; reconnect to start again from the current state"));
    }

   private:
    friend class WatchHub;
    void push(const Event& event) {
      {
        std::lock_guard lock(mutex_);
        if (overflowed_) return;
        if (queue_.size() >= capacity_) {
          overflowed_ = true;
        } else {
          queue_.push_back(event);
        }
      }
      ready_.notify_one();
    }
    size_t capacity_;
    mutable std::mutex mutex_;
    std::condition_variable ready_;
    std::deque<Event> queue_;
    bool overflowed_ = false;
  };

  std::shared_ptr<Subscription> subscribe(size_t capacity = 4096) {
    auto subscription = std::make_shared<Subscription>(capacity);
    std::lock_guard lock(mutex_);
    subscribers_.push_back(subscription);
    return subscription;
  }

  void publish(const Event& event) {
    std::lock_guard lock(mutex_);
    for (auto it = subscribers_.begin(); it != subscribers_.end();) {
      if (auto subscription = it->lock()) {
        subscription->push(event);
        ++it;
      } else {
        it = subscribers_.erase(it);
      }
    }
  }

  bool empty() const {
    std::lock_guard lock(mutex_);
    return subscribers_.empty();
  }

 private:
  mutable std::mutex mutex_;
  std::vector<std::weak_ptr<Subscription>> subscribers_;
};

}  // namespace telekern::monitor
