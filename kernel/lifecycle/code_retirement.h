// Module copies whose instance is gone, waiting to be unmapped. A copy is
// closed (dlclose, file removed) once a grace period has passed and no thread
// can still run its code (stack_census.h); a copy that cannot go is kept and
// reported with the reason, never silently.
#pragma once

#include <boost/dll/shared_library.hpp>
#include <chrono>
#include <deque>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "telekern/log.h"
#include "telekern/metrics.h"

namespace telekern::kernel {

using LibraryHandle = std::shared_ptr<boost::dll::shared_library>;

struct RetainedCode {
  std::string module;
  std::filesystem::path copy;
  std::chrono::system_clock::time_point since;  // when its instance went
  std::string reason;                           // why it is still mapped
};

class CodeRetirement {
 public:
  // `grace`: how long after its instance went a copy waits before the census.
  CodeRetirement(std::chrono::milliseconds grace, MetricsRegistry& metrics);
  ~CodeRetirement();

  // Takes the library of a destroyed module object (nothing of the module
  // runs on the caller's behalf any more).
  void retire(std::string module, LibraryHandle library, std::filesystem::path copy);
  // Closes the copies whose time has come and that no thread refers to.
  // Call from a thread that never runs module code (the manager's).
  void collect(std::chrono::steady_clock::time_point now);
  // Copies kept past their grace period, with the reason.
  std::vector<RetainedCode> retained() const;
  // Copies still mapped (waiting or retained).
  size_t mapped() const;

 private:
  struct Entry {
    RetainedCode info;
    LibraryHandle library;  // empty once closed but still mapped
    std::chrono::steady_clock::time_point next_check;
    int attempts = 0;  // censuses that found a reference
    bool reported = false;
  };

  std::chrono::milliseconds grace_;
  std::shared_ptr<spdlog::logger> log_;
  CounterFamily& released_;
  mutable std::mutex mutex_;
  std::deque<Entry> entries_;
};

}  // namespace telekern::kernel
