// A topic: its settings (topic.conf) and its partitions, one directory each.
// Consumers wait on the topic's change counter, bumped by every append and
// every group event, instead of polling.
#pragma once

#include <absl/status/status.h>
#include <absl/status/statusor.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <stop_token>
#include <string>
#include <vector>

#include "partition.h"

namespace telekern::broker {

struct TopicSpec {
  uint32_t partitions = 4;
  int64_t retention_ms = 0;      // 0 = forever
  uint64_t retention_bytes = 0;  // 0 = unlimited
  uint64_t segment_bytes = 64u << 20;
};

// Topic names: 1-200 of [A-Za-z0-9._-], not "." or "..".
absl::Status validate_topic_name(std::string_view name);

class Topic {
 public:
  static absl::StatusOr<std::unique_ptr<Topic>> create(const std::filesystem::path& directory,
                                                       std::string name, TopicSpec spec,
                                                       uint32_t index_interval_bytes,
                                                       std::shared_ptr<spdlog::logger> logger);
  static absl::StatusOr<std::unique_ptr<Topic>> open(const std::filesystem::path& directory,
                                                     std::string name,
                                                     uint32_t index_interval_bytes,
                                                     std::shared_ptr<spdlog::logger> logger);

  const std::string& name() const { return name_; }
  TopicSpec spec() const;
  uint32_t partition_count() const;
  // nullptr when the partition does not exist.
  std::shared_ptr<Partition> partition(uint32_t id) const;
  std::vector<std::shared_ptr<Partition>> partitions() const;
  // Grows the topic to `count` partitions (no-op when it has as many).
  absl::Status grow(uint32_t count);
  uint64_t next_round_robin() { return round_robin_.fetch_add(1, std::memory_order_relaxed); }

  // Change notification for consumers.
  uint64_t version() const;
  void notify();
  // Waits until version() != seen, the timeout passes or stop is requested.
  void wait_for_change(uint64_t seen, std::chrono::milliseconds timeout,
                       const std::stop_token& stop);
  // Calls `wake` once version() != seen: at once (returning 0) when it
  // already is, else from the next notify(); returns an id for
  // remove_waiter() (a session that ended before the change).
  uint64_t add_waiter(uint64_t seen, std::function<void()> wake);
  void remove_waiter(uint64_t id);

  absl::Status remove();

 private:
  Topic(std::filesystem::path directory, std::string name, TopicSpec spec, uint32_t index_interval,
        std::shared_ptr<spdlog::logger> logger)
      : directory_(std::move(directory)),
        name_(std::move(name)),
        spec_(spec),
        index_interval_bytes_(index_interval),
        logger_(std::move(logger)) {}
  absl::Status write_spec() const;
  absl::Status open_partitions();

  std::filesystem::path directory_;
  std::string name_;
  TopicSpec spec_;
  uint32_t index_interval_bytes_;
  std::shared_ptr<spdlog::logger> logger_;
  mutable std::shared_mutex mutex_;
  std::vector<std::shared_ptr<Partition>> partitions_;
  std::atomic<uint64_t> round_robin_{0};

  mutable std::mutex change_mutex_;
  std::condition_variable_any changed_;
  uint64_t version_ = 0;
  uint64_t next_waiter_ = 0;
  std::map<uint64_t, std::function<void()>> waiters_;  // called by the next notify()
};

}  // namespace telekern::broker
