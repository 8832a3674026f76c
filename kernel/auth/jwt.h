// JSON Web Tokens signed with HS256, as issued by Login and checked on every call.
#pragma once

#include <absl/status/statusor.h>

#include <chrono>
#include <string>
#include <string_view>

namespace telekern::kernel::auth {

struct JwtClaims {
  std::string subject;
  std::string role;  // "viewer", "operator" or "admin"
  std::chrono::system_clock::time_point issued_at;
  std::chrono::system_clock::time_point expires_at;
};

std::string sign_jwt(const JwtClaims& claims, std::string_view secret);

// Checks structure, algorithm (HS256 only), signature and expiry; the error
// says which check failed.
absl::StatusOr<JwtClaims> verify_jwt(std::string_view token, std::string_view secret,
                                     std::chrono::system_clock::time_point now);

}  // namespace telekern::kernel::auth
