// Whether any thread of this process may still run a module's code: every
// other thread is briefly stopped by a signal, and its program counter and
// live stack (from its stack pointer up) are scanned for addresses inside the
// module's mapped image. Conservative, like a GC's stack scan: a return
// address or a stale pointer into the image both count, so a copy is only
// unmapped when no stack can lead back into it.
#pragma once

#include <absl/status/statusor.h>
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace telekern::kernel {

struct AddressRange {
  uintptr_t begin = 0;
  uintptr_t end = 0;  // one past the last byte
  bool contains(uintptr_t address) const { return address >= begin && address < end; }
};

struct CodeReference {
  pid_t thread = 0;
  std::string thread_name;
  uintptr_t address = 0;    // the value found (program counter or stack word)
  bool unanswered = false;  // the thread did not take the census signal in time
};

// The mapped segments of the loaded library at `path` (empty when it is not loaded).
std::vector<AddressRange> library_ranges(const std::filesystem::path& path);
// Only its executable segments: what a running thread's program counter or
// return addresses point into. A stale pointer to the library's data (a name
// string left in an idle kernel frame) does not mean its code can still run.
std::vector<AddressRange> code_ranges(const std::filesystem::path& path);

// The threads (other than the caller) whose program counter or live stack
// holds an address inside `ranges`. A thread that does not answer within
// `timeout` is listed with `unanswered` set. One census runs at a time.
std::vector<CodeReference> find_code_references(const std::vector<AddressRange>& ranges,
                                                std::chrono::milliseconds timeout);

}  // namespace telekern::kernel
