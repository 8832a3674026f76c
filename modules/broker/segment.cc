#include "segment.h"

#include <algorithm>
#include <climits>
#include <cstring>

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

 private:
  std::string_view view(size_t size) const {
    return std::string_view(buffer_).substr(buffer_offset_, size);
  }
  absl::Status fill(size_t size) {
    if (buffer_.size() - buffer_offset_ >= size) return absl::OkStatus();
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
  if (auto status = segment->open_files(true); !status.ok()) return status;
  for (File* file : {segment->log_.get(), segment->index_.get(), segment->time_index_file_.get()}) {
    if (auto status = file->truncate(0); !status.ok()) return status;
  }
  if (auto status = sync_directory(directory); !status.ok()) return status;
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
  if (auto status = segment->open_files(true); !status.ok()) return status;
  uint64_t start = 0;
  if (!validate_all && segment->load_indexes()) {
    if (!segment->offset_index_.empty()) {
      // Re-scan from the last indexed batch: everything after it is unchecked.
      // Time entries hold running maxima, so the last one stays valid and
      // re-scanned batches only add an entry when they raise the maximum.
      auto last = segment->offset_index_.back();
      segment->offset_index_.pop_back();
      start = last.position;
      segment->next_offset_ = base_offset + last.relative_offset;
      if (!segment->time_index_.empty()) {
        segment->max_timestamp_ms_ = segment->time_index_.back().max_timestamp_ms;
      }
    }
  } else {
    segment->offset_index_.clear();
    segment->time_index_.clear();
    recovery->index_rebuilt = !validate_all;
  }
  segment->bytes_since_index_ = index_interval_bytes;
  segment->bytes_since_time_index_ = index_interval_bytes;
  if (auto status = segment->scan_from(start, recovery); !status.ok()) return status;
  if (auto status = segment->rewrite_index_files(); !status.ok()) return status;
  return segment;
}

absl::Status Segment::open_files(bool create) {
  auto log = File::open(log_path(directory_, base_offset_), create);
  if (!log.ok()) return log.status();
  auto index = File::open(index_path(directory_, base_offset_), create);
  if (!index.ok()) return index.status();
  auto time_index = File::open(time_index_path(directory_, base_offset_), create);
  if (!time_index.ok()) return time_index.status();
  log_ = std::move(*log);
  index_ = std::move(*index);
  time_index_file_ = std::move(*time_index);
  return absl::OkStatus();
}

bool Segment::load_indexes() {
  auto log_size = log_->size();
  auto index_bytes = index_->read_at(0, 64u << 20);
  auto time_bytes = time_index_file_->read_at(0, 64u << 20);
  if (!log_size.ok() || !index_bytes.ok() || !time_bytes.ok()) return false;
  if (index_bytes->size() % kOffsetEntrySize != 0 || time_bytes->size() % kTimeEntrySize != 0) {
    return false;
  }
  if (index_bytes->empty() && *log_size > 0) return false;  // missing index
  std::vector<OffsetIndexEntry> offsets(index_bytes->size() / kOffsetEntrySize);
  for (size_t i = 0; i < offsets.size(); ++i) {
    std::memcpy(&offsets[i].relative_offset, index_bytes->data() + i * kOffsetEntrySize, 4);
    std::memcpy(&offsets[i].position, index_bytes->data() + i * kOffsetEntrySize + 4, 4);
    if (offsets[i].position >= *log_size) return false;
    if (i > 0 && (offsets[i].relative_offset <= offsets[i - 1].relative_offset ||
                  offsets[i].position <= offsets[i - 1].position)) {
      return false;
    }
  }
  if (!offsets.empty() && offsets.front().position != 0) return false;
  std::vector<TimeIndexEntry> times(time_bytes->size() / kTimeEntrySize);
  for (size_t i = 0; i < times.size(); ++i) {
    std::memcpy(&times[i].max_timestamp_ms, time_bytes->data() + i * kTimeEntrySize, 8);
    std::memcpy(&times[i].relative_offset, time_bytes->data() + i * kTimeEntrySize + 8, 4);
    if (i > 0 && (times[i].max_timestamp_ms < times[i - 1].max_timestamp_ms ||
                  times[i].relative_offset < times[i - 1].relative_offset)) {
      return false;
    }
  }
  // The last offset entry must point at a batch whose base matches.
  if (!offsets.empty()) {
    auto header_bytes = log_->read_at(offsets.back().position, kBatchHeaderSize);
    if (!header_bytes.ok()) return false;
    auto header = parse_batch_header(*header_bytes);
    if (!header.ok() || header->base_offset != base_offset_ + offsets.back().relative_offset) {
      return false;
    }
  }
  if (!times.empty() && !offsets.empty() &&
      times.back().relative_offset > offsets.back().relative_offset + (1u << 30)) {
    return false;
  }
  offset_index_ = std::move(offsets);
  time_index_ = std::move(times);
  return true;
}

