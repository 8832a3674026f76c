#include "tests/support/postgres_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pwd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

namespace telekern::testing {
namespace {

constexpr const char* kBin = "/usr/lib/postgresql/15/bin";

int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address);
  socklen_t size = sizeof address;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &size);
  ::close(fd);
  return ntohs(address.sin_port);
}

// Prefix that runs a command as `postgres` when we are root (exec, no fork,
// so the Process's pid is the server's).
std::vector<std::string> as_postgres() {
  if (::geteuid() != 0) return {};
  return {"/usr/bin/setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "--"};
}

}  // namespace

PostgresServer::PostgresServer() {
  std::string initdb = std::string(kBin) + "/initdb";
  if (::access(initdb.c_str(), X_OK) != 0) {
    error_ = "postgresql-15 is not installed (apt-get install postgresql-15)";
    return;
  }
  auto data = dir_.path() / "data";
  if (::geteuid() == 0) {
    passwd* user = ::getpwnam("postgres");
    if (user == nullptr) {
      error_ = "no 'postgres' user to run the server as";
      return;
    }
    ::chown(dir_.path().c_str(), user->pw_uid, user->pw_gid);
  }
  std::string prefix;
  for (const auto& word : as_postgres()) prefix += word + " ";
  auto init = run_command(prefix + initdb + " -D " + data.string() +
                              " -A trust -U postgres --no-sync -E UTF8 > " +
                              (dir_.path() / "initdb.log").string() + " 2>&1",
                          std::chrono::seconds(120));
  if (init.exit_code != 0) {
    error_ = "initdb failed: " + init.output;
    return;
  }
  port_ = free_port();
  std::vector<std::string> argv = as_postgres();
  for (std::string word :
       {std::string(kBin) + "/postgres", std::string("-D"), data.string(), std::string("-p"),
        std::to_string(port_), std::string("-k"), dir_.path().string(), std::string("-c"),
        std::string("listen_addresses=127.0.0.1"), std::string("-c"), std::string("fsync=off"),
        std::string("-c"), std::string("synchronous_commit=off")})
    argv.push_back(word);
  process_ = std::make_unique<Process>(argv, std::map<std::string, std::string>{},
                                       dir_.path() / "postgres.log");
  std::string isready =
      std::string(kBin) + "/pg_isready -q -h 127.0.0.1 -p " + std::to_string(port_);
  ready_ = wait_for([&] { return run_command(isready, std::chrono::seconds(5)).exit_code == 0; },
                    std::chrono::seconds(60));
  if (!ready_) error_ = "postgres did not become ready:\n" + log();
}

PostgresServer::~PostgresServer() = default;

std::string PostgresServer::conninfo() const {
  return "host=127.0.0.1 port=" + std::to_string(port_) + " user=postgres dbname=postgres";
}

std::string PostgresServer::create_database(const std::string& name) const {
  run_command(std::string(kBin) + "/psql -q -h 127.0.0.1 -p " + std::to_string(port_) +
                  " -U postgres -c 'CREATE DATABASE " + name + "'",
              std::chrono::seconds(30));
  return "host=127.0.0.1 port=" + std::to_string(port_) + " user=postgres dbname=" + name;
}

std::string PostgresServer::log() const {
  std::ifstream in(dir_.path() / "postgres.log");
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace telekern::testing
