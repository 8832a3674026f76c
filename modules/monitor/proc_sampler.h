// Reads host metrics from /proc and /sys (roots configurable, so tests feed
// fixed files): CPU busy % per core and total from /proc/stat, memory % from
// /proc/meminfo, disk MB/s from /proc/diskstats (whole disks listed in
// /sys/block, partitions skipped), network Mbit/s per device from
// /proc/net/dev (loopback skipped), load averages from /proc/loadavg. Rates
// and CPU % are differences between two reads; the first read gives zeros.
#pragma once

#include <absl/status/statusor.h>

#include <chrono>
#include <map>
#include <string>
#include <vector>

#include "telekern/monitor/v1/monitor.pb.h"

namespace telekern::monitor {

class ProcSampler {
 public:
  ProcSampler(std::string proc_root, std::string sys_root)
      : proc_root_(std::move(proc_root)), sys_root_(std::move(sys_root)) {}

  // One sample at `now` (monotonic time for rates). node_id, node_name and
  // time are left to the caller.
  absl::StatusOr<v1::MetricSample> sample(std::chrono::steady_clock::time_point now);

 private:
  struct CpuTimes {
    uint64_t busy = 0;
    uint64_t total = 0;
  };
  struct Counters {
    uint64_t first = 0;
    uint64_t second = 0;
  };
  std::string proc_root_;
  std::string sys_root_;
  bool primed_ = false;
  std::chrono::steady_clock::time_point last_time_;
  std::map<std::string, CpuTimes> last_cpu_;        // "cpu", "cpu0", ...
  std::map<std::string, Counters> last_disks_;      // sectors read, written
  std::map<std::string, Counters> last_network_;    // bytes received, sent
};

// The host name (for node_id/node_name defaults).
std::string host_name();

}  // namespace telekern::monitor
