#include "ssh_runner.h"

#include <arpa/inet.h>
#include <libssh2.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <sstream>

#include "telekern/sleep.h"
#include "telekern/strings.h"

namespace telekern::tracer {
namespace {

using Clock = std::chrono::steady_clock;

struct SessionDeleter {
  void operator()(LIBSSH2_SESSION* session) const {
    libssh2_session_set_blocking(session, 1);
    libssh2_session_disconnect(session, "bye");
    libssh2_session_free(session);
  }
};
using SessionHandle = std::unique_ptr<LIBSSH2_SESSION, SessionDeleter>;

std::once_flag init_once;

std::string session_error(LIBSSH2_SESSION* session) {
  char* message = nullptr;
  libssh2_session_last_error(session, &message, nullptr, 0);
  return message != nullptr ? message : "unknown error";
}

std::string shell_quote(const std::string& text) {
  std::string out = "'";
  for (char c : text) {
    if (c == '\'')
      out += "'\\''";
    else
      out += c;
  }
  return out + "'";
}

struct Target {
  std::string host;
  int port = 22;
};

absl::StatusOr<Target> parse_target(const std::string& text) {
  if (text.empty())
    return absl::InvalidArgumentError(
        "the ssh source needs ssh.host (e.g. --ssh.host 10.11.12.13)");
  Target target{text, 22};
  auto colon = text.rfind(':');
  if (colon != std::string::npos && text.find(':') == colon) {
    target.host = text.substr(0, colon);
    target.port = std::atoi(text.substr(colon + 1).c_str());
    if (target.port <= 0 || target.port > 65535)
      return absl::InvalidArgumentError(str_cat("ssh.host '", text, "': bad port"));
  }
  return target;
}

// One authenticated SSH connection. After setup it runs non-blocking and is
// shared by every scanning thread: libssh2 calls happen under `mutex_`, and
// a thread that would block waits on the socket without holding it, so many
// channels (one per command) progress at once over one connection.
class SshConnection {
 public:
  ~SshConnection() {
    session_.reset();
    if (socket_ >= 0) close(socket_);
  }

  static absl::StatusOr<std::unique_ptr<SshConnection>> connect(
      const Target& target, const std::filesystem::path& known_hosts, bool accept_new) {
    std::call_once(init_once, [] { libssh2_init(0); });
    auto connection = std::unique_ptr<SshConnection>(new SshConnection());
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* found = nullptr;
    if (int error =
            getaddrinfo(target.host.c_str(), std::to_string(target.port).c_str(), &hints, &found);
        error != 0)
      return absl::UnavailableError(str_cat("ssh host ", target.host, ": ", gai_strerror(error)));
    for (addrinfo* at = found; at != nullptr; at = at->ai_next) {
      int fd = socket(at->ai_family, at->ai_socktype | SOCK_CLOEXEC, at->ai_protocol);
      if (fd < 0) continue;
      if (::connect(fd, at->ai_addr, at->ai_addrlen) == 0) {
        connection->socket_ = fd;
        break;
      }
      close(fd);
    }
    freeaddrinfo(found);
    if (connection->socket_ < 0)
      return absl::UnavailableError(
          str_cat("cannot connect to ssh ", target.host, ":", target.port));
    connection->session_.reset(libssh2_session_init());
    LIBSSH2_SESSION* session = connection->session_.get();
    libssh2_session_set_blocking(session, 1);
    libssh2_session_set_timeout(session, 20000);
    if (libssh2_session_handshake(session, connection->socket_) != 0)
      return absl::UnavailableError(
          str_cat("ssh handshake with ", target.host, ": ", session_error(session)));
    if (auto status = connection->check_host_key(target, known_hosts, accept_new); !status.ok())
      return status;
    return connection;
  }

