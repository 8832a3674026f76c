#include "telekern/service/polled_stream.h"

namespace telekern {

StepScheduler::StepScheduler(size_t threads) {
  if (threads == 0) threads = 1;
  for (size_t i = 0; i < threads; ++i) threads_.emplace_back([this] { run(); });
}

StepScheduler::~StepScheduler() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  changed_.notify_all();
  for (auto& thread : threads_) thread.join();
}

void StepScheduler::post(std::function<void()> work) {
  {
    std::lock_guard lock(mutex_);
    ready_.push_back(std::move(work));
  }
  changed_.notify_one();
}

size_t StepScheduler::timers() const {
  std::lock_guard lock(mutex_);
  return timed_.size();
}

void StepScheduler::post_at(Clock::time_point when, std::function<void()> work) {
  bool earliest;
  {
    std::lock_guard lock(mutex_);
    auto it = timed_.emplace(when, std::move(work));
    earliest = it == timed_.begin();
  }
  // A thread sleeping until a later time must wake to honour this one.
  if (earliest) changed_.notify_one();
}

void StepScheduler::run() {
  std::unique_lock lock(mutex_);
  while (true) {
    if (stopping_) return;
    auto now = Clock::now();
    while (!timed_.empty() && timed_.begin()->first <= now) {
      ready_.push_back(std::move(timed_.begin()->second));
      timed_.erase(timed_.begin());
    }
    if (!ready_.empty()) {
      auto work = std::move(ready_.front());
      ready_.pop_front();
      if (!ready_.empty()) changed_.notify_one();
      lock.unlock();
      work();
      work = nullptr;  // destroy captures outside the lock
      lock.lock();
      continue;
    }
    if (timed_.empty()) {
      changed_.wait(lock);
    } else {
      changed_.wait_until(lock, timed_.begin()->first);
    }
  }
}

}  // namespace telekern
