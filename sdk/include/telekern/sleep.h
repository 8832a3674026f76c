// Sleeping that a stop request cuts short: for retry pauses and pacing in
// threads that must end promptly when their module stops.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <stop_token>

namespace telekern {

// Sleeps until `until`, or until `stop` is requested; true when the whole
// time passed, false when stopped.
inline bool sleep_until(std::chrono::steady_clock::time_point until, std::stop_token stop) {
  std::mutex mutex;
  std::condition_variable_any wake;
  std::unique_lock lock(mutex);
  wake.wait_until(lock, stop, until, [] { return false; });
  return !stop.stop_requested();
}

inline bool sleep_for(std::chrono::steady_clock::duration delay, std::stop_token stop) {
  return sleep_until(std::chrono::steady_clock::now() + delay, std::move(stop));
}

}  // namespace telekern
