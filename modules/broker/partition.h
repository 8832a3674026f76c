// One partition of a topic: a directory of segments, appended to at the end,
// read anywhere, trimmed from the front by retention. Appends go to the page
// cache; sync() makes everything appended before it durable (group commit).
#pragma once

#include <absl/status/status.h>
#include <absl/status/statusor.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <vector>

#include "record.h"
#include "segment.h"

namespace spdlog {
class logger;
}

namespace telekern::broker {

struct PartitionOptions {
  uint64_t segment_bytes = 64u << 20;
  uint32_t index_interval_bytes = 4096;
};

struct PartitionStats {
  uint64_t start_offset = 0;
  uint64_t end_offset = 0;
  uint64_t bytes = 0;
  uint32_t segments = 0;
};

struct AppendResult {
  uint64_t first_offset = 0;
  uint32_t count = 0;
  uint64_t sync_sequence = 0;  // pass to durable_sequence() comparisons / sync()
};

// Storage faults a partition met, by kind (the label of
// telekern_broker_storage_faults_total): torn_tail (a cut at recovery),
// corrupt_batch (an unreadable range inside the log), missing_offsets (a gap
// between segment files: one missing, empty or cut), offsets_skipped (new
// offsets moved past a cut, so none is reused), index_rebuilt.
using FaultCounts = std::map<std::string, uint64_t>;

class Partition {
 public:
  // Opens (or creates) the partition in `directory`, recovering the active
  // segment: a torn or corrupt tail is cut at the last good batch and logged.
  static absl::StatusOr<std::unique_ptr<Partition>> open(const std::filesystem::path& directory,
                                                         uint32_t id, PartitionOptions options,
                                                         std::shared_ptr<spdlog::logger> logger);
  ~Partition();

  uint32_t id() const { return id_; }
  const std::filesystem::path& directory() const { return directory_; }

  absl::StatusOr<AppendResult> append(const std::vector<Record>& records);
  // Whether an append now would be a write to the page cache and no more:
  // no append or roll holds the partition and no segment roll (an fsync of
  // the sealed segment) is due. A hint: it can change right after.
  bool append_is_quick() const;
  // Makes every append that returned before this call durable; concurrent
  // callers share one fdatasync. Returns the sequence now durable.
  absl::StatusOr<uint64_t> sync();
  uint64_t durable_sequence() const;
  uint64_t appended_sequence() const;

  absl::StatusOr<std::vector<StoredRecord>> read(uint64_t offset, size_t max_records,
                                                 size_t max_bytes) const;
  // First offset whose record timestamp is >= timestamp_ms; end_offset when none.
  absl::StatusOr<uint64_t> offset_for_timestamp(int64_t timestamp_ms) const;

  // Deletes whole sealed segments older than retention_ms (by their newest
  // timestamp) or while the partition exceeds retention_bytes. 0 disables a
  // limit. Returns how many segments went.
  absl::StatusOr<int> enforce_retention(int64_t retention_ms, uint64_t retention_bytes,
                                        int64_t now_ms);

  PartitionStats stats() const;
  uint64_t end_offset() const;
  uint64_t start_offset() const;
  void set_segment_bytes(uint64_t bytes);

  // New records get offsets >= `offset` (a client has seen offsets below it:
  // a group committed there). A no-op when the log already reaches it; else
  // the gap is logged, counted and remembered in the high-water file.
  absl::Status advance_to(uint64_t offset, const std::string& why);
  // Records the end offset in the high-water file (16 bytes rewritten in
  // place and fdatasynced; call after sync()), so a later recovery cut never
  // hands the same offsets out again.
  absl::Status write_high_water();

  FaultCounts faults() const;
  // Why the partition is DEGRADED (unreadable data: file, byte, offsets), if it is.
  std::optional<std::string> degraded_reason() const;

  // Closes files and deletes the directory.
  absl::Status remove();

 private:
  Partition(std::filesystem::path directory, uint32_t id, PartitionOptions options,
            std::shared_ptr<spdlog::logger> logger);
  absl::Status roll();
  absl::Status roll_to(uint64_t base_offset);  // with the exclusive lock
  absl::Status write_high_water_locked(uint64_t end);
  void count_fault(const std::string& kind, const std::string& degraded);
  void on_damage(const std::filesystem::path& file, const DamagedRange& range);

  std::filesystem::path directory_;
  uint32_t id_;
  PartitionOptions options_;
  std::shared_ptr<spdlog::logger> logger_;

  mutable std::shared_mutex mutex_;  // segments_ and appends
  std::vector<std::shared_ptr<Segment>> segments_;
  uint64_t appended_sequence_ = 0;

  std::mutex sync_mutex_;  // one fdatasync at a time
  mutable std::mutex durable_mutex_;
  uint64_t durable_sequence_ = 0;
  bool removed_ = false;

  std::mutex high_water_mutex_;
  std::unique_ptr<File> high_water_file_;
  uint64_t high_water_written_ = 0;
  std::vector<std::pair<uint64_t, uint64_t>> skipped_;  // [from, to) moved past on purpose

  mutable std::mutex faults_mutex_;
  FaultCounts faults_;
  std::string degraded_;  // the first unreadable range found; empty when none
};

}  // namespace telekern::broker
