#include "partition.h"

#include <spdlog/logger.h>

#include <algorithm>
#include <cstring>

#include "crc32c.h"
#include "file.h"
#include "telekern/log.h"
#include "telekern/strings.h"

namespace telekern::broker {

Partition::Partition(std::filesystem::path directory, uint32_t id, PartitionOptions options,
                     std::shared_ptr<spdlog::logger> logger)
    : directory_(std::move(directory)), id_(id), options_(options), logger_(std::move(logger)) {}

Partition::~Partition() = default;

namespace {

constexpr const char* kHighWaterFile = "high_water";
constexpr const char* kGapsFile = "offset_gaps";
constexpr uint32_t kHighWaterMagic = 0x57484B54;  // "TKHW"
constexpr size_t kHighWaterSize = 16;

// high_water: magic u32 | crc32c(next_offset) u32 | next_offset u64, rewritten
// in place (one sector) after each periodic flush and at shutdown.
std::string encode_high_water(uint64_t next_offset) {
  std::string out(kHighWaterSize, '\0');
  uint32_t crc = crc32c(reinterpret_cast<const char*>(&next_offset), 8);
  std::memcpy(out.data(), &kHighWaterMagic, 4);
  std::memcpy(out.data() + 4, &crc, 4);
  std::memcpy(out.data() + 8, &next_offset, 8);
  return out;
}

std::optional<uint64_t> decode_high_water(std::string_view bytes) {
  if (bytes.size() != kHighWaterSize) return std::nullopt;
  uint32_t magic, crc;
  uint64_t next_offset;
  std::memcpy(&magic, bytes.data(), 4);
  std::memcpy(&crc, bytes.data() + 4, 4);
  std::memcpy(&next_offset, bytes.data() + 8, 8);
  if (magic != kHighWaterMagic || crc != crc32c(reinterpret_cast<const char*>(&next_offset), 8))
    return std::nullopt;
  return next_offset;
}

// offset_gaps: one "A-B" line per range of offsets left unused on purpose
// (written atomically, only when a recovery moves new offsets past a cut).
std::vector<std::pair<uint64_t, uint64_t>> read_gaps(const std::filesystem::path& directory) {
  std::vector<std::pair<uint64_t, uint64_t>> out;
  auto text = read_small_file(directory / kGapsFile);
  if (!text.ok()) return out;
  for (const auto& line : split(*text, '\n')) {
    auto range = split(trim(line), '-');
    if (range.size() != 2) continue;
    auto from = parse_int(range[0]);
    auto to = parse_int(range[1]);
    if (from && to && *from >= 0 && *to > *from)
      out.emplace_back(static_cast<uint64_t>(*from), static_cast<uint64_t>(*to));
  }
  return out;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Partition>> Partition::open(const std::filesystem::path& directory,
                                                           uint32_t id, PartitionOptions options,
                                                           std::shared_ptr<spdlog::logger> logger) {
  std::error_code error;
  std::filesystem::create_directories(directory, error);
  if (error) return io_error("cannot create", directory, error.value());
  std::unique_ptr<Partition> partition(new Partition(directory, id, options, std::move(logger)));
  auto* log = partition->logger_.get();
  std::vector<uint64_t> bases;
  for (const auto& entry : std::filesystem::directory_iterator(directory, error)) {
    const auto& path = entry.path();
    if (path.extension() != ".log") continue;
    auto base = parse_int(path.stem().string());
    if (!base || *base < 0) continue;
    bases.push_back(static_cast<uint64_t>(*base));
  }
  if (error) return io_error("cannot list", directory, error.value());
  std::sort(bases.begin(), bases.end());
  std::optional<uint64_t> high_water;
  if (auto bytes = read_small_file(directory / kHighWaterFile); bytes.ok()) {
    high_water = decode_high_water(*bytes);
    if (!high_water && log) {
      log->warn("{}: unreadable high-water file, ignored", (directory / kHighWaterFile).string());
    }
  }
  partition->skipped_ = read_gaps(directory);
  for (size_t i = 0; i < bases.size(); ++i) {
    bool active = i + 1 == bases.size();
    SegmentRecovery recovery;
    auto segment =
        Segment::open(directory, bases[i], options.index_interval_bytes, active, &recovery);
    if (!segment.ok()) return segment.status();
    auto file = Segment::log_path(directory, bases[i]).string();
    if (recovery.truncated_bytes > 0) {
      if (log) {
        log->warn("partition {}: truncated {} bytes of torn or corrupt tail: {}",
                  directory.string(), recovery.truncated_bytes, recovery.reason);
      }
      partition->count_fault("torn_tail", "");
    }
    if (recovery.index_rebuilt) {
      if (log) log->warn("partition {}: rebuilt the index of segment {}", directory.string(), file);
      partition->count_fault("index_rebuilt", "");
    }
    // An empty active segment is normal (a new topic, a fresh roll) unless
    // offsets past its base were handed out before.
    bool lost_active = active && high_water && *high_water > bases[i];
    if (recovery.zero_length && log && (!active || lost_active)) {
      log->warn("partition {}: {} segment {} is empty (zero-length)", directory.string(),
                active ? "active" : "sealed", file);
    }
    for (const auto& range : recovery.damaged) partition->on_damage(file, range);
    (*segment)->set_damage_listener(
        [raw = partition.get()](const std::filesystem::path& path, const DamagedRange& range) {
          raw->on_damage(path, range);
        });
    partition->segments_.push_back(std::move(*segment));
  }
  // Offsets missing between two segment files (one missing, empty or cut),
  // unless a recovery left the gap on purpose.
  auto& segments = partition->segments_;
  for (size_t i = 0; i + 1 < segments.size(); ++i) {
    uint64_t end = segments[i]->next_offset();
    uint64_t next = segments[i + 1]->base_offset();
    if (end >= next) continue;
    bool on_purpose =
        std::any_of(partition->skipped_.begin(), partition->skipped_.end(),
                    [&](const auto& gap) { return gap.first <= end && gap.second >= next; });
    if (on_purpose) continue;
    std::string what = str_cat("offsets ", end, "..", next - 1, " are missing between ",
                               Segment::log_path(directory, segments[i]->base_offset()).string(),
                               " and ", Segment::log_path(directory, next).string(),
                               " (a segment file is missing, empty or cut); they are skipped");
    if (log) log->error("partition {}: {}", directory.string(), what);
    partition->count_fault("missing_offsets", what);
  }
  if (partition->segments_.empty()) {
    auto segment = Segment::create(directory, 0, options.index_interval_bytes);
    if (!segment.ok()) return segment.status();
    partition->segments_.push_back(std::move(*segment));
  }
  auto high_water_file = File::open(directory / kHighWaterFile, true);
  if (!high_water_file.ok()) return high_water_file.status();
  partition->high_water_file_ = std::move(*high_water_file);
  if (high_water) {
    partition->high_water_written_ = *high_water;
    if (*high_water > partition->end_offset()) {
      auto status = partition->advance_to(*high_water, "the high-water mark recorded before");
      if (!status.ok()) return status;
    }
  }
  return partition;
}

void Partition::count_fault(const std::string& kind, const std::string& degraded) {
  std::lock_guard lock(faults_mutex_);
  ++faults_[kind];
  if (!degraded.empty() && degraded_.empty()) degraded_ = degraded;
}

void Partition::on_damage(const std::filesystem::path& file, const DamagedRange& range) {
  std::string what = str_cat("unreadable ", file.string(), " bytes ", range.position, "..",
                             range.end_position, " (", range.reason, ")");
  if (range.end_offset > range.first_offset) {
    what += str_cat(": offsets ", range.first_offset, "..", range.end_offset - 1, " are skipped");
  }
  if (logger_) logger_->error("partition {}: {}", directory_.string(), what);
  count_fault("corrupt_batch", what);
}

FaultCounts Partition::faults() const {
  std::lock_guard lock(faults_mutex_);
  return faults_;
}

std::optional<std::string> Partition::degraded_reason() const {
  std::lock_guard lock(faults_mutex_);
  if (degraded_.empty()) return std::nullopt;
  return degraded_;
}

absl::Status Partition::advance_to(uint64_t offset, const std::string& why) {
  uint64_t from;
  {
    std::unique_lock lock(mutex_);
    if (removed_) return absl::NotFoundError("partition was deleted");
    from = segments_.back()->next_offset();
    if (from >= offset) return absl::OkStatus();
    if (auto status = roll_to(offset); !status.ok()) return status;
  }
  if (logger_) {
    logger_->warn(
        "partition {}: the log ends at offset {} but offsets up to {} were handed out before "
        "({}); new records start at {}, offsets {}..{} stay unused",
        directory_.string(), from, offset - 1, why, offset, from, offset - 1);
  }
  count_fault("offsets_skipped", "");
  std::lock_guard lock(high_water_mutex_);
  skipped_.emplace_back(from, offset);
  uint64_t start = start_offset();
  std::string gaps;
  for (const auto& [gap_from, gap_to] : skipped_) {
    if (gap_to > start) gaps += str_cat(gap_from, "-", gap_to, "\n");
  }
  if (auto status = write_file_atomically(directory_ / kGapsFile, gaps); !status.ok())
    return status;
  return write_high_water_locked(offset);
}

absl::Status Partition::roll_to(uint64_t base_offset) {
  auto& active = segments_.back();
  if (active->empty()) {
    // Nothing in it: replace it by one that starts at base_offset.
    if (auto status = active->remove(); !status.ok()) return status;
    segments_.pop_back();
  } else if (auto status = active->seal(); !status.ok()) {
    return status;
  }
  auto next = Segment::create(directory_, base_offset, options_.index_interval_bytes);
  if (!next.ok()) return next.status();
  (*next)->set_damage_listener([this](const std::filesystem::path& path,
                                      const DamagedRange& range) { on_damage(path, range); });
  segments_.push_back(std::move(*next));
  return absl::OkStatus();
}

absl::Status Partition::write_high_water() {
  uint64_t end;
  {
    std::shared_lock lock(mutex_);
    if (removed_) return absl::OkStatus();
    end = segments_.back()->next_offset();
  }
  std::lock_guard lock(high_water_mutex_);
  if (end == high_water_written_) return absl::OkStatus();
  return write_high_water_locked(end);
}

absl::Status Partition::write_high_water_locked(uint64_t end) {
  if (!high_water_file_) return absl::OkStatus();  // removed
  if (auto status = high_water_file_->write_at(0, encode_high_water(end)); !status.ok())
    return status;
  if (auto status = high_water_file_->sync(); !status.ok()) return status;
  high_water_written_ = end;
  return absl::OkStatus();
}

absl::Status Partition::roll() {
  auto& active = segments_.back();
  if (auto status = active->seal(); !status.ok()) return status;
  auto next = Segment::create(directory_, active->next_offset(), options_.index_interval_bytes);
  if (!next.ok()) return next.status();
  (*next)->set_damage_listener([this](const std::filesystem::path& path,
                                      const DamagedRange& range) { on_damage(path, range); });
  segments_.push_back(std::move(*next));
  return absl::OkStatus();
}

bool Partition::append_is_quick() const {
  std::shared_lock lock(mutex_, std::try_to_lock);
  if (!lock.owns_lock() || removed_) return false;
  return segments_.back()->empty() || segments_.back()->size_bytes() < options_.segment_bytes;
}

absl::StatusOr<AppendResult> Partition::append(const std::vector<Record>& records) {
  if (records.empty()) return absl::InvalidArgumentError("no records to append");
  std::unique_lock lock(mutex_);
  if (removed_) return absl::NotFoundError("partition was deleted");
  if (!segments_.back()->empty() && segments_.back()->size_bytes() >= options_.segment_bytes) {
    if (auto status = roll(); !status.ok()) return status;
  }
  auto& active = segments_.back();
  uint64_t first = active->next_offset();
  std::string batch = encode_batch(first, records);
  auto header = parse_batch_header(batch);
  if (!header.ok()) return header.status();
  if (auto status = active->append(batch, *header); !status.ok()) return status;
  ++appended_sequence_;
  return AppendResult{first, static_cast<uint32_t>(records.size()), appended_sequence_};
}

absl::StatusOr<uint64_t> Partition::sync() {
  std::lock_guard sync_lock(sync_mutex_);
  uint64_t target;
  std::shared_ptr<Segment> active;
  {
    std::shared_lock lock(mutex_);
    if (removed_) return absl::NotFoundError("partition was deleted");
    target = appended_sequence_;
    active = segments_.back();
  }
  {
    std::lock_guard lock(durable_mutex_);
    if (durable_sequence_ >= target) return durable_sequence_;
  }
  // Older segments were fsynced when they were sealed, so syncing the segment
  // that was active when `target` was read covers every append up to it.
  if (auto status = active->sync(); !status.ok()) return status;
  std::lock_guard lock(durable_mutex_);
  durable_sequence_ = std::max(durable_sequence_, target);
  return durable_sequence_;
}

uint64_t Partition::durable_sequence() const {
  std::lock_guard lock(durable_mutex_);
  return durable_sequence_;
}

uint64_t Partition::appended_sequence() const {
  std::shared_lock lock(mutex_);
  return appended_sequence_;
}

absl::StatusOr<std::vector<StoredRecord>> Partition::read(uint64_t offset, size_t max_records,
                                                          size_t max_bytes) const {
  std::shared_lock lock(mutex_);
  if (removed_) return absl::NotFoundError("partition was deleted");
  auto it = std::upper_bound(segments_.begin(), segments_.end(), offset,
                             [](uint64_t value, const std::shared_ptr<Segment>& segment) {
                               return value < segment->base_offset();
                             });
  if (it != segments_.begin()) --it;
  for (; it != segments_.end(); ++it) {
    if (offset >= (*it)->next_offset()) continue;  // past this segment (or in a gap)
    auto records = (*it)->read(std::max(offset, (*it)->base_offset()), max_records, max_bytes);
    if (!records.ok() || !records->empty()) return records;
  }
  return std::vector<StoredRecord>();
}

absl::StatusOr<uint64_t> Partition::offset_for_timestamp(int64_t timestamp_ms) const {
  std::shared_lock lock(mutex_);
  for (const auto& segment : segments_) {
    auto found = segment->find_timestamp(timestamp_ms);
    if (!found.ok()) return found.status();
    if (found->has_value()) return **found;
  }
  return segments_.back()->next_offset();
}

absl::StatusOr<int> Partition::enforce_retention(int64_t retention_ms, uint64_t retention_bytes,
                                                 int64_t now_ms) {
  std::unique_lock lock(mutex_);
  if (removed_) return 0;
  int removed = 0;
  uint64_t total = 0;
  for (const auto& segment : segments_) total += segment->size_bytes();
  while (segments_.size() > 1) {
    auto& oldest = segments_.front();
    bool too_old =
        retention_ms > 0 && !oldest->empty() && oldest->max_timestamp_ms() < now_ms - retention_ms;
    bool too_big = retention_bytes > 0 && total - oldest->size_bytes() >= retention_bytes;
    if (!too_old && !too_big && !oldest->empty()) break;
    total -= oldest->size_bytes();
    if (auto status = oldest->remove(); !status.ok()) return status;
    segments_.erase(segments_.begin());
    ++removed;
  }
  return removed;
}

PartitionStats Partition::stats() const {
  std::shared_lock lock(mutex_);
  PartitionStats stats;
  stats.start_offset = segments_.front()->base_offset();
  stats.end_offset = segments_.back()->next_offset();
  for (const auto& segment : segments_) stats.bytes += segment->size_bytes();
  stats.segments = static_cast<uint32_t>(segments_.size());
  return stats;
}

uint64_t Partition::end_offset() const {
  std::shared_lock lock(mutex_);
  return segments_.back()->next_offset();
}

uint64_t Partition::start_offset() const {
  std::shared_lock lock(mutex_);
  return segments_.front()->base_offset();
}

void Partition::set_segment_bytes(uint64_t bytes) {
  std::unique_lock lock(mutex_);
  options_.segment_bytes = bytes;
}

absl::Status Partition::remove() {
  std::unique_lock lock(mutex_);
  removed_ = true;
  for (auto& segment : segments_) (void)segment->remove();
  std::error_code error;
  std::filesystem::remove_all(directory_, error);
  if (error) return io_error("cannot remove", directory_, error.value());
  return absl::OkStatus();
}

}  // namespace telekern::broker
