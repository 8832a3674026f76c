#include "tests/support/process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <thread>

extern char** environ;

namespace telekern::testing {

TempDir::TempDir(const std::string& prefix) {
  std::string pattern = (std::filesystem::temp_directory_path() / (prefix + "-XXXXXX")).string();
  std::vector<char> buffer(pattern.begin(), pattern.end());
  buffer.push_back('\0');
  if (mkdtemp(buffer.data()) == nullptr) std::abort();
  path_ = buffer.data();
}

TempDir::~TempDir() {
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

Process::Process(const std::vector<std::string>& argv,
                 const std::map<std::string, std::string>& env,
                 const std::filesystem::path& log_file, std::optional<uint64_t> file_size_limit,
                 std::optional<std::pair<uint64_t, uint64_t>> open_files_limit) {
  std::vector<std::string> environment;
  for (char** entry = environ; entry && *entry; ++entry) {
    std::string text(*entry);
    if (env.count(text.substr(0, text.find('='))) == 0) environment.push_back(text);
  }
  for (const auto& [key, value] : env) environment.push_back(key + "=" + value);
  std::vector<char*> env_pointers;
  for (auto& item : environment) env_pointers.push_back(item.data());
  env_pointers.push_back(nullptr);
  std::vector<std::string> args = argv;
  std::vector<char*> arg_pointers;
  for (auto& item : args) arg_pointers.push_back(item.data());
  arg_pointers.push_back(nullptr);

  int log_fd = -1;
  if (!log_file.empty()) log_fd = ::open(log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  pid_t parent = getpid();
  pid_ = fork();
  if (pid_ == 0) {
    // The child dies with the test process, so a crashed or killed test never
    // leaves servers behind.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    if (log_fd >= 0) {
      dup2(log_fd, 1);
      dup2(log_fd, 2);
    }
    setpgid(0, 0);
    if (file_size_limit) {
      struct rlimit limit {};
      limit.rlim_cur = limit.rlim_max = *file_size_limit;
      if (setrlimit(RLIMIT_FSIZE, &limit) != 0) _exit(126);
    }
    if (open_files_limit) {
      struct rlimit limit {};
      limit.rlim_cur = open_files_limit->first;
      limit.rlim_max = open_files_limit->second;
      if (setrlimit(RLIMIT_NOFILE, &limit) != 0) _exit(126);
    }
    execvpe(arg_pointers[0], arg_pointers.data(), env_pointers.data());
    _exit(127);
  }
  if (log_fd >= 0) ::close(log_fd);
  if (pid_ < 0) status_ = 127;
}

Process::~Process() {
  if (running()) {
    ::kill(pid_, SIGKILL);
    wait(std::chrono::seconds(10));
  }
}

void Process::signal(int signal_number) const {
  if (pid_ > 0) ::kill(pid_, signal_number);
}

std::optional<int> Process::wait(std::chrono::milliseconds timeout) {
  if (status_) return status_;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    int raw = 0;
    pid_t done = waitpid(pid_, &raw, WNOHANG);
    if (done == pid_) {
      status_ = WIFEXITED(raw) ? WEXITSTATUS(raw) : 128 + WTERMSIG(raw);
      return status_;
    }
    if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

bool Process::running() { return pid_ > 0 && !wait(std::chrono::milliseconds(0)).has_value(); }

CommandResult run_command(const std::string& command, std::chrono::seconds timeout) {
  CommandResult result;
  std::string wrapped = "timeout " + std::to_string(timeout.count()) + " sh -c '" + [&] {
    std::string escaped;
    for (char c : command) {
      if (c == '\'') {
        escaped += "'\\''";
      } else {
        escaped += c;
      }
    }
    return escaped;
  }() + "' 2>&1";
  FILE* pipe = popen(wrapped.c_str(), "r");
  if (pipe == nullptr) return result;
  std::array<char, 4096> buffer;
  size_t count;
  while ((count = fread(buffer.data(), 1, buffer.size(), pipe)) > 0)
    result.output.append(buffer.data(), count);
  int raw = pclose(pipe);
  result.exit_code = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
  return result;
}

bool wait_for(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return condition();
}

std::string find_executable(const std::string& name, const std::vector<std::string>& extra) {
  for (const auto& place : extra) {
    if (access(place.c_str(), X_OK) == 0) return place;
  }
  const char* path = std::getenv("PATH");
  std::string directories = path ? path : "/usr/bin:/bin";
  directories += ":/usr/sbin:/sbin:/usr/local/bin";
  size_t start = 0;
  while (start <= directories.size()) {
    size_t end = directories.find(':', start);
    if (end == std::string::npos) end = directories.size();
    std::string candidate = directories.substr(start, end - start) + "/" + name;
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
    start = end + 1;
  }
  return "";
}

bool running_in_ci() {
  const char* ci = std::getenv("CI");
  return ci != nullptr && std::string(ci) == "true";
}

}  // namespace telekern::testing