absl::Status Segment::scan_from(uint64_t position, SegmentRecovery* recovery) {
  auto file_size = log_->size();
  if (!file_size.ok()) return file_size.status();
  BatchScanner scanner(*log_, position, *file_size);
  std::string reason;
  while (!scanner.at_end()) {
    auto batch = scanner.next();
    if (!batch.ok()) {
      reason = std::string(batch.status().message());
      if (!absl::IsDataLoss(batch.status())) return batch.status();
      break;
    }
    const auto& [header, bytes] = *batch;
    if (header.base_offset != next_offset_) {
      reason = str_cat("batch base offset ", header.base_offset, " where ", next_offset_,
                       " was expected");
      break;
    }
    if (!batch_checksum_ok(header, bytes)) {
      reason = str_cat("CRC32C mismatch in batch at offset ", header.base_offset);
      break;
    }
    index_batch(header, scanner.position(), false);
    next_offset_ = header.next_offset();
    scanner.advance(header.total_size());
  }
  size_ = scanner.position();
  if (size_ < *file_size) {
    recovery->truncated_bytes += *file_size - size_;
    recovery->reason = str_cat(reason, " at byte ", size_, " of ", log_->path().string());
    if (auto status = log_->truncate(size_); !status.ok()) return status;
    if (auto status = log_->sync(); !status.ok()) return status;
  }
  return absl::OkStatus();
}

void Segment::index_batch(const BatchHeader& header, uint64_t position, bool write_files) {
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
  max_timestamp_ms_ = std::max(max_timestamp_ms_, header.max_timestamp_ms);
  bool grows = time_index_.empty() || max_timestamp_ms_ > time_index_.back().max_timestamp_ms;
  if (grows && bytes_since_time_index_ >= index_interval_bytes_) {
    TimeIndexEntry entry{max_timestamp_ms_, relative};
    if (write_files) {
      (void)time_index_file_->write_at(time_index_.size() * kTimeEntrySize,
                                       encode_time_entry(entry));
    }
    time_index_.push_back(entry);
    bytes_since_time_index_ = 0;
  }
}

absl::Status Segment::rewrite_index_files() {
  std::string offsets;
  for (const auto& entry : offset_index_) offsets += encode_offset_entry(entry);
  std::string times;
  for (const auto& entry : time_index_) times += encode_time_entry(entry);
  auto write_if_changed = [](File& file, const std::string& bytes) -> absl::Status {
    auto current = file.read_at(0, bytes.size() + 1);
    if (current.ok() && *current == bytes) return absl::OkStatus();
    if (auto status = file.truncate(0); !status.ok()) return status;
    if (auto status = file.write_at(0, bytes); !status.ok()) return status;
    return file.sync();
  };
  if (auto status = write_if_changed(*index_, offsets); !status.ok()) return status;
  return write_if_changed(*time_index_file_, times);
}

absl::Status Segment::append(std::string_view batch, const BatchHeader& header) {
  if (header.base_offset != next_offset_) {
    return absl::InternalError(
        str_cat("append at offset ", header.base_offset, " to segment ending at ", next_offset_));
  }
  if (auto status = log_->write_at(size_, batch); !status.ok()) {
    (void)log_->truncate(size_);
    return status;
  }
  index_batch(header, size_, true);
  size_ += batch.size();
  next_offset_ = header.next_offset();
  return absl::OkStatus();
}

absl::Status Segment::sync() { return log_->sync(); }

absl::Status Segment::seal() {
  if (!empty() &&
      (time_index_.empty() || time_index_.back().max_timestamp_ms < max_timestamp_ms_)) {
    TimeIndexEntry entry{max_timestamp_ms_,
                         offset_index_.empty() ? 0 : offset_index_.back().relative_offset};
    (void)time_index_file_->write_at(time_index_.size() * kTimeEntrySize, encode_time_entry(entry));
    time_index_.push_back(entry);
  }
  if (auto status = log_->sync(); !status.ok()) return status;
  (void)index_->sync();
  (void)time_index_file_->sync();
  return absl::OkStatus();
}

uint64_t Segment::position_for(uint64_t offset) const {
  uint32_t relative = offset <= base_offset_ ? 0 : static_cast<uint32_t>(offset - base_offset_);
  auto it = std::upper_bound(
      offset_index_.begin(), offset_index_.end(), relative,
      [](uint32_t value, const OffsetIndexEntry& entry) { return value < entry.relative_offset; });
  if (it == offset_index_.begin()) return 0;
  return std::prev(it)->position;
}

absl::StatusOr<std::vector<StoredRecord>> Segment::read(uint64_t offset, size_t max_records,
                                                        size_t max_bytes) const {
  std::vector<StoredRecord> out;
  if (offset >= next_offset_ || max_records == 0) return out;
  BatchScanner scanner(*log_, position_for(offset), size_);
  size_t bytes = 0;
  while (!scanner.at_end() && out.size() < max_records && (bytes < max_bytes || out.empty())) {
    auto batch = scanner.next();
    if (!batch.ok()) {
      return absl::DataLossError(str_cat("segment ", log_->path().string(), " at byte ",
                                         scanner.position(), ": ", batch.status().message()));
    }
    const auto& [header, view] = *batch;
    if (header.next_offset() > offset) {
      auto records = decode_batch(view);
      if (!records.ok()) {
        return absl::DataLossError(str_cat("segment ", log_->path().string(), " at byte ",
                                           scanner.position(), ": ", records.status().message()));
      }
      for (auto& record : *records) {
        if (record.offset < offset) continue;
        if (out.size() >= max_records) break;
        out.push_back(std::move(record));
      }
      bytes += header.total_size();
    }
    scanner.advance(header.total_size());
  }
  return out;
}

absl::StatusOr<std::optional<uint64_t>> Segment::find_timestamp(int64_t timestamp_ms) const {
  if (empty() || max_timestamp_ms_ < timestamp_ms) return std::optional<uint64_t>();
  // Batches up to the last entry whose running max is below the target hold
  // nothing at or after it; start scanning at that entry's batch.
  uint64_t start = base_offset_;
  for (const auto& entry : time_index_) {
    if (entry.max_timestamp_ms >= timestamp_ms) break;
    start = base_offset_ + entry.relative_offset;
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
