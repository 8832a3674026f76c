// Login through module-provided users: the kernel's auth.users first, then
// each provider in order; a withdrawn provider signs no one in; an unknown
// user costs a hash like a wrong password.
#include "kernel/auth/login_providers.h"

#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <thread>

#include "kernel/auth/authenticator.h"
#include "telekern/crypto.h"

namespace telekern::kernel::auth {
namespace {

using namespace std::chrono_literals;
const std::string kSecret = "0123456789abcdef0123456789abcdef";

class FakeProvider final : public LoginProvider {
 public:
  void add(const std::string& user, const std::string& password, const std::string& role) {
    users_[user] = {telekern::hash_password(password, 1000), role};
  }
  std::optional<LoginCredentials> find_login(std::string_view user) const override {
    ++lookups;
    auto it = users_.find(std::string(user));
    if (it == users_.end()) return std::nullopt;
    return it->second;
  }
  mutable std::atomic<int> lookups{0};

 private:
  std::map<std::string, LoginCredentials> users_;
};

AuthSettings settings_with_alice() {
  AuthSettings settings;
  settings.users.push_back(
      {"alice", telekern::hash_password("wonderland", 1000), options::v1::ROLE_ADMIN});
  settings.jwt_secret = kSecret;
  settings.jwt_ttl = 60s;
  return settings;
}

TEST(LoginProvidersTest, ProviderUserLogsInWithItsRoleAndTheTokenAuthenticates) {
  LoginProviders providers;
  FakeProvider monitor;
  monitor.add("carol", "carol-password", "viewer");
  int owner = 0;
  providers.add(&owner, "monitor", monitor);
  Authenticator authenticator(settings_with_alice(), "internal", &providers);

  auto login = authenticator.login("carol", "carol-password");
  ASSERT_TRUE(login.ok()) << login.status();
  EXPECT_EQ(login->role, options::v1::ROLE_VIEWER);
  auto identity = authenticator.authenticate("", "Bearer " + login->token);
  ASSERT_TRUE(identity.ok()) << identity.status();
  EXPECT_EQ(identity->subject, "carol");
  EXPECT_EQ(identity->role, options::v1::ROLE_VIEWER);
  EXPECT_FALSE(authenticator.authorize(*identity, options::v1::ROLE_ADMIN, "/x.Y/Z").ok());

  EXPECT_EQ(authenticator.login("carol", "wrong").status().code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(authenticator.login("nobody", "x").status().code(), absl::StatusCode::kUnauthenticated);
}

TEST(LoginProvidersTest, KernelUsersComeFirstThenProvidersInOrder) {
  LoginProviders providers;
  FakeProvider first, second;
  first.add("alice", "not-wonderland", "viewer");  // shadowed by auth.users
  first.add("dave", "first-password", "operator");
  second.add("dave", "second-password", "admin");
  second.add("erin", "erin-password", "admin");
  int owner_a = 0, owner_b = 0;
  providers.add(&owner_a, "a", first);
  providers.add(&owner_b, "b", second);
  Authenticator authenticator(settings_with_alice(), "internal", &providers);

  auto alice = authenticator.login("alice", "wonderland");
  ASSERT_TRUE(alice.ok());
  EXPECT_EQ(alice->role, options::v1::ROLE_ADMIN);
  EXPECT_EQ(first.lookups.load(), 0) << "auth.users answers without asking modules";
  EXPECT_FALSE(authenticator.login("alice", "not-wonderland").ok());
  auto dave = authenticator.login("dave", "first-password");
  ASSERT_TRUE(dave.ok());
  EXPECT_EQ(dave->role, options::v1::ROLE_OPERATOR);
  EXPECT_FALSE(authenticator.login("dave", "second-password").ok());
  EXPECT_TRUE(authenticator.login("erin", "erin-password").ok());
}

TEST(LoginProvidersTest, WithdrawnProviderSignsNoOneIn) {
  LoginProviders providers;
  FakeProvider monitor;
  monitor.add("carol", "carol-password", "operator");
  int owner = 0;
  providers.add(&owner, "monitor", monitor);
  Authenticator authenticator(settings_with_alice(), "internal", &providers);
  ASSERT_TRUE(authenticator.login("carol", "carol-password").ok());
  providers.remove_all(&owner);
  EXPECT_EQ(providers.size(), 0u);
  int before = monitor.lookups.load();
  EXPECT_FALSE(authenticator.login("carol", "carol-password").ok());
  EXPECT_EQ(monitor.lookups.load(), before);
}

TEST(LoginProvidersTest, UnknownRoleOrMalformedHashIsRefused) {
  LoginProviders providers;
  FakeProvider monitor;
  monitor.add("root", "root-password", "superuser");
  int owner = 0;
  providers.add(&owner, "monitor", monitor);
  Authenticator authenticator(settings_with_alice(), "internal", &providers);
  EXPECT_EQ(authenticator.login("root", "root-password").status().code(),
            absl::StatusCode::kUnauthenticated);
}

TEST(LoginProvidersTest, RemoveWaitsForALookupInProgress) {
  struct SlowProvider final : LoginProvider {
    std::optional<LoginCredentials> find_login(std::string_view) const override {
      entered = true;
      while (!release) std::this_thread::yield();
      finished = true;
      return std::nullopt;
    }
    mutable std::atomic<bool> entered{false}, release{false}, finished{false};
  } slow;
  LoginProviders providers;
  int owner = 0;
  providers.add(&owner, "slow", slow);
  std::thread login([&] { (void)providers.find("x"); });
  while (!slow.entered) std::this_thread::yield();
  std::atomic<bool> removed{false};
  std::thread remover([&] {
    providers.remove_all(&owner);
    removed = true;
  });
  // remove_all cannot return while find_login runs; it returns once it ends.
  std::this_thread::sleep_for(50ms);
  EXPECT_FALSE(removed.load());
  slow.release = true;
  remover.join();
  login.join();
  EXPECT_TRUE(slow.finished.load());
  EXPECT_TRUE(removed.load());
}

TEST(LoginProvidersTest, UnknownUserCostsAHashWhenOnlyProvidersHaveUsers) {
  LoginProviders providers;
  FakeProvider monitor;
  monitor.add("carol", "carol-password", "viewer");
  int owner = 0;
  providers.add(&owner, "monitor", monitor);
  AuthSettings settings;
  settings.jwt_secret = kSecret;
  Authenticator authenticator(settings, "internal", &providers);
  (void)authenticator.login("warm-up", "x");  // the decoy hash is made on first use
  // A known user with a full-strength hash and an unknown one cost about the
  // same: both run PBKDF2 with kPasswordIterations. Compared loosely (x4) so a
  // loaded machine does not flip it; without the decoy the unknown user
  // costs microseconds against tens of milliseconds.
  struct Strong final : LoginProvider {
    std::string hash = telekern::hash_password("strong-password");
    std::optional<LoginCredentials> find_login(std::string_view user) const override {
      if (user != "sam") return std::nullopt;
      return LoginCredentials{hash, "viewer"};
    }
  } sam;
  int owner_sam = 0;
  providers.add(&owner_sam, "strong", sam);
  auto time = [&](const char* user) {
    auto start = std::chrono::steady_clock::now();
    (void)authenticator.login(user, "wrong-password");
    return std::chrono::steady_clock::now() - start;
  };
  auto known = std::min({time("sam"), time("sam"), time("sam")});
  auto unknown = std::min({time("zed"), time("zed"), time("zed")});
  EXPECT_GT(unknown * 4, known) << "unknown user answered without hashing";
}

}  // namespace
}  // namespace telekern::kernel::auth
