// The exec source's runner: `/bin/sh -c COMMAND` as a child in its own
// process group (ended as a group), stdout read line by line with poll().
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>

#include "command_source.h"
#include "telekern/strings.h"

namespace telekern::tracer {
namespace {

using Clock = std::chrono::steady_clock;

class Child {
 public:
  absl::Status start(const std::string& command) {
    int out[2], err[2];
    if (pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0)
      return absl::InternalError("pipe failed");
    pid_ = fork();
    if (pid_ < 0) return absl::InternalError("fork failed");
    if (pid_ == 0) {
      setpgid(0, 0);
      dup2(out[1], 1);
      dup2(err[1], 2);
      int null = open("/dev/null", O_RDONLY);
      dup2(null, 0);
      execl("/bin/sh", "sh", "-c", command.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    setpgid(pid_, pid_);
    close(out[1]);
    close(err[1]);
    out_ = out[0];
    err_ = err[0];
    return absl::OkStatus();
  }
  ~Child() {
    end();
    if (out_ >= 0) close(out_);
    if (err_ >= 0) close(err_);
  }
  // Ends the whole process group and reaps the child; its exit code (-1 = signalled).
  int end() {
    if (pid_ <= 0) return exit_code_;
    kill(-pid_, SIGTERM);
    return wait();
  }
  int wait() {
    if (pid_ <= 0) return exit_code_;
    int status = 0;
    waitpid(pid_, &status, 0);
    kill(-pid_, SIGKILL);  // stragglers of the group
    pid_ = -1;
    exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return exit_code_;
  }

  // Reads what is available; false once both pipes are closed.
  // `timeout_ms` bounds the wait for output.
  bool read(std::string& out, int timeout_ms, bool& got_output) {
    got_output = false;
    std::array<pollfd, 2> fds{{{out_, POLLIN, 0}, {err_, POLLIN, 0}}};
    int ready = poll(fds.data(), fds.size(), timeout_ms);
    if (ready <= 0) return out_ >= 0 || err_ >= 0;
    char buffer[65536];
    if (out_ >= 0 && (fds[0].revents & (POLLIN | POLLHUP))) {
      ssize_t n = ::read(out_, buffer, sizeof(buffer));
      if (n > 0) {
        out.append(buffer, static_cast<size_t>(n));
        got_output = true;
      } else {
        close(out_);
        out_ = -1;
      }
    }
    if (err_ >= 0 && (fds[1].revents & (POLLIN | POLLHUP))) {
      ssize_t n = ::read(err_, buffer, sizeof(buffer));
      if (n > 0) {
        stderr_.append(buffer, static_cast<size_t>(n));
        if (stderr_.size() > 4096) stderr_.erase(0, stderr_.size() - 4096);
      } else {
        close(err_);
        err_ = -1;
      }
    }
    return out_ >= 0;
  }
  const std::string& stderr_text() const { return stderr_; }

 private:
  pid_t pid_ = -1;
  int out_ = -1;
  int err_ = -1;
  int exit_code_ = -1;
  std::string stderr_;
};

class LocalRunner final : public CommandRunner {
 public:
  std::string where() const override { return "this host"; }

  absl::StatusOr<std::string> run(const std::string& command) override {
    Child child;
    if (auto status = child.start(command); !status.ok()) return status;
    std::string out;
    bool got = false;
    while (child.read(out, 1000, got)) {
    }
    int code = child.wait();
    if (code != 0)
      return absl::UnavailableError(
          str_cat("'", command, "' exited with ", code, ": ", child.stderr_text()));
    return out;
  }

  absl::Status stream(const std::string& command, const std::function<bool(std::string_view)>& line,
                      std::chrono::milliseconds inactivity, std::stop_token stop) override {
    Child child;
    if (auto status = child.start(command); !status.ok()) return status;
    std::string buffer;
    auto last_output = Clock::now();
    bool open = true;
    while (open) {
      if (stop.stop_requested()) {
        child.end();
        return absl::CancelledError("stopped");
      }
      bool got = false;
      open = child.read(buffer, 100, got);
      if (got) last_output = Clock::now();
      size_t start = 0;
      for (size_t newline; (newline = buffer.find('\n', start)) != std::string::npos;
           start = newline + 1) {
        if (!line(std::string_view(buffer).substr(start, newline - start))) {
          child.end();
          return absl::OkStatus();
        }
      }
      buffer.erase(0, start);
      if (open && Clock::now() - last_output >= inactivity) {
        child.end();
        return absl::DeadlineExceededError(
            str_cat("no output for ", inactivity.count(), " ms (inactivity timeout)"));
      }
    }
    if (!buffer.empty()) line(buffer);
    int code = child.wait();
    if (code != 0)
      return absl::UnavailableError(
          str_cat("consume command exited with ", code, ": ", child.stderr_text()));
    return absl::OkStatus();
  }
};

}  // namespace

std::unique_ptr<CommandRunner> make_local_runner() { return std::make_unique<LocalRunner>(); }

}  // namespace telekern::tracer
