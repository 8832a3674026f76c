#include "file.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>

#include "telekern/strings.h"

namespace telekern::broker {
namespace {

std::atomic<uint64_t> bytes_read{0};

// Reads larger than this first ask the file its size, so a caller asking for
// "everything" (an index, say) allocates only what the file holds.
constexpr size_t kSizeCheckThreshold = 64 * 1024;

}  // namespace

uint64_t File::total_bytes_read() { return bytes_read.load(std::memory_order_relaxed); }

absl::Status io_error(std::string_view what, const std::filesystem::path& path, int error_number) {
  std::string message = str_cat(what, " ", path.string(), ": ", std::strerror(error_number));
  if (error_number == ENOSPC || error_number == EDQUOT || error_number == EFBIG) {
    return absl::ResourceExhaustedError(str_cat("disk full: ", message));
  }
  if (error_number == ENOENT) return absl::NotFoundError(message);
  return absl::InternalError(message);
}

absl::StatusOr<std::unique_ptr<File>> File::open(const std::filesystem::path& path, bool create) {
  int flags = O_RDWR | O_CLOEXEC | (create ? O_CREAT : 0);
  int fd = ::open(path.c_str(), flags, 0644);
  if (fd < 0) return io_error("cannot open", path, errno);
  return std::unique_ptr<File>(new File(path, fd));
}

File::~File() {
  if (fd_ >= 0) ::close(fd_);
}

absl::StatusOr<uint64_t> File::size() const {
  struct stat info {};
  if (::fstat(fd_, &info) != 0) return io_error("cannot stat", path_, errno);
  return static_cast<uint64_t>(info.st_size);
}

absl::Status File::write_at(uint64_t position, std::string_view bytes) {
  while (!bytes.empty()) {
    ssize_t written = ::pwrite(fd_, bytes.data(), bytes.size(), static_cast<off_t>(position));
    if (written < 0) {
      if (errno == EINTR) continue;
      return io_error("cannot write", path_, errno);
    }
    if (written == 0) return io_error("cannot write", path_, ENOSPC);
    bytes.remove_prefix(static_cast<size_t>(written));
    position += static_cast<uint64_t>(written);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> File::read_at(uint64_t position, size_t size) const {
  if (size > kSizeCheckThreshold) {
    auto file_size = this->size();
    if (!file_size.ok()) return file_size.status();
    size = *file_size <= position ? 0 : std::min<uint64_t>(size, *file_size - position);
  }
  std::string out(size, '\0');
  size_t done = 0;
  while (done < size) {
    ssize_t got = ::pread(fd_, out.data() + done, size - done, static_cast<off_t>(position + done));
    if (got < 0) {
      if (errno == EINTR) continue;
      return io_error("cannot read", path_, errno);
    }
    if (got == 0) break;
    done += static_cast<size_t>(got);
  }
  out.resize(done);
  bytes_read.fetch_add(done, std::memory_order_relaxed);
  return out;
}

absl::Status File::truncate(uint64_t size) {
  if (::ftruncate(fd_, static_cast<off_t>(size)) != 0)
    return io_error("cannot truncate", path_, errno);
  return absl::OkStatus();
}

absl::Status File::sync() {
  if (::fdatasync(fd_) != 0) return io_error("cannot fsync", path_, errno);
  return absl::OkStatus();
}

absl::Status sync_directory(const std::filesystem::path& directory) {
  int fd = ::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return io_error("cannot open directory", directory, errno);
  int result = ::fsync(fd);
  int error_number = errno;
  ::close(fd);
  if (result != 0) return io_error("cannot fsync directory", directory, error_number);
  return absl::OkStatus();
}

absl::Status write_file_atomically(const std::filesystem::path& path, std::string_view contents) {
  auto temporary = path;
  temporary += ".tmp";
  {
    auto file = File::open(temporary, true);
    if (!file.ok()) return file.status();
    if (auto status = (*file)->truncate(0); !status.ok()) return status;
    if (auto status = (*file)->write_at(0, contents); !status.ok()) return status;
    if (auto status = (*file)->sync(); !status.ok()) return status;
  }
  if (::rename(temporary.c_str(), path.c_str()) != 0)
    return io_error("cannot rename", temporary, errno);
  return sync_directory(path.parent_path());
}

absl::StatusOr<std::string> read_small_file(const std::filesystem::path& path) {
  auto file = File::open(path, false);
  if (!file.ok()) return file.status();
  auto size = (*file)->size();
  if (!size.ok()) return size.status();
  return (*file)->read_at(0, *size);
}

}  // namespace telekern::broker
