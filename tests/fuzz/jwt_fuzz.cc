// Bearer tokens and base64url straight from the network: verify_jwt never
// crashes, accepts nothing a different secret signed, and base64url accepts
// only canonical spellings (decode then encode gives the input back).
#include <chrono>

#include "kernel/auth/crypto.h"
#include "kernel/auth/jwt.h"
#include "tests/fuzz/fuzz_target.h"

namespace {
using namespace telekern::kernel::auth;
const std::string kSecret = "fuzzing-secret-fuzzing-secret-0123";
const auto kNow = std::chrono::system_clock::time_point(std::chrono::seconds(1'800'000'000));
}  // namespace

std::vector<std::string> telekern_fuzz_seeds() {
  return {sign_jwt({"alice", "admin", kNow - std::chrono::minutes(1), kNow + std::chrono::hours(1)},
                   kSecret),
          sign_jwt({"bob", "viewer", kNow - std::chrono::hours(2), kNow - std::chrono::hours(1)},
                   kSecret),
          "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.", "a.b.c", base64url_encode("\xff\x00\x10")};
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  auto claims = verify_jwt(input, kSecret, kNow);
  if (claims.ok()) {
    FUZZ_CHECK(claims->expires_at > kNow);
    FUZZ_CHECK(!verify_jwt(input, kSecret + "x", kNow).ok());
  }
  auto decoded = base64url_decode(input);
  if (decoded.ok()) FUZZ_CHECK(base64url_encode(*decoded) == input);
  return 0;
}
