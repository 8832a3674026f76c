#include "file.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <mutex>

#include "telekern/strings.h"

namespace telekern::broker {
namespace {

std::atomic<uint64_t> bytes_read{0};

// Reads larger than this first ask the file its size, so a caller asking for
// "everything" (an index, say) allocates only what the file holds.
constexpr size_t kSizeCheckThreshold = 64 * 1024;

// The descriptors of every File: how many are open, and the idle ones in
// least-recently-used order (front = most recent).
struct OpenFilesState {
  std::mutex mutex;
  std::list<const File*> idle;
  uint64_t open = 0;
  uint64_t cap = 0;
  uint64_t reopens = 0;
  uint64_t idle_closes = 0;
};

OpenFilesState& open_files_state() {
  static OpenFilesState state;
  return state;
}

}  // namespace

// Pins a File's descriptor for one call.
class FileLease {
 public:
  explicit FileLease(const File* file) : file_(file) {}
  ~FileLease() { file_->release(); }
  FileLease(const FileLease&) = delete;
  FileLease& operator=(const FileLease&) = delete;

 private:
  const File* file_;
};

namespace {

// EMFILE or ENFILE: the process (or system) has no descriptor left. Names
// the limit, the broker's count and the key to change.
absl::Status descriptor_limit_error(std::string_view what, const std::filesystem::path& path,
                                    int error_number, uint64_t open, uint64_t cap) {
  uint64_t limit = OpenFiles::process_limit();
  std::string which =
      error_number == EMFILE
          ? str_cat("the process's open-file limit (RLIMIT_NOFILE=",
                    limit == 0 ? std::string("unlimited") : std::to_string(limit), ") is reached")
          : std::string("the system's open-file table (fs.file-max) is full");
  return absl::ResourceExhaustedError(
      str_cat(what, " ", path.string(), ": ", which, "; the broker holds ", open,
              " file(s) open under modules.broker.max_open_files=",
              cap == 0 ? std::string("unbounded") : std::to_string(cap),
              ": lower modules.broker.max_open_files (0 = half the process limit) or raise the "
              "limit (ulimit -n, systemd LimitNOFILE=)"));
}

absl::Status open_error(const std::filesystem::path& path, int error_number,
                        const OpenFilesState& state) {
  if (error_number == EMFILE || error_number == ENFILE)
    return descriptor_limit_error("cannot open", path, error_number, state.open, state.cap);
  return io_error("cannot open", path, error_number);
}

}  // namespace

void OpenFiles::close_idle_locked(uint64_t keep) {
  auto& state = open_files_state();
  while (state.open > keep && !state.idle.empty()) {
    const File* file = state.idle.back();
    state.idle.pop_back();
    file->idle_listed_ = false;
    ::close(file->fd_);
    file->fd_ = -1;
    --state.open;
    ++state.idle_closes;
  }
}

size_t OpenFiles::close_unused_for(std::chrono::steady_clock::duration age) {
  auto& state = open_files_state();
  std::lock_guard lock(state.mutex);
  auto before = std::chrono::steady_clock::now() - age;
  size_t closed = 0;
  // The idle list runs from the most to the least recently used.
  while (!state.idle.empty() && state.idle.back()->idle_since_ <= before) {
    const File* file = state.idle.back();
    state.idle.pop_back();
    file->idle_listed_ = false;
    ::close(file->fd_);
    file->fd_ = -1;
    --state.open;
    ++state.idle_closes;
    ++closed;
  }
  return closed;
}

void OpenFiles::make_room_locked() {
  auto& state = open_files_state();
  if (state.cap > 0 && state.open >= state.cap) close_idle_locked(state.cap - 1);
}

void OpenFiles::set_cap(uint64_t cap) {
  auto& state = open_files_state();
  std::lock_guard lock(state.mutex);
  state.cap = cap;
  if (cap > 0) close_idle_locked(cap);
}

OpenFiles::Usage OpenFiles::usage() {
  auto& state = open_files_state();
  std::lock_guard lock(state.mutex);
  return {state.open, state.cap, state.reopens, state.idle_closes};
}

uint64_t OpenFiles::process_limit() {
  struct rlimit limit {};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur == RLIM_INFINITY) return 0;
  return static_cast<uint64_t>(limit.rlim_cur);
}

uint64_t OpenFiles::default_cap() {
  uint64_t limit = process_limit();
  if (limit == 0) return 0;
  return std::max<uint64_t>(limit / 2, 16);
}

