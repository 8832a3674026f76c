// One segment of a partition log: <base>.log holds record batches back to
// back; <base>.index (sparse offset -> position) and <base>.timeindex (running
// max timestamp -> offset) make lookups cheap and are rebuilt from the log
// whenever they are missing or disagree with it.
#pragma once

#include <absl/status/status.h>
#include <absl/status/statusor.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "file.h"
#include "record.h"

namespace telekern::broker {

// Bytes of a segment that hold no readable batch, with the offsets they cost.
// Readers skip the range; the offsets in it are a gap.
struct DamagedRange {
  uint64_t position = 0;      // first unreadable byte
  uint64_t end_position = 0;  // where readable batches resume (the log's end when none do)
  uint64_t first_offset = 0;  // first offset lost
  uint64_t end_offset = 0;    // first offset readable again (the segment's end when none is)
  std::string reason;
};

// What opening a segment found and repaired.
struct SegmentRecovery {
  uint64_t truncated_bytes = 0;  // bytes cut from a torn or corrupt tail (active segment)
  bool index_rebuilt = false;
  std::string reason;  // why the tail was cut; empty when nothing was
  bool zero_length = false;
  std::vector<DamagedRange> damaged;  // found while scanning, readers skip them
};

// Told about damage a read finds (the segment's log file and the range).
using DamageListener = std::function<void(const std::filesystem::path&, const DamagedRange&)>;

struct OffsetIndexEntry {
  uint32_t relative_offset = 0;
  uint32_t position = 0;
};

struct TimeIndexEntry {
  int64_t max_timestamp_ms = 0;  // largest timestamp up to and including this batch
  uint32_t relative_offset = 0;  // base of the batch
};

class Segment {
 public:
  static absl::StatusOr<std::unique_ptr<Segment>> create(const std::filesystem::path& directory,
                                                         uint64_t base_offset,
                                                         uint32_t index_interval_bytes);
  // Opens an existing segment. With `validate_all` (the active segment after
  // a restart) every batch's CRC is checked and a torn tail is truncated at
  // the last good batch. A sealed segment reads only the last entry of each
  // index and checks the batches after it; the indexes themselves are loaded
  // on the first lookup, and the whole log is scanned only when an index is
  // missing or disagrees with the batch it points to. A sealed segment is
  // never truncated: a damaged batch becomes a DamagedRange that reads skip.
  static absl::StatusOr<std::unique_ptr<Segment>> open(const std::filesystem::path& directory,
                                                       uint64_t base_offset,
                                                       uint32_t index_interval_bytes,
                                                       bool validate_all,
                                                       SegmentRecovery* recovery);

  // Appends one encoded batch whose base offset is next_offset(). On a failed
  // write the file is cut back, so the log never holds a partial batch.
  absl::Status append(std::string_view batch, const BatchHeader& header);
  absl::Status sync();
  // Makes the segment read-only: the last time-index entry, then fsync of all files.
  absl::Status seal();

  // Records from `offset` on (the batch holding it first), at most
  // max_records, stopping after max_bytes of batches (at least one batch).
  // DATA_LOSS when a batch fails its CRC: a corrupt record is never returned.
  absl::StatusOr<std::vector<StoredRecord>> read(uint64_t offset, size_t max_records,
                                                 size_t max_bytes) const;
  // Offset of the first record whose timestamp is >= timestamp_ms, if any here.
  absl::StatusOr<std::optional<uint64_t>> find_timestamp(int64_t timestamp_ms) const;

  void set_damage_listener(DamageListener listener) { damage_listener_ = std::move(listener); }
  std::vector<DamagedRange> damaged_ranges() const;

  uint64_t base_offset() const { return base_offset_; }
  uint64_t next_offset() const { return next_offset_; }
  uint64_t size_bytes() const { return size_; }
  int64_t max_timestamp_ms() const { return max_timestamp_ms_; }
  bool empty() const { return size_ == 0; }
  // The indexes (loaded first when the segment was opened sealed).
  std::vector<OffsetIndexEntry> offset_index() const;
  std::vector<TimeIndexEntry> time_index() const;
  bool indexes_loaded() const;
  const File& log_file() const { return *log_; }

  // Deletes the segment's files; they close when the segment is destroyed.
  absl::Status remove();

  static std::string file_stem(uint64_t base_offset);
  static std::filesystem::path log_path(const std::filesystem::path& directory,
                                        uint64_t base_offset);
  static std::filesystem::path index_path(const std::filesystem::path& directory,
                                          uint64_t base_offset);
  static std::filesystem::path time_index_path(const std::filesystem::path& directory,
                                               uint64_t base_offset);

 private:
  Segment(std::filesystem::path directory, uint64_t base_offset, uint32_t index_interval_bytes)
      : directory_(std::move(directory)),
        base_offset_(base_offset),
        next_offset_(base_offset),
        index_interval_bytes_(index_interval_bytes) {}

  struct Location {
    uint64_t position = 0;
    uint64_t base_offset = 0;  // of the batch expected at `position`
    bool from_index = false;
  };

  absl::Status open_index_files(bool create);
  // Scans the whole log and rebuilds both indexes (in memory and on disk).
  // Returns the scanned end: next offset and max timestamp.
  absl::StatusOr<std::pair<uint64_t, int64_t>> rebuild_indexes_locked(
      SegmentRecovery* recovery) const;
  // Opens a sealed segment from the last index entries; false when they are
  // missing or wrong and the whole log must be scanned.
  absl::StatusOr<bool> open_sealed_from_tail(SegmentRecovery* recovery);
  absl::Status ensure_indexes_locked() const;
  absl::Status write_index_files_locked() const;
  void index_batch_locked(const BatchHeader& header, uint64_t position, bool write_files) const;
  absl::StatusOr<Location> locate(uint64_t offset) const;
  std::optional<DamagedRange> damage_at(uint64_t position) const;
  // Records (once) that no readable batch starts at `position`, where one
  // with base `expected` should; finds where readable batches resume.
  absl::StatusOr<DamagedRange> record_damage(uint64_t position, uint64_t expected,
                                             const std::string& reason) const;
  void add_damage_locked(const DamagedRange& range) const;
  absl::StatusOr<BatchHeader> batch_header_at(uint64_t offset) const;

  std::filesystem::path directory_;
  uint64_t base_offset_;
  uint64_t next_offset_;
  uint32_t index_interval_bytes_;
  uint64_t size_ = 0;
  int64_t max_timestamp_ms_ = INT64_MIN;
  std::unique_ptr<File> log_;
  DamageListener damage_listener_;

  // Indexes and damage: appends change them under the partition's exclusive
  // lock, lookups load or rebuild them under its shared lock, hence the mutex.
  mutable std::mutex index_mutex_;
  mutable bool indexes_loaded_ = false;
  mutable bool indexes_trusted_ = false;  // built from a scan of the log
  mutable uint64_t bytes_since_index_ = 0;
  mutable uint64_t bytes_since_time_index_ = 0;
  mutable int64_t indexed_max_timestamp_ms_ = INT64_MIN;
  mutable std::unique_ptr<File> index_;
  mutable std::unique_ptr<File> time_index_file_;
  mutable std::vector<OffsetIndexEntry> offset_index_;
  mutable std::vector<TimeIndexEntry> time_index_;
  mutable std::vector<DamagedRange> damaged_;  // by position
};

}  // namespace telekern::broker
