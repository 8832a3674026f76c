// Runs a libFuzzer target without libFuzzer, so every fuzz target is also a
// quick, deterministic ctest: first each file named on the command line, then
// the target's seeds, then `--runs N` inputs mutated from them by a fixed-seed
// generator (bit flips, byte changes, cuts, inserts, splices). A property a
// target checks aborts the process, which fails the test. `make fuzz` builds
// the same targets with clang's libFuzzer for coverage-guided runs.
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "tests/fuzz/fuzz_target.h"

namespace {

std::string mutate(std::string input, const std::vector<std::string>& seeds, std::mt19937_64& rng) {
  auto pick = [&](size_t bound) { return bound == 0 ? 0 : static_cast<size_t>(rng() % bound); };
  int edits = 1 + static_cast<int>(pick(4));
  for (int e = 0; e < edits; ++e) {
    switch (pick(6)) {
      case 0:  // flip a bit
        if (!input.empty()) input[pick(input.size())] ^= static_cast<char>(1u << pick(8));
        break;
      case 1:  // set a byte to an interesting value
        if (!input.empty()) {
          static const char kValues[] = {
              0, 1, 0x7f, static_cast<char>(0x80), static_cast<char>(0xff), '.', '"', ':'};
          input[pick(input.size())] = kValues[pick(sizeof(kValues))];
        }
        break;
      case 2:  // cut
        if (!input.empty()) input.erase(pick(input.size()), 1 + pick(8));
        break;
      case 3:  // insert random bytes
        for (size_t n = 1 + pick(8), at = pick(input.size() + 1); n > 0; --n) {
          input.insert(input.begin() + static_cast<long>(at), static_cast<char>(rng()));
        }
        break;
      case 4:  // truncate
        input.resize(pick(input.size() + 1));
        break;
      default:  // splice with another seed
        if (!seeds.empty()) {
          const std::string& other = seeds[pick(seeds.size())];
          input = input.substr(0, pick(input.size() + 1)) + other.substr(pick(other.size() + 1));
        }
        break;
    }
  }
  return input;
}

const std::string* current = nullptr;  // the input being run, for the crash report

// On abort (a failed property, an uncaught exception): print the input.
void report(int) {
  if (current != nullptr) {
    std::fprintf(stderr, "input (%zu bytes):", current->size());
    for (unsigned char c : *current) std::fprintf(stderr, " %02x", c);
    std::fprintf(stderr, "\n");
  }
  std::signal(SIGABRT, SIG_DFL);
  std::abort();
}

void run(const std::string& input) {
  current = &input;
  LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(input.data()), input.size());
  current = nullptr;
}

}  // namespace

int main(int argc, char** argv) {
  long runs = 20000;
  std::vector<std::string> corpus;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--runs") == 0 && i + 1 < argc) {
      runs = std::atol(argv[++i]);
      continue;
    }
    std::ifstream in(argv[i], std::ios::binary);
    std::stringstream bytes;
    bytes << in.rdbuf();
    corpus.push_back(bytes.str());
  }
  std::signal(SIGABRT, report);
  std::vector<std::string> seeds = telekern_fuzz_seeds();
  seeds.insert(seeds.end(), corpus.begin(), corpus.end());
  seeds.push_back("");
  for (const auto& seed : seeds) run(seed);
  std::mt19937_64 rng(20261201);
  for (long i = 0; i < runs; ++i) run(mutate(seeds[rng() % seeds.size()], seeds, rng));
  std::printf("%zu seeds and %ld mutated inputs ran without a failure\n", seeds.size(), runs);
  return 0;
}
