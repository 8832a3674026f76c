// One segment of a partition log: <base>.log holds record batches back to
// back; <base>.index (sparse offset -> position) and <base>.timeindex (running
// max timestamp -> offset) make lookups cheap and are rebuilt from the log
// whenever they are missing or disagree with it.
#pragma once

#include <absl/status/status.h>
#include <absl/status/statusor.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "file.h"
#include "record.h"

namespace telekern::broker {

// What opening a segment found and repaired.
struct SegmentRecovery {
  uint64_t truncated_bytes = 0;  // bytes cut from a torn or corrupt tail
  bool index_rebuilt = false;
  std::string reason;  // why the tail was cut; empty when nothing was
};

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
  // Opens an existing segment. With `validate_all` every batch's CRC is
  // checked (the active segment after a restart); otherwise only the batches
  // after the last index entry are, and the whole log when the index is
  // missing or inconsistent. A torn or corrupt tail is truncated at the last
  // good batch.
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

  uint64_t base_offset() const { return base_offset_; }
  uint64_t next_offset() const { return next_offset_; }
  uint64_t size_bytes() const { return size_; }
  int64_t max_timestamp_ms() const { return max_timestamp_ms_; }
  bool empty() const { return size_ == 0; }
  const std::vector<OffsetIndexEntry>& offset_index() const { return offset_index_; }
  const std::vector<TimeIndexEntry>& time_index() const { return time_index_; }
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

  absl::Status open_files(bool create);
  // Scans batches from `position`, validating each; cuts the log at the first
  // bad one. Rebuilds index entries for what it scans.
  absl::Status scan_from(uint64_t position, SegmentRecovery* recovery);
  bool load_indexes();
  absl::Status rewrite_index_files();
  void index_batch(const BatchHeader& header, uint64_t position, bool write_files);
  uint64_t position_for(uint64_t offset) const;

  std::filesystem::path directory_;
  uint64_t base_offset_;
  uint64_t next_offset_;
  uint32_t index_interval_bytes_;
  uint64_t size_ = 0;
  int64_t max_timestamp_ms_ = INT64_MIN;
  uint64_t bytes_since_index_ = 0;
  uint64_t bytes_since_time_index_ = 0;
  std::unique_ptr<File> log_;
  std::unique_ptr<File> index_;
  std::unique_ptr<File> time_index_file_;
  std::vector<OffsetIndexEntry> offset_index_;
  std::vector<TimeIndexEntry> time_index_;
};

}  // namespace telekern::broker
