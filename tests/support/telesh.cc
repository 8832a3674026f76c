#include "tests/support/telesh.h"

namespace telekern::testing {

std::string shell_quote(const std::string& text) {
  std::string out = "'";
  for (char c : text) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

std::string telesh_binary() { return std::string(TELEKERN_BUILD_DIR) + "/bin/telesh"; }

CommandResult run_telesh(const Telekernd& daemon, const std::string& arguments,
                         const TeleshRun& how) {
  return run_command("NO_COLOR=1 " + how.env + " " + telesh_binary() + " --addr " +
                     daemon.grpc_address() + " " + arguments + " </dev/null " + how.redirect);
}

CommandResult telesh_commands(const Telekernd& daemon, const std::string& commands) {
  return run_telesh(daemon, "-c " + shell_quote(commands));
}

}  // namespace telekern::testing
