#include "group_commit.h"

#include <chrono>
#include <map>

namespace telekern::broker {

GroupCommitter::GroupCommitter() : thread_([this] { run(); }) {}

GroupCommitter::~GroupCommitter() { stop(); }

void GroupCommitter::await(std::shared_ptr<Partition> partition, uint64_t sequence,
                           Histogram* fsync_latency, std::function<void(absl::Status)> done) {
  if (partition->durable_sequence() >= sequence) {
    done(absl::OkStatus());
    return;
  }
  {
    std::lock_guard lock(mutex_);
    if (!stopping_) {
      pending_.push_back({std::move(partition), sequence, fsync_latency, std::move(done)});
      ready_.notify_one();
      return;
    }
  }
  // Stopping: sync on the caller's thread rather than drop the request.
  auto synced = partition->sync();
  done(synced.ok() ? absl::OkStatus() : synced.status());
}

void GroupCommitter::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  ready_.notify_all();
  if (thread_.joinable()) thread_.join();
}

uint64_t GroupCommitter::fsyncs() const {
  std::lock_guard lock(mutex_);
  return fsyncs_;
}

void GroupCommitter::run() {
  while (true) {
    std::vector<Waiter> waiters;
    {
      std::unique_lock lock(mutex_);
      ready_.wait(lock, [&] { return stopping_ || !pending_.empty(); });
      if (pending_.empty()) return;
      waiters.swap(pending_);
    }
    serve(waiters);
  }
}

void GroupCommitter::serve(std::vector<Waiter>& waiters) {
  std::map<Partition*, std::vector<Waiter*>> by_partition;
  for (auto& waiter : waiters) by_partition[waiter.partition.get()].push_back(&waiter);
  for (auto& [partition, group] : by_partition) {
    absl::Status status;
    uint64_t needed = 0;
    for (auto* waiter : group) needed = std::max(needed, waiter->sequence);
    if (partition->durable_sequence() < needed) {
      auto started = std::chrono::steady_clock::now();
      auto synced = partition->sync();
      {
        std::lock_guard lock(mutex_);
        ++fsyncs_;
      }
      if (group.front()->fsync_latency) {
        group.front()->fsync_latency->observe(
            std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
      }
      status = synced.ok() ? absl::OkStatus() : synced.status();
    }
    for (auto* waiter : group) waiter->done(status);
  }
}

}  // namespace telekern::broker
