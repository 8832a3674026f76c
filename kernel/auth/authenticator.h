// Who is calling and may they: API keys (stored as SHA-256 hashes), users with
// PBKDF2 password hashes, and HS256 JWTs issued by Login. Roles are ordered
// viewer < operator < admin; each RPC declares its minimum in its proto.
#pragma once

#include <absl/status/statusor.h>
#include <yaml-cpp/yaml.h>

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "kernel/auth/login_providers.h"
#include "telekern/options/v1/options.pb.h"

namespace telekern::kernel::auth {

using Role = telekern::options::v1::Role;

std::string role_name(Role role);
absl::StatusOr<Role> parse_role(std::string_view name);

struct ApiKeyEntry {
  std::string name;
  std::string sha256;  // hex SHA-256 of the key
  Role role;
};

struct UserEntry {
  std::string name;
  std::string password_hash;  // pbkdf2-sha256$...
  Role role;
};

struct AuthSettings {
  std::vector<ApiKeyEntry> api_keys;
  std::vector<UserEntry> users;
  std::string jwt_secret;
  std::chrono::seconds jwt_ttl{3600};
  bool enabled() const { return !api_keys.empty() || !users.empty(); }
};

// auth.jwt_secret, whenever it is set, has at least this many characters.
constexpr size_t kMinJwtSecretLength = 32;

// Parses auth.api_keys and auth.users from config; errors name the entry.
absl::StatusOr<AuthSettings> parse_auth_settings(const YAML::Node& api_keys,
                                                 const YAML::Node& users, std::string jwt_secret,
                                                 std::chrono::seconds jwt_ttl);

struct Identity {
  std::string subject;  // key name, user name, or "anonymous"
  Role role;
};

struct LoginResult {
  std::string token;
  std::chrono::system_clock::time_point expires_at;
  Role role;
};

// The minimum role of a method path "/pkg.Service/Method", read from its
// descriptor's (telekern.options.v1.min_role); health and reflection are public,
// methods without the option need admin.
Role method_min_role(std::string_view path);

// Credentials that recently proved an identity, so a busy caller costs one
// hash-map lookup per call instead of a SHA-256 or an HMAC (OpenSSL 3 makes
// both slow and contended). Only successes are kept, bearer tokens until
// they expire; when full it starts over.
class CredentialCache {
 public:
  std::optional<Identity> find_key(std::string_view api_key) const;
  std::optional<Identity> find_token(std::string_view token,
                                     std::chrono::system_clock::time_point now) const;
  void add_key(std::string_view api_key, const Identity& identity);
  void add_token(std::string_view token, const Identity& identity,
                 std::chrono::system_clock::time_point expires_at);

 private:
  static constexpr size_t kLimit = 4096;
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view text) const { return std::hash<std::string_view>{}(text); }
  };
  struct Token {
    Identity identity;
    std::chrono::system_clock::time_point expires_at;
  };
  mutable std::shared_mutex mutex_;
  std::unordered_map<std::string, Identity, Hash, std::equal_to<>> keys_;
  std::unordered_map<std::string, Token, Hash, std::equal_to<>> tokens_;
};

class Authenticator {
 public:
  // `internal_key` is the admin key the kernel's own channels send; it survives
  // config reloads, so it is made once by the daemon, as are `providers`
  // (modules' users, asked after auth.users; may be null).
  Authenticator(AuthSettings settings, std::string internal_key,
                const LoginProviders* providers = nullptr);

  bool enabled() const { return settings_.enabled(); }
  // Checks the credentials a call carries; UNAUTHENTICATED says what is wrong.
  absl::StatusOr<Identity> authenticate(std::string_view api_key,
                                        std::string_view authorization) const;
  // PERMISSION_DENIED names the method, the role it needs and the caller's role.
  absl::Status authorize(const Identity& identity, Role required, std::string_view method) const;
  // Signs in a user of auth.users or, failing that, of a module's login
  // provider; the token carries the user's role and works for every module.
  absl::StatusOr<LoginResult> login(std::string_view user, std::string_view password) const;
  // A key with admin role for the kernel's own channels to its modules.
  const std::string& internal_key() const { return internal_key_; }

 private:
  AuthSettings settings_;
  std::string internal_key_;
  std::string internal_key_hash_;
  const LoginProviders* providers_;
  std::shared_ptr<CredentialCache> cache_ = std::make_shared<CredentialCache>();
};

}  // namespace telekern::kernel::auth
