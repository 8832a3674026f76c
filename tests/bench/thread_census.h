// What a benchmark's threads did between two points: context switches
// (voluntary and not) and CPU time per thread, from /proc/<pid>/task (this
// process by default, or a daemon the benchmark started), grouped by thread
// name. Divided by the calls made meanwhile it shows which threads
// a request crosses and how often each of them sleeps and wakes.
#pragma once

#include <dirent.h>

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>
#include <string>

namespace telekern::bench {

struct ThreadCounts {
  std::string name;
  uint64_t switches = 0;  // voluntary + involuntary
  uint64_t voluntary = 0;
  uint64_t cpu_ns = 0;
};

class ThreadCensus {
 public:
  // Per thread id of process `pid` ("self": this one), now.
  static std::map<int, ThreadCounts> take(const std::string& pid = "self") {
    std::map<int, ThreadCounts> threads;
    std::string dir = "/proc/" + pid + "/task";
    DIR* tasks = opendir(dir.c_str());
    if (tasks == nullptr) return threads;
    while (dirent* entry = readdir(tasks)) {
      if (entry->d_name[0] == '.') continue;
      int tid = std::atoi(entry->d_name);
      std::string base = dir + "/" + entry->d_name;
      ThreadCounts counts;
      std::ifstream(base + "/comm") >> counts.name;
      std::ifstream status(base + "/status");
      std::string line;
      while (std::getline(status, line)) {
        uint64_t value = 0;
        if (std::sscanf(line.c_str(), "voluntary_ctxt_switches: %lu", &value) == 1) {
          counts.voluntary = value;
          counts.switches += value;
        } else if (std::sscanf(line.c_str(), "nonvoluntary_ctxt_switches: %lu", &value) == 1) {
          counts.switches += value;
        }
      }
      std::ifstream(base + "/schedstat") >> counts.cpu_ns;
      threads[tid] = counts;
    }
    closedir(tasks);
    return threads;
  }

  // Per thread name: what happened between `before` and `after` (threads
  // born meanwhile count from zero; threads that ended are lost).
  static std::map<std::string, ThreadCounts> delta(const std::map<int, ThreadCounts>& before,
                                                   const std::map<int, ThreadCounts>& after) {
    std::map<std::string, ThreadCounts> by_name;
    for (const auto& [tid, now] : after) {
      ThreadCounts then;
      if (auto it = before.find(tid); it != before.end()) then = it->second;
      auto& group = by_name[now.name];
      group.name = now.name;
      group.switches += now.switches - then.switches;
      group.voluntary += now.voluntary - then.voluntary;
      group.cpu_ns += now.cpu_ns - then.cpu_ns;
    }
    return by_name;
  }

  // Adds `delta` (per thread name) into `sums`, e.g. over rounds.
  static void add(std::map<std::string, ThreadCounts>& sums,
                  const std::map<std::string, ThreadCounts>& delta) {
    for (const auto& [name, counts] : delta) {
      auto& sum = sums[name];
      sum.name = name;
      sum.switches += counts.switches;
      sum.voluntary += counts.voluntary;
      sum.cpu_ns += counts.cpu_ns;
    }
  }
};

}  // namespace telekern::bench