uint64_t File::total_bytes_read() { return bytes_read.load(std::memory_order_relaxed); }

absl::Status io_error(std::string_view what, const std::filesystem::path& path, int error_number) {
  std::string message = str_cat(what, " ", path.string(), ": ", std::strerror(error_number));
  if (error_number == ENOSPC || error_number == EDQUOT || error_number == EFBIG) {
    return absl::ResourceExhaustedError(str_cat("disk full: ", message));
  }
  if (error_number == ENOENT) return absl::NotFoundError(message);
  if (error_number == EMFILE || error_number == ENFILE) {
    auto usage = OpenFiles::usage();
    return descriptor_limit_error(what, path, error_number, usage.open, usage.cap);
  }
  return absl::InternalError(message);
}

absl::StatusOr<std::unique_ptr<File>> File::open(const std::filesystem::path& path, bool create) {
  std::unique_ptr<File> file(new File(path));
  auto& state = open_files_state();
  std::lock_guard lock(state.mutex);
  OpenFiles::make_room_locked();
  int flags = O_RDWR | O_CLOEXEC | (create ? O_CREAT : 0);
  int fd = ::open(path.c_str(), flags, 0644);
  if (fd < 0) return open_error(path, errno, state);
  file->fd_ = fd;
  ++state.open;
  state.idle.push_front(file.get());
  file->idle_position_ = state.idle.begin();
  file->idle_listed_ = true;
  return file;
}

File::~File() {
  auto& state = open_files_state();
  std::lock_guard lock(state.mutex);
  if (idle_listed_) state.idle.erase(idle_position_);
  if (fd_ >= 0) {
    ::close(fd_);
    --state.open;
  }
}

bool File::is_open() const {
  std::lock_guard lock(open_files_state().mutex);
  return fd_ >= 0;
}

absl::StatusOr<int> File::acquire() const {
  auto& state = open_files_state();
  std::lock_guard lock(state.mutex);
  if (fd_ < 0) {
    OpenFiles::make_room_locked();
    // Never O_CREAT: a file deleted meanwhile stays deleted (NOT_FOUND).
    int fd = ::open(path_.c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0) return open_error(path_, errno, state);
    fd_ = fd;
    ++state.open;
    ++state.reopens;
  } else if (idle_listed_) {
    state.idle.erase(idle_position_);
    idle_listed_ = false;
  }
  ++pins_;
  return fd_;
}

void File::release() const {
  auto& state = open_files_state();
  std::lock_guard lock(state.mutex);
  if (--pins_ > 0) return;
  state.idle.push_front(this);
  idle_position_ = state.idle.begin();
  idle_listed_ = true;
  idle_since_ = std::chrono::steady_clock::now();
  // Opened over the cap while every other descriptor was busy: give one back.
  if (state.cap > 0 && state.open > state.cap) OpenFiles::close_idle_locked(state.cap);
}

absl::StatusOr<uint64_t> File::size() const {
  auto fd = acquire();
  if (!fd.ok()) return fd.status();
  FileLease lease(this);
  struct stat info {};
  if (::fstat(*fd, &info) != 0) return io_error("cannot stat", path_, errno);
  return static_cast<uint64_t>(info.st_size);
}

absl::Status File::write_at(uint64_t position, std::string_view bytes) {
  auto fd = acquire();
  if (!fd.ok()) return fd.status();
  FileLease lease(this);
  while (!bytes.empty()) {
    ssize_t written = ::pwrite(*fd, bytes.data(), bytes.size(), static_cast<off_t>(position));
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
  auto fd = acquire();
  if (!fd.ok()) return fd.status();
  FileLease lease(this);
  std::string out(size, '\0');
  size_t done = 0;
  while (done < size) {
    ssize_t got = ::pread(*fd, out.data() + done, size - done, static_cast<off_t>(position + done));
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
  auto fd = acquire();
  if (!fd.ok()) return fd.status();
  FileLease lease(this);
  if (::ftruncate(*fd, static_cast<off_t>(size)) != 0)
    return io_error("cannot truncate", path_, errno);
  return absl::OkStatus();
}

absl::Status File::sync() {
  // A descriptor opened again flushes the same inode: fdatasync is per file.
  auto fd = acquire();
  if (!fd.ok()) return fd.status();
  FileLease lease(this);
  if (::fdatasync(*fd) != 0) return io_error("cannot fsync", path_, errno);
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
