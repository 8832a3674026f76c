// What a running process holds, read from /proc: resident memory, open files,
// threads and mappings. The soak and the reload-cost test sample a daemon
// with it.
#pragma once

#include <sys/types.h>

namespace telekern::testing {

struct ProcessResources {
  double rss_mib = 0;
  double open_files = 0;
  double threads = 0;
  double mappings = 0;
};

// Zeroes when the process is gone.
ProcessResources process_resources(pid_t pid);

}  // namespace telekern::testing
