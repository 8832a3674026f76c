#include "kernel/auth/authenticator.h"

#include <google/protobuf/descriptor.h>

#include <shared_mutex>
#include <unordered_map>

#include "kernel/auth/crypto.h"
#include "kernel/auth/jwt.h"
#include "telekern/strings.h"

namespace telekern::kernel::auth {

std::string role_name(Role role) {
  switch (role) {
    case options::v1::ROLE_VIEWER:
      return "viewer";
    case options::v1::ROLE_OPERATOR:
      return "operator";
    case options::v1::ROLE_ADMIN:
      return "admin";
    case options::v1::ROLE_PUBLIC:
      return "public";
    default:
      return "none";
  }
}

absl::StatusOr<Role> parse_role(std::string_view name) {
  std::string lower = to_lower(name);
  if (lower == "viewer") return options::v1::ROLE_VIEWER;
  if (lower == "operator") return options::v1::ROLE_OPERATOR;
  if (lower == "admin") return options::v1::ROLE_ADMIN;
  return absl::InvalidArgumentError(
      str_cat("unknown role '", name, "'; use viewer, operator or admin"));
}

absl::StatusOr<AuthSettings> parse_auth_settings(const YAML::Node& api_keys,
                                                 const YAML::Node& users, std::string jwt_secret,
                                                 std::chrono::seconds jwt_ttl) {
  AuthSettings settings;
  settings.jwt_secret = std::move(jwt_secret);
  settings.jwt_ttl = jwt_ttl;
  auto entry_error = [](const char* list, size_t index, const YAML::Node& node, const auto& what) {
    return absl::InvalidArgumentError(
        str_cat("line ", node.Mark().line + 1, ": auth.", list, "[", index, "]: ", what));
  };
  if (api_keys.IsDefined() && !api_keys.IsNull()) {
    if (!api_keys.IsSequence()) {
      return absl::InvalidArgumentError("auth.api_keys must be a list of {name, sha256, role}");
    }
    for (size_t i = 0; i < api_keys.size(); ++i) {
      const auto& node = api_keys[i];
      if (!node.IsMap() || !node["name"] || !node["sha256"] || !node["role"]) {
        return entry_error("api_keys", i, node,
                           "needs name, sha256 (hex SHA-256 of the key; `telekernd "
                           "--hash-api-key`) and role");
      }
      auto role = parse_role(node["role"].as<std::string>());
      if (!role.ok()) return entry_error("api_keys", i, node, role.status().message());
      std::string hash = to_lower(node["sha256"].as<std::string>());
      if (hash.size() != 64) {
        return entry_error("api_keys", i, node, "sha256 must be 64 hex characters");
      }
      settings.api_keys.push_back({node["name"].as<std::string>(), hash, *role});
    }
  }
  if (users.IsDefined() && !users.IsNull()) {
    if (!users.IsSequence()) {
      return absl::InvalidArgumentError("auth.users must be a list of {name, password_hash, role}");
    }
    for (size_t i = 0; i < users.size(); ++i) {
      const auto& node = users[i];
      if (!node.IsMap() || !node["name"] || !node["password_hash"] || !node["role"]) {
        return entry_error("users", i, node,
                           "needs name, password_hash (`telekernd --hash-password`) and role");
      }
      auto role = parse_role(node["role"].as<std::string>());
      if (!role.ok()) return entry_error("users", i, node, role.status().message());
      std::string hash = node["password_hash"].as<std::string>();
      if (auto check = verify_password("", hash); !check.ok()) {
        return entry_error("users", i, node, check.status().message());
      }
      settings.users.push_back({node["name"].as<std::string>(), hash, *role});
    }
  }
  // A short secret can be guessed offline from any token, whether or not
  // Login issues them: a token signed with it passes verification.
  if (!settings.jwt_secret.empty() && settings.jwt_secret.size() < kMinJwtSecretLength) {
    return absl::InvalidArgumentError(
        str_cat("auth.jwt_secret has ", settings.jwt_secret.size(),
                " characters; it needs at least ", kMinJwtSecretLength,
                " (e.g. `openssl rand -base64 32`), or remove it when no "
                "auth.users log in"));
  }
  if (!settings.users.empty() && settings.jwt_secret.empty()) {
    return absl::InvalidArgumentError(
        str_cat("auth.jwt_secret is required with auth.users: set at least ", kMinJwtSecretLength,
                " characters (e.g. `openssl rand -base64 32`)"));
  }
  return settings;
}

Role method_min_role(std::string_view path) {
  struct PathHash {
    using is_transparent = void;
    size_t operator()(std::string_view text) const { return std::hash<std::string_view>{}(text); }
  };
  static std::shared_mutex mutex;
  static std::unordered_map<std::string, Role, PathHash, std::equal_to<>> cache;
  {
    std::shared_lock lock(mutex);
    if (auto it = cache.find(path); it != cache.end()) return it->second;
  }
  Role role = options::v1::ROLE_ADMIN;
  if (std::string_view(path).starts_with("/grpc.health.v1.") ||
      std::string_view(path).starts_with("/grpc.reflection.")) {
    role = options::v1::ROLE_PUBLIC;
  } else {
    // "/pkg.Service/Method" -> "pkg.Service.Method"
    std::string full(path.substr(path.empty() ? 0 : 1));
    if (auto slash = full.rfind('/'); slash != std::string::npos) full[slash] = '.';
    const auto* method = google::protobuf::DescriptorPool::generated_pool()->FindMethodByName(full);
    if (method != nullptr && method->options().HasExtension(options::v1::min_role)) {
      role = method->options().GetExtension(options::v1::min_role);
      if (role == options::v1::ROLE_UNSPECIFIED) role = options::v1::ROLE_ADMIN;
    }
    // Unknown methods are not cached: a module loaded later may bring them.
    if (method == nullptr) return role;
  }
  std::unique_lock lock(mutex);
  cache.emplace(std::string(path), role);
  return role;
}

namespace {
// What an unknown user's password is checked against when no auth.users entry
// can stand in: a hash of a random password with the iterations modules'
// users get, made once per process (on first use: daemons without module
// users never pay for it).
const std::string& decoy_password_hash() {
  static const std::string hash = hash_password(random_bytes(16));
  return hash;
}
}  // namespace

Authenticator::Authenticator(AuthSettings settings, std::string internal_key,
                             const LoginProviders* providers)
    : settings_(std::move(settings)),
      internal_key_(std::move(internal_key)),
      internal_key_hash_(sha256_hex(internal_key_)),
      providers_(providers) {
  if (settings_.jwt_secret.empty()) settings_.jwt_secret = random_bytes(32);
}

std::optional<Identity> CredentialCache::find_key(std::string_view api_key) const {
  std::shared_lock lock(mutex_);
  if (auto it = keys_.find(api_key); it != keys_.end()) return it->second;
  return std::nullopt;
}

std::optional<Identity> CredentialCache::find_token(
    std::string_view token, std::chrono::system_clock::time_point now) const {
  std::shared_lock lock(mutex_);
  if (auto it = tokens_.find(token); it != tokens_.end() && now < it->second.expires_at) {
    return it->second.identity;
  }
  return std::nullopt;
}

void CredentialCache::add_key(std::string_view api_key, const Identity& identity) {
  std::unique_lock lock(mutex_);
  if (keys_.size() >= kLimit) keys_.clear();
  keys_.insert_or_assign(std::string(api_key), identity);
}

void CredentialCache::add_token(std::string_view token, const Identity& identity,
                                std::chrono::system_clock::time_point expires_at) {
  std::unique_lock lock(mutex_);
  if (tokens_.size() >= kLimit) tokens_.clear();
  tokens_.insert_or_assign(std::string(token), Token{identity, expires_at});
}

absl::StatusOr<Identity> Authenticator::authenticate(std::string_view api_key,
                                                     std::string_view authorization) const {
  if (!api_key.empty()) {
    if (auto cached = cache_->find_key(api_key)) return *cached;
    std::string hash = sha256_hex(api_key);
    if (constant_time_equal(hash, internal_key_hash_)) {
      Identity kernel{"kernel", options::v1::ROLE_ADMIN};
      cache_->add_key(api_key, kernel);
      return kernel;
    }
    for (const auto& entry : settings_.api_keys) {
      if (constant_time_equal(hash, entry.sha256)) {
        Identity identity{entry.name, entry.role};
        cache_->add_key(api_key, identity);
        return identity;
      }
    }
    return absl::UnauthenticatedError("x-api-key is not a known API key");
  }
  if (!authorization.empty()) {
    constexpr std::string_view kBearer = "Bearer ";
    if (to_lower(authorization.substr(0, kBearer.size())) != to_lower(kBearer)) {
      return absl::UnauthenticatedError("authorization header must be 'Bearer <jwt-or-api-key>'");
    }
    std::string_view token = authorization.substr(kBearer.size());
    if (token.find('.') == std::string_view::npos && !token.empty()) {
      // Not shaped like a JWT: an API key sent as a bearer token (curl users
      // of the seed's API, Prometheus' `authorization` setting).
      auto as_key = authenticate(token, "");
      if (as_key.ok()) return as_key;
      return absl::UnauthenticatedError(
          "bearer token is neither a JWT (header.payload.signature) nor a known API key");
    }
    auto now = std::chrono::system_clock::now();
    if (auto cached = cache_->find_token(token, now)) return *cached;
    auto claims = verify_jwt(token, settings_.jwt_secret, now);
    if (!claims.ok()) return claims.status();
    auto role = parse_role(claims->role);
    if (!role.ok()) return absl::UnauthenticatedError("bearer token carries an unknown role");
    Identity identity{claims->subject, *role};
    cache_->add_token(token, identity, claims->expires_at);
    return identity;
  }
  return absl::UnauthenticatedError(
      "no credentials: send metadata x-api-key or authorization: Bearer <jwt> "
      "(telesh --api-key KEY, or `login USER`)");
}

absl::Status Authenticator::authorize(const Identity& identity, Role required,
                                      std::string_view method) const {
  if (required == options::v1::ROLE_PUBLIC) return absl::OkStatus();
  if (identity.role >= required && identity.role != options::v1::ROLE_PUBLIC) {
    return absl::OkStatus();
  }
  return absl::PermissionDeniedError(str_cat(method, " needs role ", role_name(required), "; '",
                                             identity.subject, "' has role ",
                                             role_name(identity.role)));
}

absl::StatusOr<LoginResult> Authenticator::login(std::string_view user,
                                                 std::string_view password) const {
  std::string password_hash;
  Role role = options::v1::ROLE_UNSPECIFIED;
  for (const auto& entry : settings_.users) {
    if (entry.name == user) {
      password_hash = entry.password_hash;
      role = entry.role;
    }
  }
  if (password_hash.empty() && providers_ != nullptr && !user.empty()) {
    if (auto provided = providers_->find(user)) {
      auto parsed = parse_role(provided->credentials.role);
      if (parsed.ok()) {
        password_hash = std::move(provided->credentials.password_hash);
        role = *parsed;
      }
    }
  }
  // An unknown user costs the same hash work as a wrong password (against a
  // configured user's hash, so with its iterations, else a decoy with the
  // iterations modules use), so timing tells no one which names exist.
  if (password_hash.empty()) {
    if (!settings_.users.empty()) {
      (void)verify_password(password, settings_.users.front().password_hash);
    } else if (providers_ != nullptr && providers_->size() > 0) {
      (void)verify_password(password, decoy_password_hash());
    }  // else no user exists at all, so there is nothing to hide
    return absl::UnauthenticatedError("unknown user or wrong password");
  }
  auto matches = verify_password(password, password_hash);
  if (!matches.ok() || !*matches)
    return absl::UnauthenticatedError("unknown user or wrong password");
  auto now = std::chrono::system_clock::now();
  JwtClaims claims{std::string(user), role_name(role), now, now + settings_.jwt_ttl};
  return LoginResult{sign_jwt(claims, settings_.jwt_secret), claims.expires_at, role};
}

}  // namespace telekern::kernel::auth
