// What every fuzz target defines: the libFuzzer entry point, and seeds the
// plain driver (fuzz_driver.cc) starts from and `make fuzz` writes as corpus.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);
std::vector<std::string> telekern_fuzz_seeds();

// A property of the code under test failed: say which, then abort (the fuzzer
// and the test both report a crash).
#define FUZZ_CHECK(condition)                                                                     \
  do {                                                                                            \
    if (!(condition)) {                                                                           \
      std::fprintf(stderr, "fuzz property failed: %s (%s:%d)\n", #condition, __FILE__, __LINE__); \
      std::abort();                                                                               \
    }                                                                                             \
  } while (false)
