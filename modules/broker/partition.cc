#include "partition.h"

#include <spdlog/logger.h>

#include <algorithm>

#include "telekern/log.h"
#include "telekern/strings.h"

namespace telekern::broker {

Partition::Partition(std::filesystem::path directory, uint32_t id, PartitionOptions options,
                     std::shared_ptr<spdlog::logger> logger)
    : directory_(std::move(directory)), id_(id), options_(options), logger_(std::move(logger)) {}

Partition::~Partition() = default;

absl::StatusOr<std::unique_ptr<Partition>> Partition::open(const std::filesystem::path& directory,
                                                           uint32_t id, PartitionOptions options,
                                                           std::shared_ptr<spdlog::logger> logger) {
  std::error_code error;
  std::filesystem::create_directories(directory, error);
  if (error) return io_error("cannot create", directory, error.value());
  std::unique_ptr<Partition> partition(new Partition(directory, id, options, std::move(logger)));
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
  for (size_t i = 0; i < bases.size(); ++i) {
    bool active = i + 1 == bases.size();
    SegmentRecovery recovery;
    auto segment =
        Segment::open(directory, bases[i], options.index_interval_bytes, active, &recovery);
    if (!segment.ok()) return segment.status();
    if (partition->logger_ && recovery.truncated_bytes > 0) {
      partition->logger_->warn("partition {}: truncated {} bytes of torn or corrupt tail: {}",
                               directory.string(), recovery.truncated_bytes, recovery.reason);
    }
    if (partition->logger_ && recovery.index_rebuilt) {
      partition->logger_->warn("partition {}: rebuilt the index of segment {}", directory.string(),
                               bases[i]);
    }
    partition->segments_.push_back(std::move(*segment));
  }
  if (partition->segments_.empty()) {
    auto segment = Segment::create(directory, 0, options.index_interval_bytes);
    if (!segment.ok()) return segment.status();
    partition->segments_.push_back(std::move(*segment));
  }
  return partition;
}

absl::Status Partition::roll() {
  auto& active = segments_.back();
  if (auto status = active->seal(); !status.ok()) return status;
  auto next = Segment::create(directory_, active->next_offset(), options_.index_interval_bytes);
  if (!next.ok()) return next.status();
  segments_.push_back(std::move(*next));
  return absl::OkStatus();
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
