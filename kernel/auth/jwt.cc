#include "kernel/auth/jwt.h"

#include <absl/status/status.h>

#include <nlohmann/json.hpp>
#include <vector>

#include "kernel/auth/crypto.h"
#include "telekern/strings.h"

namespace telekern::kernel::auth {
namespace {
int64_t to_seconds(std::chrono::system_clock::time_point time) {
  return std::chrono::duration_cast<std::chrono::seconds>(time.time_since_epoch()).count();
}
std::chrono::system_clock::time_point from_seconds(int64_t seconds) {
  return std::chrono::system_clock::time_point(std::chrono::seconds(seconds));
}
}  // namespace

std::string sign_jwt(const JwtClaims& claims, std::string_view secret) {
  nlohmann::json header = {{"alg", "HS256"}, {"typ", "JWT"}};
  nlohmann::json payload = {{"iss", "telekernd"},
                            {"sub", claims.subject},
                            {"role", claims.role},
                            {"iat", to_seconds(claims.issued_at)},
                            {"exp", to_seconds(claims.expires_at)}};
  std::string signing_input =
      str_cat(base64url_encode(header.dump()), ".", base64url_encode(payload.dump()));
  return str_cat(signing_input, ".", base64url_encode(hmac_sha256(secret, signing_input)));
}

absl::StatusOr<JwtClaims> verify_jwt(std::string_view token, std::string_view secret,
                                     std::chrono::system_clock::time_point now) {
  std::vector<std::string> parts = split(token, '.', false);
  if (parts.size() != 3) {
    return absl::UnauthenticatedError(
        "bearer token is not a JWT (expected header.payload.signature)");
  }
  auto header_text = base64url_decode(parts[0]);
  auto payload_text = base64url_decode(parts[1]);
  auto signature = base64url_decode(parts[2]);
  if (!header_text.ok() || !payload_text.ok() || !signature.ok()) {
    return absl::UnauthenticatedError("bearer token has invalid base64url encoding");
  }
  auto header = nlohmann::json::parse(*header_text, nullptr, false);
  auto payload = nlohmann::json::parse(*payload_text, nullptr, false);
  if (header.is_discarded() || payload.is_discarded() || !header.is_object() ||
      !payload.is_object()) {
    return absl::UnauthenticatedError("bearer token header or payload is not JSON");
  }
  if (header.value("alg", "") != "HS256") {
    return absl::UnauthenticatedError(str_cat(
        "bearer token uses algorithm '", header.value("alg", ""), "'; only HS256 is accepted"));
  }
  std::string signing_input = str_cat(parts[0], ".", parts[1]);
  if (!constant_time_equal(hmac_sha256(secret, signing_input), *signature)) {
    return absl::UnauthenticatedError(
        "bearer token signature is invalid (forged or signed with another key)");
  }
  if (!payload.contains("exp") || !payload["exp"].is_number_integer() || !payload.contains("sub") ||
      !payload["sub"].is_string() || !payload.contains("role") || !payload["role"].is_string()) {
    return absl::UnauthenticatedError("bearer token lacks sub, role or exp claims");
  }
  JwtClaims claims;
  claims.subject = payload["sub"].get<std::string>();
  claims.role = payload["role"].get<std::string>();
  claims.expires_at = from_seconds(payload["exp"].get<int64_t>());
  claims.issued_at = from_seconds(payload.value("iat", int64_t{0}));
  if (claims.expires_at <= now) {
    return absl::UnauthenticatedError(str_cat("bearer token expired ",
                                              to_seconds(now) - to_seconds(claims.expires_at),
                                              "s ago; log in again"));
  }
  return claims;
}

}  // namespace telekern::kernel::auth