  absl::Status password(const std::string& user, const std::string& password) {
    if (libssh2_userauth_password(session_.get(), user.c_str(), password.c_str()) != 0)
      return absl::UnauthenticatedError(str_cat("ssh password authentication of ", user,
                                                " refused: ", session_error(session_.get())));
    return absl::OkStatus();
  }

  absl::Status key(const std::string& user, const std::string& private_key) {
    if (libssh2_userauth_publickey_fromfile(session_.get(), user.c_str(), nullptr,
                                            private_key.c_str(), nullptr) != 0)
      return absl::UnauthenticatedError(str_cat("ssh key ", private_key, " for ", user,
                                                " refused: ", session_error(session_.get())));
    return absl::OkStatus();
  }

  void go_non_blocking() { libssh2_session_set_blocking(session_.get(), 0); }

  // Runs `command` on its own channel; hands stdout lines to `line` until it
  // returns false, EOF, `stop`, or `inactivity` without output.
  absl::Status stream(const std::string& command, const std::function<bool(std::string_view)>& line,
                      std::chrono::milliseconds inactivity, std::stop_token stop, std::string* all,
                      int* exit_code) {
    struct Closer {
      SshConnection* self;
      LIBSSH2_CHANNEL* channel;
      ~Closer() {
        if (channel == nullptr) return;
        (void)self->call([&] { return libssh2_channel_close(channel); });
        (void)self->call([&] { return libssh2_channel_free(channel); });
      }
    };
    // sshd may deny an exec request while it is still tearing down the
    // connection's earlier sessions (seen with several channels at once on a
    // loaded machine): nothing ran, so the request is tried again, with a
    // growing pause, before the partition is reported unreadable.
    constexpr int kExecAttempts = 5;
    LIBSSH2_CHANNEL* channel = nullptr;
    for (int attempt = 1;; ++attempt) {
      if (auto status = call([&] {
            channel = libssh2_channel_open_session(session_.get());
            return channel != nullptr ? 0 : libssh2_session_last_errno(session_.get());
          });
          !status.ok())
        return absl::UnavailableError(
            str_cat("ssh channel: ", status.message(),
                    " (sshd MaxSessions may be lower than max_parallel)"));
      auto exec = call([&] { return libssh2_channel_exec(channel, command.c_str()); });
      if (exec.ok()) break;
      Closer{this, channel};  // closes the refused channel now
      channel = nullptr;
      if (attempt == kExecAttempts || !sleep_for(std::chrono::milliseconds(100 * attempt), stop))
        return absl::UnavailableError(
            str_cat("ssh exec: ", exec.message(), " (", attempt, " attempts)"));
    }
    Closer closer{this, channel};
    std::string buffer, errors;
    char chunk[65536];
    auto last_output = Clock::now();
    for (;;) {
      if (stop.stop_requested()) return absl::CancelledError("stopped");
      ssize_t n = 0, e = 0;
      bool eof = false;
      {
        std::lock_guard lock(mutex_);
        n = libssh2_channel_read(channel, chunk, sizeof(chunk));
        if (n > 0) buffer.append(chunk, static_cast<size_t>(n));
        char err_chunk[4096];
        e = libssh2_channel_read_stderr(channel, err_chunk, sizeof(err_chunk));
        if (e > 0 && errors.size() < 4096) errors.append(err_chunk, static_cast<size_t>(e));
        eof = n <= 0 && e <= 0 && libssh2_channel_eof(channel);
      }
      if (n < 0 && n != LIBSSH2_ERROR_EAGAIN)
        return absl::UnavailableError(str_cat("ssh read: ", session_error(session_.get())));
      if (n > 0) {
        last_output = Clock::now();
        if (all != nullptr) {
          all->append(buffer);
          buffer.clear();
        } else {
          size_t start = 0;
          for (size_t newline; (newline = buffer.find('\n', start)) != std::string::npos;
               start = newline + 1) {
            if (!line(std::string_view(buffer).substr(start, newline - start)))
              return absl::OkStatus();
          }
          buffer.erase(0, start);
        }
        continue;
      }
      if (eof) break;
      if (Clock::now() - last_output >= inactivity)
        return absl::DeadlineExceededError(
            str_cat("no output for ", inactivity.count(), " ms (inactivity timeout)"));
      if (n == LIBSSH2_ERROR_EAGAIN || n == 0) wait_socket(50);
    }
    if (all == nullptr && !buffer.empty()) line(buffer);
    call([&] { return libssh2_channel_close(channel); });
    int code = libssh2_channel_get_exit_status(channel);
    if (exit_code != nullptr) *exit_code = code;
    if (code != 0)
      return absl::UnavailableError(str_cat("remote command exited with ", code, ": ", errors));
    return absl::OkStatus();
  }

