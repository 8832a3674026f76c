// Group commit for FSYNC produces: callers register "tell me when partition P
// is durable up to sequence S"; one thread runs one fdatasync per partition
// for everyone waiting, so a single fsync covers every batch appended before it.
#pragma once

#include <absl/status/status.h>

#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "partition.h"
#include "telekern/metrics.h"

namespace telekern::broker {

class GroupCommitter {
 public:
  GroupCommitter();
  ~GroupCommitter();
  // Calls done(status) from the committer thread once `partition` is durable
  // up to `sequence` (or at once when it already is). `fsync_latency` may be null.
  void await(std::shared_ptr<Partition> partition, uint64_t sequence, Histogram* fsync_latency,
             std::function<void(absl::Status)> done);
  // Syncs and answers everything pending, then joins. Idempotent.
  void stop();
  uint64_t fsyncs() const;

 private:
  struct Waiter {
    std::shared_ptr<Partition> partition;
    uint64_t sequence;
    Histogram* fsync_latency;
    std::function<void(absl::Status)> done;
  };
  void run();
  void serve(std::vector<Waiter>& waiters);

  mutable std::mutex mutex_;
  std::condition_variable ready_;
  std::vector<Waiter> pending_;
  bool stopping_ = false;
  uint64_t fsyncs_ = 0;
  std::thread thread_;
};

}  // namespace telekern::broker
