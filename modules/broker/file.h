// A POSIX file descriptor owned by RAII, with the few calls the log needs.
// Errors come back as absl::Status naming the path; a full disk (ENOSPC,
// EDQUOT, EFBIG from RLIMIT_FSIZE) is RESOURCE_EXHAUSTED.
#pragma once

#include <absl/status/status.h>
#include <absl/status/statusor.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

namespace telekern::broker {

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

 private:
  File(std::filesystem::path path, int fd) : path_(std::move(path)), fd_(fd) {}
  std::filesystem::path path_;
  int fd_ = -1;
};

// The status for a failed system call on `path` (errno given).
absl::Status io_error(std::string_view what, const std::filesystem::path& path, int error_number);

// fsyncs a directory so entries created or removed in it survive a crash.
absl::Status sync_directory(const std::filesystem::path& directory);

// Writes a small file atomically: temp file, fsync, rename, fsync directory.
absl::Status write_file_atomically(const std::filesystem::path& path, std::string_view contents);

absl::StatusOr<std::string> read_small_file(const std::filesystem::path& path);

}  // namespace telekern::broker