  absl::StatusOr<std::string> run(const std::string& command) {
    std::string out;
    int code = 0;
    auto status = stream(command, {}, std::chrono::milliseconds(60000), {}, &out, &code);
    if (!status.ok()) return status;
    return out;
  }

 private:
  SshConnection() = default;

  absl::Status check_host_key(const Target& target, const std::filesystem::path& known_hosts,
                              bool accept_new) {
    LIBSSH2_SESSION* session = session_.get();
    size_t length = 0;
    int type = 0;
    const char* key = libssh2_session_hostkey(session, &length, &type);
    if (key == nullptr) return absl::UnavailableError("ssh server sent no host key");
    std::unique_ptr<LIBSSH2_KNOWNHOSTS, decltype(&libssh2_knownhost_free)> hosts(
        libssh2_knownhost_init(session), &libssh2_knownhost_free);
    libssh2_knownhost_readfile(hosts.get(), known_hosts.c_str(), LIBSSH2_KNOWNHOST_FILE_OPENSSH);
    int key_bits = 0;
    switch (type) {
      case LIBSSH2_HOSTKEY_TYPE_RSA:
        key_bits = LIBSSH2_KNOWNHOST_KEY_SSHRSA;
        break;
      case LIBSSH2_HOSTKEY_TYPE_ED25519:
        key_bits = LIBSSH2_KNOWNHOST_KEY_ED25519;
        break;
      case LIBSSH2_HOSTKEY_TYPE_ECDSA_256:
        key_bits = LIBSSH2_KNOWNHOST_KEY_ECDSA_256;
        break;
      case LIBSSH2_HOSTKEY_TYPE_ECDSA_384:
        key_bits = LIBSSH2_KNOWNHOST_KEY_ECDSA_384;
        break;
      case LIBSSH2_HOSTKEY_TYPE_ECDSA_521:
        key_bits = LIBSSH2_KNOWNHOST_KEY_ECDSA_521;
        break;
      default:
        key_bits = LIBSSH2_KNOWNHOST_KEY_UNKNOWN;
    }
    int mask = LIBSSH2_KNOWNHOST_TYPE_PLAIN | LIBSSH2_KNOWNHOST_KEYENC_RAW | key_bits;
    int result = libssh2_knownhost_checkp(hosts.get(), target.host.c_str(), target.port, key,
                                          length, mask, nullptr);
    if (result == LIBSSH2_KNOWNHOST_CHECK_MATCH) return absl::OkStatus();
    std::string where =
        target.port == 22 ? target.host : str_cat("[", target.host, "]:", target.port);
    if (result == LIBSSH2_KNOWNHOST_CHECK_MISMATCH)
      return absl::PermissionDeniedError(str_cat("host key of ", where, " does not match ",
                                                 known_hosts.string(),
                                                 ": refusing (possible man-in-the-middle)"));
    if (!accept_new)
      return absl::PermissionDeniedError(str_cat("unknown host key of ", where, " (not in ",
                                                 known_hosts.string(),
                                                 "); set ssh.accept_new for the first contact"));
    std::error_code error;
    std::filesystem::create_directories(known_hosts.parent_path(), error);
    libssh2_knownhost_addc(hosts.get(), where.c_str(), nullptr, key, length, "telekern-tracer", 15,
                           LIBSSH2_KNOWNHOST_TYPE_PLAIN | LIBSSH2_KNOWNHOST_KEYENC_RAW | key_bits,
                           nullptr);
    if (libssh2_knownhost_writefile(hosts.get(), known_hosts.c_str(),
                                    LIBSSH2_KNOWNHOST_FILE_OPENSSH) != 0)
      return absl::InternalError(str_cat("cannot write ", known_hosts.string()));
    return absl::OkStatus();
  }

