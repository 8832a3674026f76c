#include "group_state_log.h"

#include <cstring>

#include "crc32c.h"
#include "telekern/strings.h"

namespace telekern::broker {
namespace {

// crc u32 | type u8 | partition u32 | offset u64 | value u32
constexpr size_t kEntrySize = 21;

std::string encode_entry(GroupStateLog::EntryType type, uint32_t partition, uint64_t offset,
                         uint32_t value) {
  std::string out(kEntrySize, '\0');
  out[4] = static_cast<char>(type);
  std::memcpy(out.data() + 5, &partition, 4);
  std::memcpy(out.data() + 9, &offset, 8);
  std::memcpy(out.data() + 17, &value, 4);
  uint32_t crc = crc32c(out.data() + 4, kEntrySize - 4);
  std::memcpy(out.data(), &crc, 4);
  return out;
}

void normalize(PartitionGroupState& partition) {
  while (!partition.acked.empty() && *partition.acked.begin() <= partition.committed) {
    if (*partition.acked.begin() == partition.committed) ++partition.committed;
    partition.acked.erase(partition.acked.begin());
  }
  partition.attempts.erase(partition.attempts.begin(),
                           partition.attempts.lower_bound(partition.committed));
  partition.history.erase(partition.history.begin(),
                          partition.history.lower_bound(partition.committed));
}

std::string encode_history(uint32_t partition, uint64_t offset, const std::string& text) {
  std::string out = encode_entry(GroupStateLog::EntryType::kHistory, partition, offset,
                                 static_cast<uint32_t>(text.size()));
  out += text;
  uint32_t crc = crc32c(text.data(), text.size());
  out.append(reinterpret_cast<const char*>(&crc), 4);
  return out;
}

}  // namespace

void GroupStateLog::apply(GroupSnapshot& state, EntryType type, uint32_t partition, uint64_t offset,
                          uint32_t value) {
  switch (type) {
    case EntryType::kMode:
      state.mode =
          value == static_cast<uint32_t>(GroupMode::kQueue) ? GroupMode::kQueue : GroupMode::kLog;
      return;
    case EntryType::kDeadLetteredCount:
      state.dead_lettered = offset;
      return;
    default:
      break;
  }
  auto& target = state.partitions[partition];
  switch (type) {
    case EntryType::kCommit:
      target.has_commit = true;
      target.committed = offset;
      target.acked.erase(target.acked.begin(), target.acked.lower_bound(offset));
      break;
    case EntryType::kDeadLetter:
      ++state.dead_lettered;
      [[fallthrough]];
    case EntryType::kAck:
      target.attempts.erase(offset);
      target.history.erase(offset);
      if (offset >= target.committed) target.acked.insert(offset);
      break;
    case EntryType::kAttempts:
      if (offset >= target.committed) target.attempts[offset] = value;
      break;
    default:
      return;
  }
  normalize(target);
}

void GroupStateLog::apply_history(GroupSnapshot& state, uint32_t partition, uint64_t offset,
                                  std::string text) {
  auto& target = state.partitions[partition];
  if (offset < target.committed || target.acked.count(offset)) return;
  auto& lines = target.history[offset];
  lines.push_back(std::move(text));
  if (lines.size() > kMaxHistory) lines.erase(lines.begin());
}

void GroupStateLog::record_history(GroupSnapshot& state, uint32_t partition, uint64_t offset,
                                   const std::string& text) {
  pending_ += encode_history(partition, offset, text);
  ++entries_since_compaction_;
  apply_history(state, partition, offset, text);
}

absl::StatusOr<std::unique_ptr<GroupStateLog>> GroupStateLog::open(
    const std::filesystem::path& path, GroupSnapshot* state, uint64_t* truncated_bytes) {
  std::error_code error;
  std::filesystem::create_directories(path.parent_path(), error);
  if (error) return io_error("cannot create", path.parent_path(), error.value());
  std::unique_ptr<GroupStateLog> log(new GroupStateLog(path));
  auto file = File::open(path, true);
  if (!file.ok()) return file.status();
  log->file_ = std::move(*file);
  auto size = log->file_->size();
  if (!size.ok()) return size.status();
  auto bytes = log->file_->read_at(0, *size);
  if (!bytes.ok()) return bytes.status();
  size_t position = 0;
  while (position + kEntrySize <= bytes->size()) {
    const char* entry = bytes->data() + position;
    uint32_t crc;
    std::memcpy(&crc, entry, 4);
    if (crc != crc32c(entry + 4, kEntrySize - 4)) break;
    uint32_t partition, value;
    uint64_t offset;
    std::memcpy(&partition, entry + 5, 4);
    std::memcpy(&offset, entry + 9, 8);
    std::memcpy(&value, entry + 17, 4);
    auto type = static_cast<EntryType>(entry[4]);
    if (type == EntryType::kHistory) {
      if (position + kEntrySize + value + 4 > bytes->size()) break;
      std::string text(entry + kEntrySize, value);
      uint32_t text_crc;
      std::memcpy(&text_crc, entry + kEntrySize + value, 4);
      if (text_crc != crc32c(text.data(), text.size())) break;
      apply_history(*state, partition, offset, std::move(text));
      position += kEntrySize + value + 4;
      continue;
    }
    apply(*state, type, partition, offset, value);
    position += kEntrySize;
  }
  if (truncated_bytes) *truncated_bytes = bytes->size() - position;
  if (position < bytes->size()) {
    if (auto status = log->file_->truncate(position); !status.ok()) return status;
  }
  log->size_ = position;
  log->entries_since_compaction_ = position / kEntrySize;
  return log;
}

void GroupStateLog::write(EntryType type, uint32_t partition, uint64_t offset, uint32_t value) {
  pending_ += encode_entry(type, partition, offset, value);
  ++entries_since_compaction_;
}

absl::Status GroupStateLog::flush() {
  if (removed_) pending_.clear();
  if (pending_.empty()) return absl::OkStatus();
  if (auto status = file_->write_at(size_, pending_); !status.ok()) {
    (void)file_->truncate(size_);
    return status;
  }
  size_ += pending_.size();
  pending_.clear();
  return absl::OkStatus();
}

void GroupStateLog::write_mode(GroupMode mode) {
  write(EntryType::kMode, 0, 0, static_cast<uint32_t>(mode));
}
void GroupStateLog::write_commit(uint32_t partition, uint64_t offset) {
  write(EntryType::kCommit, partition, offset, 0);
}
void GroupStateLog::write_ack(uint32_t partition, uint64_t offset) {
  write(EntryType::kAck, partition, offset, 0);
}
void GroupStateLog::write_attempts(uint32_t partition, uint64_t offset, uint32_t attempts) {
  write(EntryType::kAttempts, partition, offset, attempts);
}
void GroupStateLog::write_dead_letter(uint32_t partition, uint64_t offset) {
  write(EntryType::kDeadLetter, partition, offset, 0);
}

absl::Status GroupStateLog::sync() {
  if (auto status = flush(); !status.ok()) return status;
  if (removed_) return absl::OkStatus();
  return file_->sync();
}

absl::StatusOr<std::shared_ptr<File>> GroupStateLog::flush_for_sync() {
  if (auto status = flush(); !status.ok()) return status;
  if (removed_) return std::shared_ptr<File>();
  return file_;
}

absl::Status GroupStateLog::compact(const GroupSnapshot& state) {
  if (removed_) {
    pending_.clear();
    return absl::OkStatus();
  }
  std::string bytes = encode_entry(EntryType::kMode, 0, 0, static_cast<uint32_t>(state.mode));
  bytes += encode_entry(EntryType::kDeadLetteredCount, 0, state.dead_lettered, 0);
  for (const auto& [id, partition] : state.partitions) {
    if (partition.has_commit) bytes += encode_entry(EntryType::kCommit, id, partition.committed, 0);
    for (uint64_t offset : partition.acked) bytes += encode_entry(EntryType::kAck, id, offset, 0);
    for (const auto& [offset, attempts] : partition.attempts) {
      bytes += encode_entry(EntryType::kAttempts, id, offset, attempts);
    }
    for (const auto& [offset, lines] : partition.history) {
      for (const auto& line : lines) bytes += encode_history(id, offset, line);
    }
  }
  if (auto status = write_file_atomically(path_, bytes); !status.ok()) return status;
  pending_.clear();
  auto file = File::open(path_, false);
  if (!file.ok()) return file.status();
  file_ = std::move(*file);
  size_ = bytes.size();
  entries_since_compaction_ = 0;
  return absl::OkStatus();
}

absl::Status GroupStateLog::remove() {
  removed_ = true;
  pending_.clear();
  std::error_code error;
  std::filesystem::remove(path_, error);
  if (error) return io_error("cannot remove", path_, error.value());
  return absl::OkStatus();
}

}  // namespace telekern::broker
