// Cold start of `telesh -c info` (process start, connect, reflection of every
// service, one call, exit) against a real telekernd, side by side with a peer
// that skips reflection: the SDK example doing GetInfo with compiled stubs.
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "tests/support/telekernd.h"

extern char** environ;

namespace {

constexpr int kRuns = 30;
constexpr double kTargetMs = 50.0;

// Wall time of one run in ms, or a negative value when it failed.
double time_run(const std::vector<std::string>& argv) {
  std::vector<char*> args;
  for (const auto& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
  args.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  auto start = std::chrono::steady_clock::now();
  pid_t pid;
  int spawned = posix_spawn(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (spawned != 0) return -1;
  int status = 0;
  waitpid(pid, &status, 0);
  auto elapsed =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? elapsed : -1;
}

struct Summary {
  double median = 0;
  double p90 = 0;
  double min = 0;
  int failures = 0;
};

Summary measure(const std::vector<std::string>& argv) {
  std::vector<double> times;
  Summary summary;
  time_run(argv);  // warm the page cache once
  for (int i = 0; i < kRuns; ++i) {
    double ms = time_run(argv);
    if (ms < 0) {
      ++summary.failures;
    } else {
      times.push_back(ms);
    }
  }
  if (times.empty()) return summary;
  std::sort(times.begin(), times.end());
  summary.min = times.front();
  summary.median = times[times.size() / 2];
  summary.p90 = times[std::min(times.size() - 1, times.size() * 9 / 10)];
  return summary;
}

}  // namespace

int main() {
  using namespace telekern::testing;
  TelekerndOptions options;
  options.load = {"echo", "ping"};
  Telekernd daemon(options);
  if (!daemon.ready()) {
    std::fprintf(stderr, "telekernd did not start:\n%s\n", daemon.log().c_str());
    return 1;
  }
  setenv("TELEKERN_ADDR", daemon.grpc_address().c_str(), 1);
  std::string build = TELEKERN_BUILD_DIR;
  auto telesh = measure({build + "/bin/telesh", "-c", "info"});
  auto peer = measure({build + "/examples/telekern_example_info"});
  std::printf("cold start, %d runs each, against telekernd with echo + ping\n", kRuns);
  std::printf("%-34s %9s %9s %9s %9s\n", "program", "min ms", "median", "p90", "failures");
  std::printf("%-34s %9.1f %9.1f %9.1f %9d\n", "telesh -c info (reflection)", telesh.min,
              telesh.median, telesh.p90, telesh.failures);
  std::printf("%-34s %9.1f %9.1f %9.1f %9d\n", "telekern_example_info (stubs)", peer.min,
              peer.median, peer.p90, peer.failures);
  if (peer.median > 0)
    std::printf("ratio telesh/peer (median): %.2f\n", telesh.median / peer.median);
  std::printf("target: telesh median < %.0f ms: %s\n", kTargetMs,
              telesh.median < kTargetMs ? "met" : "MISSED");
  return telesh.failures == 0 && peer.failures == 0 ? 0 : 1;
}
