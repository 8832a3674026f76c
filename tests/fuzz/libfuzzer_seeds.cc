// Under libFuzzer (`make fuzz`): an empty corpus directory named on the
// command line starts with the target's seeds, so fuzzing begins from valid
// inputs instead of nothing.
#include <filesystem>
#include <fstream>
#include <string>

#include "tests/fuzz/fuzz_target.h"

extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) {
  for (int i = 1; i < *argc; ++i) {
    std::filesystem::path dir((*argv)[i]);
    std::error_code error;
    if ((*argv)[i][0] == '-' || !std::filesystem::is_directory(dir, error) ||
        !std::filesystem::is_empty(dir, error)) {
      continue;
    }
    int n = 0;
    for (const auto& seed : telekern_fuzz_seeds()) {
      std::ofstream(dir / ("seed-" + std::to_string(n++)), std::ios::binary) << seed;
    }
  }
  return 0;
}
