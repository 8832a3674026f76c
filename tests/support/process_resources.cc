#include "tests/support/process_resources.h"

#include <filesystem>
#include <fstream>
#include <string>

namespace telekern::testing {
namespace {

double status_field(pid_t pid, const std::string& field) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind(field + ":", 0) == 0) return std::stod(line.substr(field.size() + 1));
  }
  return 0;
}

}  // namespace

ProcessResources process_resources(pid_t pid) {
  ProcessResources out;
  out.rss_mib = status_field(pid, "VmRSS") / 1024.0;
  out.threads = status_field(pid, "Threads");
  std::error_code error;
  for (auto it = std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd", error);
       !error && it != std::filesystem::directory_iterator(); ++it)
    out.open_files += 1;
  std::ifstream maps("/proc/" + std::to_string(pid) + "/maps");
  std::string line;
  while (std::getline(maps, line)) out.mappings += 1;
  return out;
}

}  // namespace telekern::testing
