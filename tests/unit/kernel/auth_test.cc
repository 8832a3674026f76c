#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

#include "kernel/auth/authenticator.h"
#include "kernel/auth/crypto.h"
#include "kernel/auth/jwt.h"
#include "telekern/kernel/v1/kernel.pb.h"

namespace telekern::kernel::auth {
namespace {

using namespace std::chrono_literals;
const std::string kSecret = "0123456789abcdef0123456789abcdef";

Authenticator make_authenticator() {
  AuthSettings settings;
  settings.api_keys.push_back({"ci", sha256_hex("viewer-key"), options::v1::ROLE_VIEWER});
  settings.api_keys.push_back({"ops", sha256_hex("operator-key"), options::v1::ROLE_OPERATOR});
  settings.users.push_back({"alice", hash_password("wonderland", 1000), options::v1::ROLE_ADMIN});
  settings.jwt_secret = kSecret;
  settings.jwt_ttl = 60s;
  return Authenticator(settings, "internal-key");
}

TEST(JwtTest, RoundTrip) {
  auto now = std::chrono::system_clock::now();
  auto token = sign_jwt({"bob", "operator", now, now + 60s}, kSecret);
  auto claims = verify_jwt(token, kSecret, now);
  ASSERT_TRUE(claims.ok()) << claims.status();
  EXPECT_EQ(claims->subject, "bob");
  EXPECT_EQ(claims->role, "operator");
}

TEST(JwtTest, ExpiredTokenRejected) {
  auto now = std::chrono::system_clock::now();
  auto token = sign_jwt({"bob", "admin", now - 120s, now - 60s}, kSecret);
  auto claims = verify_jwt(token, kSecret, now);
  ASSERT_FALSE(claims.ok());
  EXPECT_NE(claims.status().message().find("expired"), std::string::npos);
}

TEST(JwtTest, WrongKeyRejected) {
  auto now = std::chrono::system_clock::now();
  auto token = sign_jwt({"bob", "admin", now, now + 60s}, "another-secret-another-secret-xx");
  auto claims = verify_jwt(token, kSecret, now);
  ASSERT_FALSE(claims.ok());
  EXPECT_NE(claims.status().message().find("signature"), std::string::npos);
}

TEST(JwtTest, ForgedPayloadRejected) {
  auto now = std::chrono::system_clock::now();
  auto token = sign_jwt({"bob", "viewer", now, now + 60s}, kSecret);
  // Swap the payload for one claiming admin, keeping the old signature.
  auto first_dot = token.find('.');
  auto second_dot = token.find('.', first_dot + 1);
  std::string forged_payload =
      base64url_encode(R"({"sub":"bob","role":"admin","exp":)" +
                       std::to_string(std::chrono::duration_cast<std::chrono::seconds>(
                                          (now + 60s).time_since_epoch())
                                          .count()) +
                       "}");
  std::string forged = token.substr(0, first_dot + 1) + forged_payload + token.substr(second_dot);
  EXPECT_FALSE(verify_jwt(forged, kSecret, now).ok());
}

TEST(JwtTest, NonCanonicalSignatureSpellingRejected) {
  auto now = std::chrono::system_clock::now();
  auto token = sign_jwt({"bob", "viewer", now, now + 60s}, kSecret);
  // The last character of a 32-byte signature carries 2 padding bits: setting
  // them keeps the decoded bytes but must not be accepted.
  const std::string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  auto index = alphabet.find(token.back());
  std::string respelled = token;
  respelled.back() = alphabet[index ^ 1];
  EXPECT_FALSE(verify_jwt(respelled, kSecret, now).ok());
  EXPECT_TRUE(verify_jwt(token, kSecret, now).ok());
}

TEST(JwtTest, PaddingOrTrailingBytesAfterPaddingRejected) {
  auto now = std::chrono::system_clock::now();
  auto token = sign_jwt({"bob", "admin", now, now + 60s}, kSecret);
  ASSERT_TRUE(verify_jwt(token, kSecret, now).ok());
  EXPECT_FALSE(verify_jwt(token + "=", kSecret, now).ok());
  EXPECT_FALSE(verify_jwt(token + "=AAAA", kSecret, now).ok()) << "found by tests/fuzz/jwt_fuzz";
  EXPECT_FALSE(base64url_decode("=\xfa").ok());
}

TEST(JwtTest, AlgNoneRejected) {
  std::string header = base64url_encode(R"({"alg":"none","typ":"JWT"})");
  std::string payload = base64url_encode(R"({"sub":"x","role":"admin","exp":99999999999})");
  auto claims = verify_jwt(header + "." + payload + ".", kSecret, std::chrono::system_clock::now());
  ASSERT_FALSE(claims.ok());
  EXPECT_NE(claims.status().message().find("HS256"), std::string::npos);
}

TEST(PasswordTest, HashVerifies) {
  auto hash = hash_password("s3cret", 1000);
  EXPECT_TRUE(*verify_password("s3cret", hash));
  EXPECT_FALSE(*verify_password("wrong", hash));
  EXPECT_NE(hash_password("s3cret", 1000), hash) << "salt must differ";
  EXPECT_FALSE(verify_password("x", "md5$abc").ok());
}

TEST(AuthenticatorTest, ApiKeysAndRoles) {
  auto authenticator = make_authenticator();
  auto viewer = authenticator.authenticate("viewer-key", "");
  ASSERT_TRUE(viewer.ok());
  EXPECT_EQ(viewer->role, options::v1::ROLE_VIEWER);
  EXPECT_TRUE(authenticator.authorize(*viewer, options::v1::ROLE_VIEWER, "/m").ok());
  auto denied = authenticator.authorize(*viewer, options::v1::ROLE_OPERATOR, "/x.Y/Z");
  EXPECT_EQ(denied.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_NE(denied.message().find("needs role operator"), std::string::npos) << denied;
  EXPECT_NE(denied.message().find("has role viewer"), std::string::npos) << denied;
  EXPECT_EQ(authenticator.authenticate("nope", "").status().code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(authenticator.authenticate("", "").status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(authenticator.authenticate("internal-key", "")->role, options::v1::ROLE_ADMIN);
}

TEST(CredentialCacheTest, KeepsTokensUntilTheyExpire) {
  CredentialCache cache;
  auto now = std::chrono::system_clock::now();
  cache.add_token("t1", {"bob", options::v1::ROLE_VIEWER}, now + 10s);
  ASSERT_TRUE(cache.find_token("t1", now).has_value());
  EXPECT_EQ(cache.find_token("t1", now)->subject, "bob");
  EXPECT_FALSE(cache.find_token("t1", now + 11s).has_value()) << "expired tokens are not served";
  EXPECT_FALSE(cache.find_token("t2", now).has_value());
  cache.add_key("k", {"ci", options::v1::ROLE_OPERATOR});
  EXPECT_EQ(cache.find_key("k")->role, options::v1::ROLE_OPERATOR);
  EXPECT_FALSE(cache.find_key("other").has_value());
}

TEST(AuthenticatorTest, RepeatedCredentialsGiveTheSameAnswer) {
  auto authenticator = make_authenticator();
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(authenticator.authenticate("operator-key", "")->subject, "ops");
    EXPECT_EQ(authenticator.authenticate("nope", "").status().code(),
              absl::StatusCode::kUnauthenticated)
        << "failures are never remembered as successes";
  }
  auto login = authenticator.login("alice", "wonderland");
  ASSERT_TRUE(login.ok());
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(authenticator.authenticate("", "Bearer " + login->token)->subject, "alice");
  }
  auto forged = login->token;
  forged[forged.size() - 10] = forged[forged.size() - 10] == 'A' ? 'B' : 'A';
  EXPECT_EQ(authenticator.authenticate("", "Bearer " + forged).status().code(),
            absl::StatusCode::kUnauthenticated);
}

TEST(AuthenticatorTest, LoginIssuesUsableToken) {
  auto authenticator = make_authenticator();
  EXPECT_FALSE(authenticator.login("alice", "wrong").ok());
  EXPECT_FALSE(authenticator.login("mallory", "wonderland").ok());
  auto login = authenticator.login("alice", "wonderland");
  ASSERT_TRUE(login.ok()) << login.status();
  auto identity = authenticator.authenticate("", "Bearer " + login->token);
  ASSERT_TRUE(identity.ok()) << identity.status();
  EXPECT_EQ(identity->subject, "alice");
  EXPECT_EQ(identity->role, options::v1::ROLE_ADMIN);
  EXPECT_FALSE(authenticator.authenticate("", "Basic abc").ok());
}

TEST(AuthenticatorTest, MethodRolesComeFromProtoOptions) {
  // Make sure the kernel proto's descriptors are linked into this binary.
  ASSERT_NE(telekern::kernel::v1::ListModulesRequest::descriptor(), nullptr);
  EXPECT_EQ(method_min_role("/telekern.kernel.v1.Kernel/ListModules"), options::v1::ROLE_VIEWER);
  EXPECT_EQ(method_min_role("/telekern.kernel.v1.Kernel/GetConfig"), options::v1::ROLE_OPERATOR);
  EXPECT_EQ(method_min_role("/telekern.kernel.v1.Kernel/LoadModule"), options::v1::ROLE_ADMIN);
  EXPECT_EQ(method_min_role("/telekern.kernel.v1.Kernel/Login"), options::v1::ROLE_PUBLIC);
  EXPECT_EQ(method_min_role("/grpc.health.v1.Health/Check"), options::v1::ROLE_PUBLIC);
  EXPECT_EQ(method_min_role("/unknown.Service/Method"), options::v1::ROLE_ADMIN);
}

TEST(AuthSettingsTest, BadEntriesNameTheProblem) {
  auto settings = parse_auth_settings(YAML::Load("- {name: a, sha256: short, role: viewer}"),
                                      YAML::Node(), "", 60s);
  ASSERT_FALSE(settings.ok());
  EXPECT_NE(settings.status().message().find("api_keys[0]"), std::string::npos);
  auto bad_role = parse_auth_settings(
      YAML::Load("- {name: a, sha256: " + sha256_hex("k") + ", role: god}"), YAML::Node(), "", 60s);
  ASSERT_FALSE(bad_role.ok());
  EXPECT_NE(bad_role.status().message().find("unknown role 'god'"), std::string::npos);
  auto short_secret = parse_auth_settings(
      YAML::Node(),
      YAML::Load("- {name: u, password_hash: '" + hash_password("p", 1000) + "', role: admin}"),
      "short", 60s);
  ASSERT_FALSE(short_secret.ok());
  EXPECT_NE(short_secret.status().message().find("jwt_secret"), std::string::npos);
}

// An 8-character secret lets anyone forge tokens offline (an admin token
// signed with one worked when only API keys were configured).
TEST(AuthSettingsTest, ShortJwtSecretIsRefusedWheneverItIsSet) {
  auto keys_only =
      parse_auth_settings(YAML::Load("- {name: a, sha256: " + sha256_hex("k") + ", role: viewer}"),
                          YAML::Node(), "8-chars!", 60s);
  ASSERT_FALSE(keys_only.ok()) << "a short secret with API keys only must be refused";
  EXPECT_NE(keys_only.status().message().find("auth.jwt_secret has 8 characters"),
            std::string::npos)
      << keys_only.status().message();
  EXPECT_NE(keys_only.status().message().find("at least 32"), std::string::npos);
  auto nothing_else = parse_auth_settings(YAML::Node(), YAML::Node(), "short", 60s);
  EXPECT_FALSE(nothing_else.ok());
  EXPECT_TRUE(parse_auth_settings(YAML::Node(), YAML::Node(), "", 60s).ok()) << "unset is fine";
  EXPECT_TRUE(parse_auth_settings(YAML::Node(), YAML::Node(), kSecret, 60s).ok());
  auto users_without_secret = parse_auth_settings(
      YAML::Node(),
      YAML::Load("- {name: u, password_hash: '" + hash_password("p", 1000) + "', role: admin}"), "",
      60s);
  EXPECT_FALSE(users_without_secret.ok());
}

// Login must not tell which users exist by how long it takes: an unknown user
// runs the same PBKDF2 work as a wrong password (it took 0.4-3 ms against
// 40-86 ms). The issue states the timing itself as the behaviour, so this
// compares medians of the two, with a wide margin.
TEST(AuthenticatorTest, UnknownUserTakesAsLongAsAWrongPassword) {
  AuthSettings settings;
  settings.users.push_back({"alice", hash_password("wonderland", 60'000), options::v1::ROLE_ADMIN});
  settings.jwt_secret = kSecret;
  Authenticator authenticator(settings, "internal-key");
  auto median_seconds = [&](const std::string& user) {
    std::vector<double> samples;
    for (int i = 0; i < 7; ++i) {
      auto start = std::chrono::steady_clock::now();
      auto result = authenticator.login(user, "wrong");
      samples.push_back(
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
      EXPECT_FALSE(result.ok());
      EXPECT_EQ(result.status().message(), "unknown user or wrong password");
    }
    std::sort(samples.begin(), samples.end());
    return samples[samples.size() / 2];
  };
  double wrong_password = median_seconds("alice");
  double unknown_user = median_seconds("mallory");
  EXPECT_GT(unknown_user, 0.5 * wrong_password)
      << "unknown user " << unknown_user * 1e3 << " ms, wrong password " << wrong_password * 1e3
      << " ms";
}

}  // namespace
}  // namespace telekern::kernel::auth
