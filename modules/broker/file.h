// A file of the log with the few calls it needs. Its descriptor is owned by
// RAII and shared out by OpenFiles under a cap: an idle File may have its
// descriptor closed (least recently used first) and reopens it on the next
// call, so open descriptors are bounded by configuration, not by history.
// Errors come back as absl::Status naming the path; a full disk (ENOSPC,
// EDQUOT, EFBIG from RLIMIT_FSIZE) and the process's open-file limit
// (EMFILE, ENFILE) are RESOURCE_EXHAUSTED.
#pragma once

#include <absl/status/status.h>
#include <absl/status/statusor.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <list>
#include <memory>
#include <string>
#include <string_view>

namespace telekern::broker {

// The process-wide bound on the descriptors Files hold. Every broker in the
// process shares it (they share the process's RLIMIT_NOFILE).
class OpenFiles {
 public:
  struct Usage {
    uint64_t open = 0;     // descriptors Files hold now
    uint64_t cap = 0;      // max_open_files in force (0 = unbounded)
    uint64_t reopens = 0;  // descriptors opened again after an idle close
    uint64_t idle_closes = 0;
  };
  // Sets the cap; idle descriptors above it close at once.
  static void set_cap(uint64_t cap);
  // Closes the descriptors no call has used for `age` (the broker's tick,
  // file_idle_timeout): a quiet partition's files do not stay open for ever.
  // Returns how many it closed.
  static size_t close_unused_for(std::chrono::steady_clock::duration age);
  static Usage usage();
  // The soft RLIMIT_NOFILE of the process (0 when unlimited or unknown).
  static uint64_t process_limit();
  // The cap used when max_open_files is 0: half the process limit, so the
  // rest (sockets, gRPC, other modules) keeps its share.
  static uint64_t default_cap();

 private:
  friend class File;
  // With the state's mutex held: closes idle descriptors, least recently
  // used first, until at most `keep` are open; make_room leaves room for one
  // more under the cap.
  static void close_idle_locked(uint64_t keep);
  static void make_room_locked();
};

class File {
 public:
  // Opens read-write, creating the file when `create` is set.
  static absl::StatusOr<std::unique_ptr<File>> open(const std::filesystem::path& path, bool create);
  ~File();
  File(const File&) = delete;
  File& operator=(const File&) = delete;

  const std::filesystem::path& path() const { return path_; }
  absl::StatusOr<uint64_t> size() const;
  // Writes all of `bytes` at `position`; on a short write the caller truncates.
  absl::Status write_at(uint64_t position, std::string_view bytes);
  // Reads up to `size` bytes at `position`; fewer when the file ends first.
  // The buffer is sized to what the file holds, never to `size` alone.
  absl::StatusOr<std::string> read_at(uint64_t position, size_t size) const;
  absl::Status truncate(uint64_t size);
  absl::Status sync();  // fdatasync

  // Bytes all File::read_at calls of this process have returned (tests
  // check that opening a partition reads in proportion to its unclean tail).
  static uint64_t total_bytes_read();
  // Whether the descriptor is open now (tests).
  bool is_open() const;

 private:
  friend class OpenFiles;
  friend class FileLease;
  explicit File(std::filesystem::path path) : path_(std::move(path)) {}
  // The descriptor, opened again when an idle close took it; pinned (never
  // closed) until release().
  absl::StatusOr<int> acquire() const;
  void release() const;

  std::filesystem::path path_;
  // Guarded by the OpenFiles mutex.
  mutable int fd_ = -1;
  mutable uint32_t pins_ = 0;
  mutable bool idle_listed_ = false;
  mutable std::list<const File*>::iterator idle_position_;
  mutable std::chrono::steady_clock::time_point idle_since_;
};

// The status for a failed system call on `path` (errno given).
absl::Status io_error(std::string_view what, const std::filesystem::path& path, int error_number);

// fsyncs a directory so entries created or removed in it survive a crash.
absl::Status sync_directory(const std::filesystem::path& directory);

// Writes a small file atomically: temp file, fsync, rename, fsync directory.
absl::Status write_file_atomically(const std::filesystem::path& path, std::string_view contents);

absl::StatusOr<std::string> read_small_file(const std::filesystem::path& path);

}  // namespace telekern::broker
