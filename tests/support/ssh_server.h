// A real sshd (Debian's openssh-server) on a free loopback port with its own
// host key and config in a temp dir, and a test user with a password, for
// the tracer's ssh source. sshd checks passwords against /etc/shadow, so the
// fixture runs as root: it creates the user (once) and resets its ~/.ssh.
#pragma once

#include <filesystem>
#include <memory>
#include <string>

#include "tests/support/process.h"

namespace telekern::testing {

struct SshServerOptions {
  std::string user = "telekern-ssh-test";
  std::string password = "tracer-Passw0rd";
  int max_sessions = 16;  // channels per connection (sshd's MaxSessions)
};

class SshServer {
 public:
  explicit SshServer(SshServerOptions options = {});
  ~SshServer();

  // False (with why()) when sshd is missing, not root, or it did not greet within 10 s.
  bool ready() const { return ready_; }
  const std::string& why() const { return why_; }
  int port() const { return port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  const std::string& user() const { return options_.user; }
  const std::string& password() const { return options_.password; }
  // The user's ~/.ssh/authorized_keys.
  std::filesystem::path authorized_keys() const;
  std::string log() const;

 private:
  SshServerOptions options_;
  TempDir dir_;
  int port_ = 0;
  std::string home_;
  std::unique_ptr<Process> process_;
  bool ready_ = false;
  std::string why_;
};

}  // namespace telekern::testing