  // Repeats `operation` (returning 0 or a libssh2 error) while it would block.
  template <typename Operation>
  absl::Status call(Operation operation) {
    auto deadline = Clock::now() + std::chrono::seconds(30);
    for (;;) {
      int result;
      {
        std::lock_guard lock(mutex_);
        result = operation();
      }
      if (result == 0) return absl::OkStatus();
      if (result != LIBSSH2_ERROR_EAGAIN)
        return absl::UnavailableError(session_error(session_.get()));
      if (Clock::now() > deadline) return absl::DeadlineExceededError("ssh operation timed out");
      wait_socket(50);
    }
  }

  void wait_socket(int timeout_ms) {
    pollfd fd{socket_, POLLIN, 0};
    {
      std::lock_guard lock(mutex_);
      int directions = libssh2_session_block_directions(session_.get());
      if (directions & LIBSSH2_SESSION_BLOCK_OUTBOUND) fd.events |= POLLOUT;
    }
    poll(&fd, 1, timeout_ms);
  }

  int socket_ = -1;
  SessionHandle session_;
  std::mutex mutex_;
};

class SshRunner final : public CommandRunner {
 public:
  SshRunner(std::string where, std::unique_ptr<SshConnection> connection)
      : where_(std::move(where)), connection_(std::move(connection)) {}
  std::string where() const override { return where_; }
  absl::StatusOr<std::string> run(const std::string& command) override {
    return connection_->run(command);
  }
  absl::Status stream(const std::string& command, const std::function<bool(std::string_view)>& line,
                      std::chrono::milliseconds inactivity, std::stop_token stop) override {
    return connection_->stream(command, line, inactivity, stop, nullptr, nullptr);
  }

