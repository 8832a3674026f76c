#include "segment.h"

#include <algorithm>
#include <climits>
#include <cstring>
#include <functional>

#include "telekern/strings.h"

namespace telekern::broker {
namespace {

constexpr size_t kOffsetEntrySize = 8;
constexpr size_t kTimeEntrySize = 12;
constexpr size_t kScanChunk = 1 << 20;

std::string encode_offset_entry(const OffsetIndexEntry& entry) {
  std::string out(kOffsetEntrySize, '\0');
  std::memcpy(out.data(), &entry.relative_offset, 4);
  std::memcpy(out.data() + 4, &entry.position, 4);
  return out;
}

std::string encode_time_entry(const TimeIndexEntry& entry) {
  std::string out(kTimeEntrySize, '\0');
  std::memcpy(out.data(), &entry.max_timestamp_ms, 8);
  std::memcpy(out.data() + 8, &entry.relative_offset, 4);
  return out;
}

// Reads a log sequentially in large chunks; batches are handed out whole.
class BatchScanner {
 public:
  BatchScanner(const File& file, uint64_t position, uint64_t end)
      : file_(file), position_(position), end_(end) {}

  uint64_t position() const { return position_; }
  bool at_end() const { return position_ >= end_; }

  // The next batch's bytes and header, or an error describing why it is bad.
  absl::StatusOr<std::pair<BatchHeader, std::string_view>> next() {
    if (auto status = fill(kBatchHeaderSize); !status.ok()) return status;
    auto header = parse_batch_header(view(kBatchHeaderSize));
    if (!header.ok()) return header.status();
    if (position_ + header->total_size() > end_) {
      return absl::DataLossError(str_cat("torn batch: ", header->total_size(), " bytes declared, ",
                                         end_ - position_, " present"));
    }
    if (auto status = fill(header->total_size()); !status.ok()) return status;
    return std::make_pair(*header, view(header->total_size()));
  }
  void advance(size_t bytes) {
    position_ += bytes;
    buffer_offset_ += bytes;
  }
  void seek(uint64_t position) {
    position_ = position;
    buffer_.clear();
    buffer_offset_ = 0;
  }

 private:
  std::string_view view(size_t size) const {
    return std::string_view(buffer_).substr(buffer_offset_, size);
  }
  absl::Status fill(size_t size) {
    if (buffer_offset_ <= buffer_.size() && buffer_.size() - buffer_offset_ >= size)
      return absl::OkStatus();
    if (end_ - position_ < size) return absl::DataLossError("torn batch header at end of log");
    size_t want =
        static_cast<size_t>(std::min<uint64_t>(std::max(size, kScanChunk), end_ - position_));
    auto bytes = file_.read_at(position_, want);
    if (!bytes.ok()) return bytes.status();
    if (bytes->size() < size) return absl::DataLossError("log shorter than its size");
    buffer_ = std::move(*bytes);
    buffer_offset_ = 0;
    return absl::OkStatus();
  }

