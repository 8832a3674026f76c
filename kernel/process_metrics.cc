#include "kernel/process_metrics.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace telekern::kernel {
namespace {

struct ProcessStat {
  double cpu_seconds = 0;
  double threads = 0;
  double virtual_bytes = 0;
  double resident_bytes = 0;
  double start_time_seconds = 0;
};

double boot_time_seconds() {
  std::ifstream in("/proc/stat");
  std::string key;
  double value = 0;
  while (in >> key) {
    if (key == "btime") {
      in >> value;
      return value;
    }
  }
  return 0;
}

ProcessStat read_stat() {
  ProcessStat stat;
  std::ifstream in("/proc/self/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // Fields after the command name, which is in parentheses and may contain spaces.
  auto close = text.rfind(')');
  if (close == std::string::npos) return stat;
  std::istringstream fields(text.substr(close + 2));
  std::vector<std::string> values;
  std::string field;
  while (fields >> field) values.push_back(field);
  // values[0] is field 3 (state); utime=14, stime=15, num_threads=20, starttime=22, vsize=23,
  // rss=24.
  auto at = [&](size_t field_number) {
    size_t index = field_number - 3;
    return index < values.size() ? std::stod(values[index]) : 0.0;
  };
  double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  stat.cpu_seconds = (at(14) + at(15)) / ticks;
  stat.threads = at(20);
  stat.start_time_seconds = boot_time_seconds() + at(22) / ticks;
  stat.virtual_bytes = at(23);
  stat.resident_bytes = at(24) * static_cast<double>(sysconf(_SC_PAGESIZE));
  return stat;
}

double open_fds() {
  std::error_code error;
  double count = 0;
  for (auto it = std::filesystem::directory_iterator("/proc/self/fd", error);
       !error && it != std::filesystem::directory_iterator(); it.increment(error)) {
    ++count;
  }
  return count;
}

double max_fds() {
  std::ifstream in("/proc/self/limits");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("Max open files", 0) == 0) {
      std::istringstream fields(line.substr(14));
      double soft = 0;
      fields >> soft;
      return soft;
    }
  }
  return 0;
}

}  // namespace

std::unique_ptr<CollectorHandle> register_process_metrics(MetricsRegistry& registry) {
  return registry.add_collector([] {
    ProcessStat stat = read_stat();
    auto single = [](const char* name, const char* help, const char* type, double value) {
      return CollectedFamily{name, help, type, {Sample{"", {}, value}}};
    };
    return std::vector<CollectedFamily>{
        single("process_cpu_seconds_total", "User and system CPU time spent in seconds.", "counter",
               stat.cpu_seconds),
        single("process_resident_memory_bytes", "Resident memory size in bytes.", "gauge",
               stat.resident_bytes),
        single("process_virtual_memory_bytes", "Virtual memory size in bytes.", "gauge",
               stat.virtual_bytes),
        single("process_open_fds", "Number of open file descriptors.", "gauge", open_fds()),
        single("process_max_fds", "Maximum number of open file descriptors.", "gauge", max_fds()),
        single("process_threads", "Number of OS threads in the process.", "gauge", stat.threads),
        single("process_start_time_seconds",
               "Start time of the process since unix epoch in seconds.", "gauge",
               stat.start_time_seconds),
    };
  });
}

}  // namespace telekern::kernel
