#include "kernel/lifecycle/stack_census.h"

#include <dirent.h>
#include <link.h>
#include <sched.h>
#include <signal.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <optional>
#include <sstream>

namespace telekern::kernel {
namespace {

// The census signal: a real-time signal glibc and gRPC leave alone.
int census_signal() { return SIGRTMIN + 6; }

// Handshake with the one thread being looked at (one census at a time).
std::atomic<pid_t> target_thread{0};
std::atomic<int> phase{0};  // 0 asked, 1 parked (sp/pc recorded), 2 released, 3 left
std::atomic<uintptr_t> stack_pointer{0};
std::atomic<uintptr_t> program_counter{0};

pid_t current_thread() { return static_cast<pid_t>(::syscall(SYS_gettid)); }

void on_census_signal(int, siginfo_t*, void* context) {
  if (current_thread() != target_thread.load()) return;  // a late signal for an earlier census
  auto* registers = static_cast<ucontext_t*>(context);
#if defined(__x86_64__)
  stack_pointer = static_cast<uintptr_t>(registers->uc_mcontext.gregs[REG_RSP]);
  program_counter = static_cast<uintptr_t>(registers->uc_mcontext.gregs[REG_RIP]);
#elif defined(__aarch64__)
  stack_pointer = static_cast<uintptr_t>(registers->uc_mcontext.sp);
  program_counter = static_cast<uintptr_t>(registers->uc_mcontext.pc);
#endif
  phase = 1;
  // Stay parked while the stack is scanned, so it does not change under the scan.
  while (phase.load() == 1) sched_yield();
  phase = 3;
}

struct Mapping {
  uintptr_t begin = 0;
  uintptr_t end = 0;
  bool readable = false;
};

std::vector<Mapping> read_mappings() {
  std::vector<Mapping> mappings;
  std::ifstream maps("/proc/self/maps");
  std::string line;
  while (std::getline(maps, line)) {
    Mapping mapping;
    char permissions[5] = {};
    if (std::sscanf(line.c_str(), "%lx-%lx %4s", &mapping.begin, &mapping.end, permissions) != 3)
      continue;
    mapping.readable = permissions[0] == 'r';
    mappings.push_back(mapping);
  }
  return mappings;
}

std::vector<pid_t> other_threads() {
  std::vector<pid_t> threads;
  pid_t self = current_thread();
  if (DIR* tasks = ::opendir("/proc/self/task")) {
    while (dirent* entry = ::readdir(tasks)) {
      if (entry->d_name[0] == '.') continue;
      pid_t thread = static_cast<pid_t>(std::atoi(entry->d_name));
      if (thread != self) threads.push_back(thread);
    }
    ::closedir(tasks);
  }
  return threads;
}

std::string thread_name(pid_t thread) {
  std::ifstream in("/proc/self/task/" + std::to_string(thread) + "/comm");
  std::string name;
  std::getline(in, name);
  return name;
}

bool inside(const std::vector<AddressRange>& ranges, uintptr_t address) {
  for (const auto& range : ranges) {
    if (range.contains(address)) return true;
  }
  return false;
}

// Waits until phase reaches `wanted` or `deadline` passes.
bool wait_phase(int wanted, std::chrono::steady_clock::time_point deadline) {
  while (phase.load() != wanted) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    sched_yield();
  }
  return true;
}

}  // namespace

namespace {

std::vector<AddressRange> loaded_segments(const std::filesystem::path& path, bool code_only) {
  struct Search {
    std::string path;
    bool code_only;
    std::vector<AddressRange> ranges;
  } search{path.string(), code_only, {}};
  dl_iterate_phdr(
      [](dl_phdr_info* info, size_t, void* data) {
        auto* search = static_cast<Search*>(data);
        if (info->dlpi_name == nullptr || search->path != info->dlpi_name) return 0;
        for (int i = 0; i < info->dlpi_phnum; ++i) {
          const auto& header = info->dlpi_phdr[i];
          if (header.p_type != PT_LOAD) continue;
          if (search->code_only && (header.p_flags & PF_X) == 0) continue;
          uintptr_t begin = info->dlpi_addr + header.p_vaddr;
          search->ranges.push_back({begin, begin + header.p_memsz});
        }
        return 1;
      },
      &search);
  return search.ranges;
}

}  // namespace

std::vector<AddressRange> library_ranges(const std::filesystem::path& path) {
  return loaded_segments(path, /*code_only=*/false);
}

std::vector<AddressRange> code_ranges(const std::filesystem::path& path) {
  return loaded_segments(path, /*code_only=*/true);
}

std::vector<CodeReference> find_code_references(const std::vector<AddressRange>& ranges,
                                                std::chrono::milliseconds timeout) {
  static std::mutex one_census;
  std::lock_guard lock(one_census);
  std::vector<CodeReference> found;
  if (ranges.empty()) return found;

  // Installed once and kept: a late signal for a thread that did not answer
  // in time must never meet the default action (which ends the process).
  static std::once_flag installed;
  std::call_once(installed, [] {
    struct sigaction action {};
    action.sa_sigaction = on_census_signal;
    action.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&action.sa_mask);
    ::sigaction(census_signal(), &action, nullptr);
  });

  auto mappings = read_mappings();
  pid_t process = ::getpid();
  for (pid_t thread : other_threads()) {
    phase = 0;
    target_thread = thread;
    if (::syscall(SYS_tgkill, process, thread, census_signal()) != 0) continue;  // gone
    auto deadline = std::chrono::steady_clock::now() + timeout;
    if (!wait_phase(1, deadline)) {
      // Blocked the signal, or is stuck: counted, conservatively. The handler
      // ignores the signal should it still arrive for this thread later.
      target_thread = 0;
      if (phase.load() == 1) {
        phase = 2;
        wait_phase(3, std::chrono::steady_clock::now() + timeout);
      }
      found.push_back({thread, thread_name(thread), 0, true});
      continue;
    }
    uintptr_t pc = program_counter.load();
    uintptr_t sp = stack_pointer.load();
    std::optional<CodeReference> reference;
    if (inside(ranges, pc)) reference = CodeReference{thread, "", pc, false};
    for (const auto& mapping : mappings) {
      if (reference || !mapping.readable || sp < mapping.begin || sp >= mapping.end) continue;
      for (uintptr_t word = sp & ~uintptr_t{7}; word + sizeof(uintptr_t) <= mapping.end;
           word += sizeof(uintptr_t)) {
        uintptr_t value = *reinterpret_cast<const uintptr_t*>(word);
        if (inside(ranges, value)) {
          reference = CodeReference{thread, "", value, false};
          break;
        }
      }
    }
    phase = 2;
    wait_phase(3, std::chrono::steady_clock::now() + timeout);
    target_thread = 0;
    if (reference) {
      reference->thread_name = thread_name(thread);
      found.push_back(*reference);
    }
  }
  return found;
}

}  // namespace telekern::kernel
