// The durable part of a consumer group: an append-only log of fixed-size,
// CRC32C-checked entries (commits, acks, delivery attempts, dead letters),
// replayed on open (a torn tail is cut) and compacted into a snapshot when it
// grows. Writes reach the page cache at once (they survive a process crash);
// sync() makes them survive power loss.
#pragma once

#include <absl/status/status.h>
#include <absl/status/statusor.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "file.h"

namespace telekern::broker {

enum class GroupMode : uint8_t { kLog = 1, kQueue = 2 };

struct PartitionGroupState {
  bool has_commit = false;
  uint64_t committed = 0;    // LOG: next offset to read; QUEUE: lowest offset not acked
  std::set<uint64_t> acked;  // QUEUE: acked or dead-lettered offsets above committed
  std::map<uint64_t, uint32_t> attempts;  // QUEUE: deliveries so far of offsets not acked
  // QUEUE: failed attempts ("attempt N by MEMBER: REASON") of offsets not
  // acked, so a dead letter after a restart carries the whole history.
  std::map<uint64_t, std::vector<std::string>> history;
};

struct GroupSnapshot {
  GroupMode mode = GroupMode::kLog;
  uint64_t dead_lettered = 0;
  std::map<uint32_t, PartitionGroupState> partitions;
};

class GroupStateLog {
 public:
  // Opens or creates the log and replays it into `state`. `truncated_bytes`
  // tells how much of a torn tail was cut.
  static absl::StatusOr<std::unique_ptr<GroupStateLog>> open(const std::filesystem::path& path,
                                                             GroupSnapshot* state,
                                                             uint64_t* truncated_bytes);

  // Entries are buffered until flush(), so one operation costs one write.
  void write_mode(GroupMode mode);
  void write_commit(uint32_t partition, uint64_t offset);
  void write_ack(uint32_t partition, uint64_t offset);
  void write_attempts(uint32_t partition, uint64_t offset, uint32_t attempts);
  void write_dead_letter(uint32_t partition, uint64_t offset);
  // Writes buffered entries to the file (page cache).
  absl::Status flush();
  // flush() and fdatasync.
  absl::Status sync();
  // flush(), then hands out the file for an fdatasync the caller runs
  // without the lock that guards this log, so writers never wait out a slow
  // disk; nullptr once the log was removed.
  absl::StatusOr<std::shared_ptr<File>> flush_for_sync();
  // Whether `file` is still this log's file (not compacted away or removed).
  bool writes_to(const std::shared_ptr<File>& file) const { return !removed_ && file_ == file; }
  bool empty() const { return size_ == 0 && pending_.empty(); }

  // Entries written since the log was last compacted (or opened).
  uint64_t entries_since_compaction() const { return entries_since_compaction_; }
  // Replaces the log with the minimal entries that reproduce `state`.
  absl::Status compact(const GroupSnapshot& state);
  // Deletes the file; later writes are dropped, so a deleted group never comes back.
  absl::Status remove();

  // Applies one entry to a snapshot (exposed for tests).
  enum class EntryType : uint8_t {
    kMode = 1,
    kCommit = 2,
    kAck = 3,
    kAttempts = 4,
    kDeadLetter = 5,
    kDeadLetteredCount = 6,
    // value = text length; the entry is followed by the text and its CRC32C.
    kHistory = 7
  };
  // Most history lines kept per offset (the oldest go first).
  static constexpr size_t kMaxHistory = 20;
  static void apply(GroupSnapshot& state, EntryType type, uint32_t partition, uint64_t offset,
                    uint32_t value);
  static void apply_history(GroupSnapshot& state, uint32_t partition, uint64_t offset,
                            std::string text);
  void record_history(GroupSnapshot& state, uint32_t partition, uint64_t offset,
                      const std::string& text);
  // Buffers an entry and applies it to `state`: live state and replay agree by construction.
  void record(GroupSnapshot& state, EntryType type, uint32_t partition, uint64_t offset,
              uint32_t value = 0) {
    write(type, partition, offset, value);
    apply(state, type, partition, offset, value);
  }

 private:
  explicit GroupStateLog(std::filesystem::path path) : path_(std::move(path)) {}
  void write(EntryType type, uint32_t partition, uint64_t offset, uint32_t value);

  std::filesystem::path path_;
  std::shared_ptr<File> file_;  // shared with an fdatasync in progress
  uint64_t size_ = 0;
  std::string pending_;
  uint64_t entries_since_compaction_ = 0;
  bool removed_ = false;
};

}  // namespace telekern::broker
