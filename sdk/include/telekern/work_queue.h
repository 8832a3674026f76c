// A fixed pool of threads fed by a bounded queue. gRPC handlers hand work
// here instead of blocking a gRPC thread; a full queue is refused at once.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace telekern {

class WorkQueue {
 public:
  WorkQueue(size_t threads, size_t capacity);
  ~WorkQueue();
  WorkQueue(const WorkQueue&) = delete;
  WorkQueue& operator=(const WorkQueue&) = delete;

  // False when the queue holds `capacity` items or is stopped.
  bool try_submit(std::function<void()> work);
  // Refuses new work, runs what is queued, joins the threads. Idempotent.
  void stop();
  size_t capacity() const { return capacity_; }

 private:
  void run();
  size_t capacity_;
  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<std::function<void()>> queue_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace telekern
