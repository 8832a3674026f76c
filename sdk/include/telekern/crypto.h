// The few crypto primitives the kernel's auth and modules with their own
// users need, over OpenSSL: base64url, SHA-256, HMAC, PBKDF2 password hashes
// (the format `telekernd --hash-password` prints and Login verifies) and
// constant-time comparison.
#pragma once

#include <absl/status/statusor.h>

#include <string>
#include <string_view>

namespace telekern {

std::string base64url_encode(std::string_view data);
absl::StatusOr<std::string> base64url_decode(std::string_view text);

std::string sha256_hex(std::string_view data);
std::string hmac_sha256(std::string_view key, std::string_view data);
bool constant_time_equal(std::string_view a, std::string_view b);
std::string random_bytes(size_t count);

// Iterations of a new password hash (OWASP 2023 for PBKDF2-HMAC-SHA256).
inline constexpr int kPasswordIterations = 210'000;

// "pbkdf2-sha256$<iterations>$<salt base64url>$<hash base64url>"
std::string hash_password(std::string_view password, int iterations = kPasswordIterations);
// Whether `password` matches `encoded`; a malformed hash is an error naming the format.
absl::StatusOr<bool> verify_password(std::string_view password, std::string_view encoded);

}  // namespace telekern
