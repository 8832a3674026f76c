#include "tests/support/auth_config.h"

#include "tests/support/process.h"
#include "tests/support/telekernd.h"

namespace telekern::testing {

std::string sha256_hex(const std::string& text) {
  return run_command("printf %s '" + text + "' | sha256sum | cut -d' ' -f1").output.substr(0, 64);
}

std::string password_hash(const std::string& password) {
  auto result = run_command("echo '" + password + "' | " + telekernd_binary() + " --hash-password");
  return result.output.substr(0, result.output.find('\n'));
}

std::string auth_config_yaml() {
  return std::string("auth:\n  jwt_secret: \"0123456789abcdef0123456789abcdef-test\"\n") +
         "  api_keys:\n"
         "    - {name: viewer-key, sha256: \"" +
         sha256_hex(kViewerKey) + "\", role: viewer}\n" + "    - {name: operator-key, sha256: \"" +
         sha256_hex(kOperatorKey) + "\", role: operator}\n" +
         "  users:\n"
         "    - {name: " +
         kAdminUser + ", password_hash: \"" + password_hash(kAdminPassword) + "\", role: admin}\n";
}

}  // namespace telekern::testing
