#include "tests/support/ssh_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "tests/support/redis_server.h"

namespace telekern::testing {
namespace {

// True once something on the port sends an SSH banner.
bool greets(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(static_cast<uint16_t>(port));
  bool ok = false;
  if (connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0) {
    char banner[8] = {};
    timeval timeout{1, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    ok = recv(fd, banner, 4, MSG_WAITALL) == 4 && std::string(banner, 4) == "SSH-";
  }
  close(fd);
  return ok;
}

}  // namespace

SshServer::SshServer(SshServerOptions options)
    : options_(std::move(options)), dir_("telekern-sshd") {
  std::string sshd = find_executable("sshd", {"/usr/sbin/sshd"});
  if (sshd.empty()) {
    why_ = "sshd not found: apt-get install openssh-server (make deps)";
    return;
  }
  if (geteuid() != 0) {
    why_ = "sshd password auth reads /etc/shadow: the ssh tests run as root";
    return;
  }
  const std::string& user = options_.user;
  auto made = run_command("id -u " + user + " >/dev/null 2>&1 || useradd -m -s /bin/sh " + user +
                          " && echo '" + user + ":" + options_.password + "' | chpasswd");
  if (made.exit_code != 0) {
    why_ = "cannot create the test user: " + made.output;
    return;
  }
  passwd* entry = getpwnam(user.c_str());
  if (entry == nullptr) {
    why_ = "no passwd entry for " + user;
    return;
  }
  home_ = entry->pw_dir;
  run_command("rm -rf '" + home_ + "/.ssh' && mkdir -p /run/sshd");
  auto host_key = dir_.path() / "host_ed25519";
  auto keygen = run_command("ssh-keygen -q -t ed25519 -N '' -f '" + host_key.string() + "'");
  if (keygen.exit_code != 0) {
    why_ = "ssh-keygen failed: " + keygen.output;
    return;
  }
  port_ = free_loopback_port();
  auto config = dir_.path() / "sshd_config";
  std::ofstream(config) << "Port " << port_ << "\nListenAddress 127.0.0.1\nHostKey "
                        << host_key.string() << "\nPidFile " << (dir_.path() / "sshd.pid").string()
                        << "\nPasswordAuthentication yes\nKbdInteractiveAuthentication no\n"
                           "PubkeyAuthentication yes\nUsePAM no\nStrictModes no\nAllowUsers "
                        << user << "\nMaxSessions " << options_.max_sessions
                        << "\nMaxStartups 50\nLogLevel VERBOSE\n";
  process_ =
      std::make_unique<Process>(std::vector<std::string>{sshd, "-D", "-e", "-f", config.string()},
                                std::map<std::string, std::string>{}, dir_.path() / "sshd.log");
  ready_ =
      wait_for([&] { return !process_->running() || greets(port_); }, std::chrono::seconds(10)) &&
      process_->running();
  if (!ready_) why_ = "sshd did not start: " + log();
}

SshServer::~SshServer() {
  if (process_) {
    process_->signal(SIGTERM);
    process_->wait(std::chrono::seconds(5));
  }
}

std::filesystem::path SshServer::authorized_keys() const {
  return std::filesystem::path(home_) / ".ssh" / "authorized_keys";
}

std::string SshServer::log() const {
  std::ifstream in(dir_.path() / "sshd.log");
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace telekern::testing
