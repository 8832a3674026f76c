// The auth section the tests run telekernd with: API keys `viewer-secret`
// (viewer) and `operator-secret` (operator), and user alice with password
// `wonderland` (admin), under a test JWT secret.
#pragma once

#include <string>

namespace telekern::testing {

inline constexpr const char* kViewerKey = "viewer-secret";
inline constexpr const char* kOperatorKey = "operator-secret";
inline constexpr const char* kAdminUser = "alice";
inline constexpr const char* kAdminPassword = "wonderland";

// "auth:\n  jwt_secret: ...\n  api_keys: ...\n  users: ...\n", ready to put in a config file.
std::string auth_config_yaml();

// Hex SHA-256 of `text`, as api_keys[].sha256 holds it.
std::string sha256_hex(const std::string& text);
// A password hash from `telekernd --hash-password`.
std::string password_hash(const std::string& password);

}  // namespace telekern::testing
