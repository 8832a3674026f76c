// Child processes for integration tests: spawn, wait with a bound, capture output.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace telekern::testing {

// A temporary directory removed with everything in it on destruction.
class TempDir {
 public:
  explicit TempDir(const std::string& prefix = "telekern-test");
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// A running child process; killed (SIGKILL) on destruction if still running.
class Process {
 public:
  // file_size_limit sets RLIMIT_FSIZE in the child (disk-full tests);
  // open_files_limit sets RLIMIT_NOFILE (soft, hard) in the child.
  Process(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env = {},
          const std::filesystem::path& log_file = {},
          std::optional<uint64_t> file_size_limit = std::nullopt,
          std::optional<std::pair<uint64_t, uint64_t>> open_files_limit = std::nullopt);
  ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  pid_t pid() const { return pid_; }
  void signal(int signal_number) const;
  // The exit status (or 128+signal), or nullopt if still running after `timeout`.
  std::optional<int> wait(std::chrono::milliseconds timeout);
  bool running();

 private:
  pid_t pid_ = -1;
  std::optional<int> status_;
};

struct CommandResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr together
};

// Runs a command to completion through /bin/sh, bounded by `timeout`.
CommandResult run_command(const std::string& command,
                          std::chrono::seconds timeout = std::chrono::seconds(60));

// Polls `condition` every 20 ms until it holds or `timeout` passes.
bool wait_for(const std::function<bool()>& condition, std::chrono::milliseconds timeout);

// Finds an executable on PATH or in the given places; "" when absent.
std::string find_executable(const std::string& name, const std::vector<std::string>& extra = {});

// In CI (CI=true) a missing server binary is a failure; elsewhere tests skip.
bool running_in_ci();

}  // namespace telekern::testing