 private:
  std::string where_;
  std::unique_ptr<SshConnection> connection_;
};

std::string local_host_name() {
  char name[256] = {};
  gethostname(name, sizeof(name) - 1);
  return name;
}

absl::StatusOr<std::string> read_text(const std::filesystem::path& file) {
  std::ifstream in(file);
  if (!in) return absl::NotFoundError(str_cat("cannot read ", file.string()));
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

absl::StatusOr<std::unique_ptr<CommandRunner>> make_ssh_runner(
    const v1::SshOptions& ssh, const TracerOptions& options, const std::filesystem::path& data_dir,
    uint32_t max_parallel) {
  (void)max_parallel;  // every channel shares the one connection
  auto target = parse_target(ssh.host());
  if (!target.ok()) return target.status();
  if (ssh.user().empty()) return absl::InvalidArgumentError("the ssh source needs ssh.user");
  std::filesystem::path key_dir =
      options.ssh_key_dir.empty() ? data_dir / "ssh" : std::filesystem::path(options.ssh_key_dir);
  std::filesystem::path known_hosts =
      !ssh.known_hosts().empty()         ? std::filesystem::path(ssh.known_hosts())
      : !options.ssh_known_hosts.empty() ? std::filesystem::path(options.ssh_known_hosts)
                                         : key_dir / "known_hosts";
  std::string password = ssh.password();
  if (password.empty()) {
    std::string env = ssh.password_env().empty() ? options.ssh_password_env : ssh.password_env();
    if (const char* value = std::getenv(env.c_str()); value != nullptr) password = value;
  }
  bool rsa = ssh.key_type() == v1::SSH_KEY_TYPE_RSA_4096;
  std::string safe_host;
  for (char c : str_cat(target->host, "_", target->port, "_", ssh.user()))
    safe_host += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
  std::filesystem::path managed_key =
      key_dir / str_cat("id_", rsa ? "rsa" : "ed25519", "_", safe_host);
  std::string comment = str_cat("telekern-tracer@", local_host_name());
  std::string where = str_cat(ssh.user(), "@", ssh.host());

  auto connect = [&]() { return SshConnection::connect(*target, known_hosts, ssh.accept_new()); };
  auto finish = [&](std::unique_ptr<SshConnection> connection) -> std::unique_ptr<CommandRunner> {
    connection->go_non_blocking();
    return std::make_unique<SshRunner>(where, std::move(connection));
  };

  // An explicit key first.
  if (!ssh.key_file().empty()) {
    auto connection = connect();
    if (!connection.ok()) return connection.status();
    if (auto status = (*connection)->key(ssh.user(), ssh.key_file()); !status.ok()) return status;
    return finish(std::move(*connection));
  }
  bool manage_keys = !ssh.no_key_setup();
  if (ssh.clean_keys()) {
    std::error_code error;
    std::filesystem::remove(managed_key, error);
    std::filesystem::remove(managed_key.string() + ".pub", error);
  }
  // A key installed by an earlier setup.
  if (manage_keys && !ssh.clean_keys() && std::filesystem::exists(managed_key)) {
    auto connection = connect();
    if (!connection.ok()) return connection.status();
    if ((*connection)->key(ssh.user(), managed_key.string()).ok())
      return finish(std::move(*connection));
  }
  if (password.empty())
    return absl::UnauthenticatedError(
        str_cat("no way to log in to ", where,
                ": give ssh.password, ssh.password_env, ssh.key_file, "
                "or set ",
                options.ssh_password_env));
  auto connection = connect();
  if (!connection.ok()) return connection.status();
  if (auto status = (*connection)->password(ssh.user(), password); !status.ok()) return status;
  if (ssh.clean_keys()) {
    // Remove this host's keys from the remote authorized_keys.
    auto cleaned = (*connection)
                       ->run(str_cat("f=~/.ssh/authorized_keys; [ -f $f ] && grep -v ",
                                     shell_quote(" " + comment), " $f > $f.tmp; ",
                                     "[ -f $f.tmp ] && mv $f.tmp $f; true"));
    (void)cleaned;
  }
  if (manage_keys && ssh.setup_keys()) {
    // Generate, install over the password session, then log in with the key;
    // any failure falls back to the password session.
    std::error_code error;
    std::filesystem::create_directories(key_dir, error);
    std::string keygen = str_cat("ssh-keygen -q -t ", rsa ? "rsa -b 4096" : "ed25519", " -N '' -C ",
                                 shell_quote(comment), " -f ", shell_quote(managed_key.string()),
                                 " </dev/null >/dev/null 2>&1");
    bool made = std::filesystem::exists(managed_key) || std::system(keygen.c_str()) == 0;
    auto public_key =
        made ? read_text(managed_key.string() + ".pub") : absl::NotFoundError("keygen failed");
    if (public_key.ok()) {
      std::string line(*public_key);
      while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
      auto installed =
          (*connection)
              ->run(str_cat(
                  "umask 077; mkdir -p ~/.ssh && touch ~/.ssh/authorized_keys && (grep -qxF ",
                  shell_quote(line), " ~/.ssh/authorized_keys || echo ", shell_quote(line),
                  " >> ~/.ssh/authorized_keys)"));
      if (installed.ok()) {
        auto keyed = connect();
        if (keyed.ok() && (*keyed)->key(ssh.user(), managed_key.string()).ok())
          return finish(std::move(*keyed));
      }
    }
  }
  return finish(std::move(*connection));
}

}  // namespace telekern::tracer