  const File& file_;
  uint64_t position_;
  uint64_t end_;
  std::string buffer_;
  size_t buffer_offset_ = 0;
};

// The first position at or after `from` where a whole batch with a valid
// header and CRC and a base offset >= min_offset starts (resynchronising after
// damage). Reads the rest of the log in chunks; damage is rare.
std::optional<std::pair<uint64_t, BatchHeader>> find_next_good_batch(const File& file,
                                                                     uint64_t from, uint64_t end,
                                                                     uint64_t min_offset) {
  uint64_t position = from;
  while (position + kBatchHeaderSize <= end) {
    size_t want = static_cast<size_t>(std::min<uint64_t>(kScanChunk, end - position));
    auto bytes = file.read_at(position, want);
    if (!bytes.ok() || bytes->size() < 4) return std::nullopt;
    for (size_t i = 0; i + 4 <= bytes->size(); ++i) {
      if (std::memcmp(bytes->data() + i, &kBatchMagic, 4) != 0) continue;
      uint64_t candidate = position + i;
      if (candidate + kBatchHeaderSize > end) return std::nullopt;
      auto header_bytes = i + kBatchHeaderSize <= bytes->size()
                              ? std::string(bytes->substr(i, kBatchHeaderSize))
                              : file.read_at(candidate, kBatchHeaderSize).value_or("");
      auto header = parse_batch_header(header_bytes);
      if (!header.ok() || header->base_offset < min_offset) continue;
      if (candidate + header->total_size() > end) continue;
      auto batch = file.read_at(candidate, header->total_size());
      if (!batch.ok() || !batch_checksum_ok(*header, *batch)) continue;
      return std::make_pair(candidate, *header);
    }
    if (bytes->size() < want) break;
    position += bytes->size() - 3;  // a magic may straddle two chunks
  }
  return std::nullopt;
}

struct ScanResult {
  uint64_t end_position = 0;  // after the last good batch
  uint64_t next_offset = 0;   // after the last good batch
  int64_t max_timestamp_ms = INT64_MIN;
  std::vector<DamagedRange> damaged;  // unreadable ranges that readable batches follow
  std::string tail_reason;            // why the bytes after end_position are unreadable
};

// Scans batches from `position` (whose base should be next_offset) to `end`,
// checking every CRC, calling visit(header, position) for each good batch.
// Damage followed by readable batches becomes a DamagedRange; damage that
// nothing readable follows is the tail (tail_reason, end_position).
absl::StatusOr<ScanResult> scan_batches(
    const File& log, uint64_t position, uint64_t next_offset, uint64_t end,
    const std::function<void(const BatchHeader&, uint64_t)>& visit) {
  ScanResult result;
  result.end_position = position;
  result.next_offset = next_offset;
  BatchScanner scanner(log, position, end);
  while (!scanner.at_end()) {
    auto batch = scanner.next();
    std::string problem;
    if (!batch.ok()) {
      if (!absl::IsDataLoss(batch.status())) return batch.status();
      problem = std::string(batch.status().message());
    } else if (batch->first.base_offset < result.next_offset) {
      problem = str_cat("batch base offset ", batch->first.base_offset, " where ",
                        result.next_offset, " was expected");
    } else if (!batch_checksum_ok(batch->first, batch->second)) {
      problem = str_cat("CRC32C mismatch in batch at offset ", batch->first.base_offset);
    }
    if (problem.empty()) {
      const BatchHeader& header = batch->first;
      if (header.base_offset > result.next_offset) {
        result.damaged.push_back({scanner.position(), scanner.position(), result.next_offset,
                                  header.base_offset,
                                  str_cat("batch base offset ", header.base_offset, " where ",
                                          result.next_offset, " was expected")});
      }
      visit(header, scanner.position());
      result.next_offset = header.next_offset();
      result.max_timestamp_ms = std::max(result.max_timestamp_ms, header.max_timestamp_ms);
      scanner.advance(header.total_size());
      result.end_position = scanner.position();
      continue;
    }
    uint64_t bad = scanner.position();
    auto resume = find_next_good_batch(log, bad + 1, end, result.next_offset);
    if (!resume) {
      result.tail_reason = str_cat(problem, " at byte ", bad);
      break;
    }
    result.damaged.push_back(
        {bad, resume->first, result.next_offset, resume->second.base_offset, problem});
    result.next_offset = resume->second.base_offset;
    scanner.seek(resume->first);
  }
  return result;
}

}  // namespace

std::string Segment::file_stem(uint64_t base_offset) {
  std::string digits = std::to_string(base_offset);
  return std::string(20 - std::min<size_t>(20, digits.size()), '0') + digits;
}

std::filesystem::path Segment::log_path(const std::filesystem::path& directory, uint64_t base) {
  return directory / (file_stem(base) + ".log");
}
std::filesystem::path Segment::index_path(const std::filesystem::path& directory, uint64_t base) {
  return directory / (file_stem(base) + ".index");
}
std::filesystem::path Segment::time_index_path(const std::filesystem::path& directory,
                                               uint64_t base) {
  return directory / (file_stem(base) + ".timeindex");
}

absl::StatusOr<std::unique_ptr<Segment>> Segment::create(const std::filesystem::path& directory,
                                                         uint64_t base_offset,
                                                         uint32_t index_interval_bytes) {
  std::unique_ptr<Segment> segment(new Segment(directory, base_offset, index_interval_bytes));
  auto log = File::open(log_path(directory, base_offset), true);
  if (!log.ok()) return log.status();
  segment->log_ = std::move(*log);
  if (auto status = segment->open_index_files(true); !status.ok()) return status;
  for (File* file : {segment->log_.get(), segment->index_.get(), segment->time_index_file_.get()}) {
    if (auto status = file->truncate(0); !status.ok()) return status;
  }
  if (auto status = sync_directory(directory); !status.ok()) return status;
  segment->indexes_loaded_ = true;
  segment->indexes_trusted_ = true;
  segment->bytes_since_index_ = index_interval_bytes;
  segment->bytes_since_time_index_ = index_interval_bytes;
  return segment;
}

absl::StatusOr<std::unique_ptr<Segment>> Segment::open(const std::filesystem::path& directory,
                                                       uint64_t base_offset,
                                                       uint32_t index_interval_bytes,
                                                       bool validate_all,
                                                       SegmentRecovery* recovery) {
  SegmentRecovery ignored;
  if (recovery == nullptr) recovery = &ignored;
  std::unique_ptr<Segment> segment(new Segment(directory, base_offset, index_interval_bytes));
  auto log = File::open(log_path(directory, base_offset), false);
  if (!log.ok()) return log.status();
  segment->log_ = std::move(*log);
  auto file_size = segment->log_->size();
  if (!file_size.ok()) return file_size.status();
  segment->size_ = *file_size;
  recovery->zero_length = *file_size == 0;
  std::lock_guard lock(segment->index_mutex_);
  if (!validate_all) {
    auto opened = segment->open_sealed_from_tail(recovery);
    if (!opened.ok()) return opened.status();
    if (*opened) return segment;
    recovery->index_rebuilt = *file_size > 0;
    // The scan decides where the segment ends. Later rebuilds (an index entry
    // proved wrong) keep the end the segment was opened with.
    auto scanned = segment->rebuild_indexes_locked(recovery);
    if (!scanned.ok()) return scanned.status();
    segment->next_offset_ = scanned->first;
    segment->max_timestamp_ms_ = scanned->second;
    return segment;
  }
  // The active segment: check every batch, cut a torn tail, keep the index
  // files open for appends.
  if (auto status = segment->open_index_files(true); !status.ok()) return status;
  segment->bytes_since_index_ = index_interval_bytes;
  segment->bytes_since_time_index_ = index_interval_bytes;
  auto scanned = scan_batches(*segment->log_, 0, base_offset, *file_size,
                              [&](const BatchHeader& header, uint64_t position) {
                                segment->index_batch_locked(header, position, false);
                              });
  if (!scanned.ok()) return scanned.status();
  segment->next_offset_ = scanned->next_offset;
  segment->max_timestamp_ms_ = scanned->max_timestamp_ms;
  segment->size_ = scanned->end_position;
  for (const auto& range : scanned->damaged) segment->add_damage_locked(range);
  recovery->damaged = scanned->damaged;
  if (segment->size_ < *file_size) {
    recovery->truncated_bytes += *file_size - segment->size_;
    recovery->reason = str_cat(scanned->tail_reason, " of ", segment->log_->path().string());
    if (auto status = segment->log_->truncate(segment->size_); !status.ok()) return status;
    if (auto status = segment->log_->sync(); !status.ok()) return status;
  }
  segment->indexes_loaded_ = true;
  segment->indexes_trusted_ = true;
  if (auto status = segment->write_index_files_locked(); !status.ok()) return status;
  return segment;
}

absl::Status Segment::open_index_files(bool create) {
  if (index_ && time_index_file_) return absl::OkStatus();
  auto index = File::open(index_path(directory_, base_offset_), create);
  if (!index.ok()) return index.status();
  auto time_index = File::open(time_index_path(directory_, base_offset_), create);
  if (!time_index.ok()) return time_index.status();
  index_ = std::move(*index);
  time_index_file_ = std::move(*time_index);
  return absl::OkStatus();
}

absl::StatusOr<bool> Segment::open_sealed_from_tail(SegmentRecovery* recovery) {
  if (size_ == 0) return true;  // zero-length: nothing to read; the partition reports the gap
  // Only the last entry of each index: the batch it names must be where it
  // says, and every batch after it is checked.
  auto index = File::open(index_path(directory_, base_offset_), false);
  auto time_index = File::open(time_index_path(directory_, base_offset_), false);
  if (!index.ok() || !time_index.ok()) return false;
  auto index_size = (*index)->size();
  auto time_size = (*time_index)->size();
  if (!index_size.ok() || !time_size.ok()) return false;
  if (*index_size == 0 || *index_size % kOffsetEntrySize != 0 || *time_size == 0 ||
      *time_size % kTimeEntrySize != 0) {
    return false;
  }
  auto last_bytes = (*index)->read_at(*index_size - kOffsetEntrySize, kOffsetEntrySize);
  auto time_bytes = (*time_index)->read_at(*time_size - kTimeEntrySize, kTimeEntrySize);
  if (!last_bytes.ok() || !time_bytes.ok() || last_bytes->size() != kOffsetEntrySize ||
      time_bytes->size() != kTimeEntrySize) {
    return false;
  }
  OffsetIndexEntry last;
  std::memcpy(&last.relative_offset, last_bytes->data(), 4);
  std::memcpy(&last.position, last_bytes->data() + 4, 4);
  TimeIndexEntry last_time;
  std::memcpy(&last_time.max_timestamp_ms, time_bytes->data(), 8);
  std::memcpy(&last_time.relative_offset, time_bytes->data() + 8, 4);
  if (last.position >= size_ || last_time.relative_offset > last.relative_offset + (1u << 30)) {
    return false;
  }
  bool first = true;
  bool index_wrong = false;
  auto scanned = scan_batches(*log_, last.position, base_offset_ + last.relative_offset, size_,
                              [&](const BatchHeader& header, uint64_t) {
                                if (first && header.max_timestamp_ms > last_time.max_timestamp_ms &&
                                    last_time.relative_offset == last.relative_offset) {
                                  index_wrong = true;  // the time entry names this batch
                                }
                                first = false;
                              });
  if (!scanned.ok()) return scanned.status();
  // The batch at the last entry must be readable and carry the entry's base.
  bool entry_damaged =
      !scanned->damaged.empty() && scanned->damaged.front().position == last.position;
  if (first || index_wrong || entry_damaged) {
    return false;
  }
  next_offset_ = scanned->next_offset;
  max_timestamp_ms_ = std::max(last_time.max_timestamp_ms, scanned->max_timestamp_ms);
  for (const auto& range : scanned->damaged) add_damage_locked(range);
  recovery->damaged = scanned->damaged;
  if (scanned->end_position < size_) {
    // A sealed segment keeps its bytes: the unreadable tail is a damaged range.
    DamagedRange tail{scanned->end_position, size_, scanned->next_offset, scanned->next_offset,
                      scanned->tail_reason.substr(0, scanned->tail_reason.rfind(" at byte "))};
    add_damage_locked(tail);
    recovery->damaged.push_back(tail);
  }
  return true;
}

absl::StatusOr<std::pair<uint64_t, int64_t>> Segment::rebuild_indexes_locked(
    SegmentRecovery* recovery) const {
  offset_index_.clear();
  time_index_.clear();
  indexed_max_timestamp_ms_ = INT64_MIN;
  bytes_since_index_ = index_interval_bytes_;
  bytes_since_time_index_ = index_interval_bytes_;
  auto scanned = scan_batches(*log_, 0, base_offset_, size_,
                              [&](const BatchHeader& header, uint64_t position) {
                                index_batch_locked(header, position, false);
                              });
  if (!scanned.ok()) return scanned.status();
  std::vector<DamagedRange> found = scanned->damaged;
  if (scanned->end_position < size_) {
    found.push_back({scanned->end_position, size_, scanned->next_offset,
                     std::max(scanned->next_offset, next_offset_),
                     scanned->tail_reason.substr(0, scanned->tail_reason.rfind(" at byte "))});
  }
  if (recovery != nullptr) recovery->damaged = found;
  std::vector<DamagedRange> fresh;
  for (const auto& range : found) {
    bool known = std::any_of(damaged_.begin(), damaged_.end(), [&](const DamagedRange& other) {
      return other.position == range.position;
    });
    if (!known) {
      add_damage_locked(range);
      fresh.push_back(range);
    }
  }
  indexes_loaded_ = true;
  indexes_trusted_ = true;
  if (recovery == nullptr && damage_listener_) {
    for (const auto& range : fresh) damage_listener_(log_->path(), range);
  }
  if (auto status = write_index_files_locked(); !status.ok()) return status;
  return std::make_pair(scanned->next_offset, scanned->max_timestamp_ms);
}

absl::Status Segment::ensure_indexes_locked() const {
  if (indexes_loaded_) return absl::OkStatus();
  auto index_bytes = read_small_file(index_path(directory_, base_offset_));
  auto time_bytes = read_small_file(time_index_path(directory_, base_offset_));
  bool valid = index_bytes.ok() && time_bytes.ok() && index_bytes->size() % kOffsetEntrySize == 0 &&
               time_bytes->size() % kTimeEntrySize == 0 && !index_bytes->empty();
  std::vector<OffsetIndexEntry> offsets;
  std::vector<TimeIndexEntry> times;
  if (valid) {
    offsets.resize(index_bytes->size() / kOffsetEntrySize);
    for (size_t i = 0; i < offsets.size() && valid; ++i) {
      std::memcpy(&offsets[i].relative_offset, index_bytes->data() + i * kOffsetEntrySize, 4);
      std::memcpy(&offsets[i].position, index_bytes->data() + i * kOffsetEntrySize + 4, 4);
      valid = offsets[i].position < size_ &&
              base_offset_ + offsets[i].relative_offset < next_offset_ &&
              (i == 0 ? offsets[i].position == 0
                      : offsets[i].relative_offset > offsets[i - 1].relative_offset &&
                            offsets[i].position > offsets[i - 1].position);
    }
    times.resize(time_bytes->size() / kTimeEntrySize);
    for (size_t i = 0; i < times.size() && valid; ++i) {
      std::memcpy(&times[i].max_timestamp_ms, time_bytes->data() + i * kTimeEntrySize, 8);
      std::memcpy(&times[i].relative_offset, time_bytes->data() + i * kTimeEntrySize + 8, 4);
      valid = base_offset_ + times[i].relative_offset < next_offset_ &&
              (i == 0 || (times[i].max_timestamp_ms >= times[i - 1].max_timestamp_ms &&
                          times[i].relative_offset >= times[i - 1].relative_offset));
    }
  }
  if (!valid) return rebuild_indexes_locked(nullptr).status();
  offset_index_ = std::move(offsets);
  time_index_ = std::move(times);
  indexes_loaded_ = true;
  return absl::OkStatus();
}

void Segment::index_batch_locked(const BatchHeader& header, uint64_t position,
                                 bool write_files) const {
  auto relative = static_cast<uint32_t>(header.base_offset - base_offset_);
  if (offset_index_.empty() || bytes_since_index_ >= index_interval_bytes_) {
    OffsetIndexEntry entry{relative, static_cast<uint32_t>(position)};
    if (write_files) {
      // Index files are rebuilt from the log when they disagree, so a failed
      // index write never fails the append.
      (void)index_->write_at(offset_index_.size() * kOffsetEntrySize, encode_offset_entry(entry));
    }
    offset_index_.push_back(entry);
    bytes_since_index_ = 0;
  }
  bytes_since_index_ += header.total_size();
  bytes_since_time_index_ += header.total_size();
  indexed_max_timestamp_ms_ = std::max(indexed_max_timestamp_ms_, header.max_timestamp_ms);
  bool grows =
      time_index_.empty() || indexed_max_timestamp_ms_ > time_index_.back().max_timestamp_ms;
  if (grows && bytes_since_time_index_ >= index_interval_bytes_) {
    TimeIndexEntry entry{indexed_max_timestamp_ms_, relative};
    if (write_files) {
      (void)time_index_file_->write_at(time_index_.size() * kTimeEntrySize,
                                       encode_time_entry(entry));
    }
    time_index_.push_back(entry);
    bytes_since_time_index_ = 0;
  }
}

absl::Status Segment::write_index_files_locked() const {
  std::string offsets;
  for (const auto& entry : offset_index_) offsets += encode_offset_entry(entry);
  std::string times;
  for (const auto& entry : time_index_) times += encode_time_entry(entry);
  // A sealed segment gets the final time entry seal() would have written.
  if (index_ == nullptr && size_ > 0 &&
      (time_index_.empty() || time_index_.back().max_timestamp_ms < indexed_max_timestamp_ms_)) {
    TimeIndexEntry entry{indexed_max_timestamp_ms_,
                         offset_index_.empty() ? 0 : offset_index_.back().relative_offset};
    time_index_.push_back(entry);
    times += encode_time_entry(entry);
  }
  auto write_if_changed = [](File& file, const std::string& bytes) -> absl::Status {
    auto current = file.read_at(0, bytes.size() + 1);
    if (current.ok() && *current == bytes) return absl::OkStatus();
    if (auto status = file.truncate(0); !status.ok()) return status;
    if (auto status = file.write_at(0, bytes); !status.ok()) return status;
    return file.sync();
  };
  if (index_ != nullptr) {
    if (auto status = write_if_changed(*index_, offsets); !status.ok()) return status;
    return write_if_changed(*time_index_file_, times);
  }
  // Sealed: open the files just for the rewrite.
  auto index = File::open(index_path(directory_, base_offset_), true);
  if (!index.ok()) return index.status();
  auto time_index = File::open(time_index_path(directory_, base_offset_), true);
  if (!time_index.ok()) return time_index.status();
  if (auto status = write_if_changed(**index, offsets); !status.ok()) return status;
  return write_if_changed(**time_index, times);
}

absl::Status Segment::append(std::string_view batch, const BatchHeader& header) {
  if (header.base_offset != next_offset_) {
    return absl::InternalError(
        str_cat("append at offset ", header.base_offset, " to segment ending at ", next_offset_));
  }
  if (index_ == nullptr) {
    return absl::InternalError(str_cat("append to sealed segment ", log_->path().string()));
  }
  if (auto status = log_->write_at(size_, batch); !status.ok()) {
    (void)log_->truncate(size_);
    return status;
  }
  {
    std::lock_guard lock(index_mutex_);
    index_batch_locked(header, size_, true);
  }
  size_ += batch.size();
  next_offset_ = header.next_offset();
  max_timestamp_ms_ = std::max(max_timestamp_ms_, header.max_timestamp_ms);
  return absl::OkStatus();
}

absl::Status Segment::sync() { return log_->sync(); }

absl::Status Segment::seal() {
  std::lock_guard lock(index_mutex_);
  if (!empty() && index_ != nullptr &&
      (time_index_.empty() || time_index_.back().max_timestamp_ms < max_timestamp_ms_)) {
    TimeIndexEntry entry{max_timestamp_ms_,
                         offset_index_.empty() ? 0 : offset_index_.back().relative_offset};
    (void)time_index_file_->write_at(time_index_.size() * kTimeEntrySize, encode_time_entry(entry));
    time_index_.push_back(entry);
  }
  if (auto status = log_->sync(); !status.ok()) return status;
  if (index_ != nullptr) {
    (void)index_->sync();
    (void)time_index_file_->sync();
  }
  return absl::OkStatus();
}

std::vector<OffsetIndexEntry> Segment::offset_index() const {
  std::lock_guard lock(index_mutex_);
  (void)ensure_indexes_locked();
  return offset_index_;
}

std::vector<TimeIndexEntry> Segment::time_index() const {
  std::lock_guard lock(index_mutex_);
  (void)ensure_indexes_locked();
  return time_index_;
}

bool Segment::indexes_loaded() const {
  std::lock_guard lock(index_mutex_);
  return indexes_loaded_;
}

std::vector<DamagedRange> Segment::damaged_ranges() const {
  std::lock_guard lock(index_mutex_);
  return damaged_;
}

absl::StatusOr<Segment::Location> Segment::locate(uint64_t offset) const {
  std::lock_guard lock(index_mutex_);
  if (auto status = ensure_indexes_locked(); !status.ok()) return status;
  uint32_t relative = offset <= base_offset_ ? 0 : static_cast<uint32_t>(offset - base_offset_);
  auto it = std::upper_bound(
      offset_index_.begin(), offset_index_.end(), relative,
      [](uint32_t value, const OffsetIndexEntry& entry) { return value < entry.relative_offset; });
  if (it == offset_index_.begin()) return Location{0, base_offset_, false};
  --it;
  return Location{it->position, base_offset_ + it->relative_offset, true};
}

void Segment::add_damage_locked(const DamagedRange& range) const {
  auto it = std::lower_bound(
      damaged_.begin(), damaged_.end(), range.position,
      [](const DamagedRange& entry, uint64_t position) { return entry.position < position; });
  if (it != damaged_.end() && it->position == range.position) return;
  damaged_.insert(it, range);
}

std::optional<DamagedRange> Segment::damage_at(uint64_t position) const {
  std::lock_guard lock(index_mutex_);
  auto it = std::lower_bound(
      damaged_.begin(), damaged_.end(), position,
      [](const DamagedRange& entry, uint64_t value) { return entry.position < value; });
  if (it == damaged_.end() || it->position != position) return std::nullopt;
  return *it;
}

absl::StatusOr<DamagedRange> Segment::record_damage(uint64_t position, uint64_t expected,
                                                    const std::string& reason) const {
  if (auto known = damage_at(position)) return *known;
  auto resume = find_next_good_batch(*log_, position + 1, size_, expected);
  DamagedRange range =
      resume ? DamagedRange{position, resume->first, expected, resume->second.base_offset, reason}
             : DamagedRange{position, size_, expected, next_offset_, reason};
  {
    std::lock_guard lock(index_mutex_);
    for (const auto& other : damaged_) {
      if (other.position == position) return other;  // another reader was first
    }
    add_damage_locked(range);
  }
  if (damage_listener_) damage_listener_(log_->path(), range);
  return range;
}

absl::StatusOr<std::vector<StoredRecord>> Segment::read(uint64_t offset, size_t max_records,
                                                        size_t max_bytes) const {
  std::vector<StoredRecord> out;
  if (offset >= next_offset_ || max_records == 0) return out;
  for (int attempt = 0; attempt < 2; ++attempt) {
    auto start = locate(offset);
    if (!start.ok()) return start.status();
    BatchScanner scanner(*log_, start->position, size_);
    uint64_t expected = start->base_offset;
    bool first = true;
    bool retry = false;
    size_t bytes = 0;
    while (!scanner.at_end() && out.size() < max_records && (bytes < max_bytes || out.empty())) {
      if (auto skip = damage_at(scanner.position())) {
        expected = std::max(expected, skip->end_offset);
        first = false;
        if (skip->end_position >= size_) break;
        if (skip->end_position > scanner.position()) {
          scanner.seek(skip->end_position);
          continue;
        }
      }
      auto batch = scanner.next();
      std::string problem;
      absl::StatusOr<std::vector<StoredRecord>> records;
      if (!batch.ok()) {
        if (!absl::IsDataLoss(batch.status())) return batch.status();
        problem = std::string(batch.status().message());
      } else if (batch->first.base_offset != expected) {
        problem = str_cat("batch base offset ", batch->first.base_offset, " where ", expected,
                          " was expected");
      } else if (batch->first.next_offset() > offset) {
        records = decode_batch(batch->second);
        if (!records.ok()) problem = std::string(records.status().message());
      }
      if (!problem.empty()) {
        bool trusted;
        {
          std::lock_guard lock(index_mutex_);
          trusted = indexes_trusted_;
        }
        if (first && start->from_index && !trusted) {
          // The index entry may be what is wrong: rebuild it from the log and
          // look again before calling any data damaged.
          std::lock_guard lock(index_mutex_);
          if (auto rebuilt = rebuild_indexes_locked(nullptr); !rebuilt.ok())
            return rebuilt.status();
          retry = true;
          break;
        }
        auto range = record_damage(scanner.position(), expected, problem);
        if (!range.ok()) return range.status();
        expected = range->end_offset;
        first = false;
        if (range->end_position >= size_) break;
        scanner.seek(range->end_position);
        continue;
      }
      first = false;
      const BatchHeader& header = batch->first;
      if (header.next_offset() > offset) {
        for (auto& record : *records) {
          if (record.offset < offset) continue;
          if (out.size() >= max_records) break;
          out.push_back(std::move(record));
        }
        bytes += header.total_size();
      }
      expected = header.next_offset();
      scanner.advance(header.total_size());
    }
    if (!retry) return out;
    out.clear();
  }
  return out;
}

absl::StatusOr<BatchHeader> Segment::batch_header_at(uint64_t offset) const {
  auto start = locate(offset);
  if (!start.ok()) return start.status();
  BatchScanner scanner(*log_, start->position, size_);
  while (!scanner.at_end()) {
    if (auto skip = damage_at(scanner.position())) {
      if (skip->end_position >= size_ || skip->end_position == scanner.position()) break;
      scanner.seek(skip->end_position);
      continue;
    }
    auto batch = scanner.next();
    if (!batch.ok()) return batch.status();
    if (batch->first.base_offset == offset) return batch->first;
    if (batch->first.base_offset > offset) break;
    scanner.advance(batch->first.total_size());
  }
  return absl::NotFoundError(str_cat("no batch starts at offset ", offset));
}

absl::StatusOr<std::optional<uint64_t>> Segment::find_timestamp(int64_t timestamp_ms) const {
  if (empty() || max_timestamp_ms_ < timestamp_ms) return std::optional<uint64_t>();
  // Batches up to the last entry whose running max is below the target hold
  // nothing at or after it; start scanning at that entry's batch, once the
  // batch there agrees with the entry.
  uint64_t start = base_offset_;
  for (int attempt = 0; attempt < 2; ++attempt) {
    std::optional<TimeIndexEntry> chosen;
    bool trusted;
    {
      std::lock_guard lock(index_mutex_);
      if (auto status = ensure_indexes_locked(); !status.ok()) return status;
      for (const auto& entry : time_index_) {
        if (entry.max_timestamp_ms >= timestamp_ms) break;
        chosen = entry;
      }
      trusted = indexes_trusted_;
    }
    start = base_offset_;
    if (!chosen || trusted) {
      if (chosen) start = base_offset_ + chosen->relative_offset;
      break;
    }
    auto header = batch_header_at(base_offset_ + chosen->relative_offset);
    if (header.ok() && header->max_timestamp_ms <= chosen->max_timestamp_ms) {
      start = header->base_offset;
      break;
    }
    std::lock_guard lock(index_mutex_);
    if (auto rebuilt = rebuild_indexes_locked(nullptr); !rebuilt.ok()) return rebuilt.status();
  }
  uint64_t offset = start;
  while (offset < next_offset_) {
    auto records = read(offset, 1000, 1 << 20);
    if (!records.ok()) return records.status();
    if (records->empty()) break;
    for (const auto& record : *records) {
      if (record.record.timestamp_ms >= timestamp_ms) return std::optional<uint64_t>(record.offset);
    }
    offset = records->back().offset + 1;
  }
  return std::optional<uint64_t>();
}

absl::Status Segment::remove() {
  // Files stay open until the segment is destroyed: a concurrent fsync may
  // still hold it. Unlinking is enough to free the space afterwards.
  std::error_code error;
  for (const auto& path : {log_path(directory_, base_offset_), index_path(directory_, base_offset_),
                           time_index_path(directory_, base_offset_)}) {
    std::filesystem::remove(path, error);
    if (error) return io_error("cannot remove", path, error.value());
  }
  return absl::OkStatus();
}

}  // namespace telekern::broker
