#include "kernel/http/guarded_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "telekern/strings.h"

namespace telekern::kernel::http {
namespace {

using Clock = std::chrono::steady_clock;

// Runs each task on the caller's thread: httplib's accept loop hands a socket
// over and our process_and_close_socket returns at once, so no pool is needed
// (and none can fill up).
class InlineTaskQueue final : public httplib::TaskQueue {
 public:
  void enqueue(std::function<void()> fn) override { fn(); }
  void shutdown() override {}
};

size_t default_max_total() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur == RLIM_INFINITY) return 4096;
  return std::max<size_t>(64, static_cast<size_t>(limit.rlim_cur) / 2);
}

std::string peer_address(int fd, int* port) {
  sockaddr_storage address{};
  socklen_t length = sizeof(address);
  *port = 0;
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) return "";
  char text[INET6_ADDRSTRLEN] = {};
  if (address.ss_family == AF_INET) {
    const auto* v4 = reinterpret_cast<const sockaddr_in*>(&address);
    inet_ntop(AF_INET, &v4->sin_addr, text, sizeof(text));
    *port = ntohs(v4->sin_port);
  } else if (address.ss_family == AF_INET6) {
    const auto* v6 = reinterpret_cast<const sockaddr_in6*>(&address);
    inet_ntop(AF_INET6, &v6->sin6_addr, text, sizeof(text));
    *port = ntohs(v6->sin6_port);
  }
  return text;
}

int poll_one(int fd, short events, std::chrono::milliseconds timeout) {
  pollfd entry{fd, events, 0};
  int ready;
  do {
    ready = ::poll(&entry, 1, static_cast<int>(timeout.count()));
  } while (ready < 0 && errno == EINTR);
  return ready;
}

// Where the request that starts at `buffer` ends, once its headers and (when
// it declares one up to `max_body` bytes) its body are there; npos until then.
size_t complete_request_end(const std::string& buffer, size_t max_body) {
  size_t headers_end = buffer.find("\r\n\r\n");
  size_t separator = 4;
  if (headers_end == std::string::npos) {
    headers_end = buffer.find("\n\n");
    separator = 2;
  }
  if (headers_end == std::string::npos) return std::string::npos;
  size_t end = headers_end + separator;
  std::string headers = to_lower(std::string_view(buffer).substr(0, headers_end));
  size_t at = headers.find("\ncontent-length:");
  if (at == std::string::npos) return end;
  constexpr std::string_view kField = "\ncontent-length:";
  size_t line_end = headers.find('\n', at + 1);
  std::string_view value = std::string_view(headers).substr(
      at + kField.size(),
      line_end == std::string::npos ? std::string::npos : line_end - at - kField.size());
  auto length = parse_int(trim(value));
  // No or a large body: the worker reads it (bounded by the read timeout).
  if (!length || *length <= 0 || static_cast<size_t>(*length) > max_body) return end;
  size_t body_end = end + static_cast<size_t>(*length);
  return buffer.size() >= body_end ? body_end : std::string::npos;
}

}  // namespace

struct GuardedServer::Connection {
  int fd = -1;
  std::string address;
  int port = 0;
  std::string local_address;  // filled on first use
  int local_port = 0;
  std::string buffer;  // received, not yet consumed by a request
  Clock::time_point deadline;
  bool idle = false;  // waiting for the first byte of a keep-alive request
  size_t requests = 0;
};

// Serves httplib's reads from the bytes the gate buffered, then from the
// socket (bounded by the read timeout); writes wait for the socket with the
// write timeout. The headers of a response with a body are held back and go
// out with the body's first bytes: one segment and one wake-up for the client
// instead of two.
class GuardedServer::BufferedStream final : public httplib::Stream {
 public:
  BufferedStream(Connection& connection, std::chrono::milliseconds read_timeout,
                 std::chrono::milliseconds write_timeout)
      : connection_(connection), read_timeout_(read_timeout), write_timeout_(write_timeout) {}
  ~BufferedStream() override {
    if (!held_.empty()) (void)send_all(held_);
    connection_.buffer.erase(0, position_);
  }

  bool is_readable() const override {
    return position_ < connection_.buffer.size() ||
           poll_one(connection_.fd, POLLIN, read_timeout_) > 0;
  }
  bool is_writable() const override {
    // A client that hung up ends a long response (an SSE stream) at once,
    // so its call is cancelled instead of running until a write fails.
    pollfd peer{connection_.fd, POLLRDHUP, 0};
    if (::poll(&peer, 1, 0) > 0 && (peer.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0) {
      return false;
    }
    return poll_one(connection_.fd, POLLOUT, write_timeout_) > 0;
  }
  ssize_t read(char* ptr, size_t size) override {
    if (position_ < connection_.buffer.size()) {
      size_t count = std::min(size, connection_.buffer.size() - position_);
      std::memcpy(ptr, connection_.buffer.data() + position_, count);
      position_ += count;
      return static_cast<ssize_t>(count);
    }
    if (poll_one(connection_.fd, POLLIN, read_timeout_) <= 0) return -1;
    ssize_t received;
    do {
      received = ::recv(connection_.fd, ptr, size, 0);
    } while (received < 0 && errno == EINTR);
    return received;
  }
  ssize_t write(const char* ptr, size_t size) override {
    std::string_view data(ptr, size);
    if (writes_++ == 0 && holds_body_headers(data)) {
      held_.assign(data);
      return static_cast<ssize_t>(size);
    }
    if (!held_.empty()) {
      // Small bodies join the headers; a large one follows them.
      size_t joined = std::min<size_t>(size, 64 * 1024);
      held_.append(data.substr(0, joined));
      bool sent = send_all(held_);
      held_.clear();
      return sent ? static_cast<ssize_t>(joined) : -1;
    }
    return send_some(data);
  }
  void get_remote_ip_and_port(std::string& ip, int& port) const override {
    ip = connection_.address;
    port = connection_.port;
  }
  void get_local_ip_and_port(std::string& ip, int& port) const override {
    // Asked for every request; the answer does not change on a connection.
    if (connection_.local_port == 0) {
      sockaddr_storage address{};
      socklen_t length = sizeof(address);
      if (getsockname(connection_.fd, reinterpret_cast<sockaddr*>(&address), &length) == 0) {
        char text[INET6_ADDRSTRLEN] = {};
        if (address.ss_family == AF_INET) {
          const auto* v4 = reinterpret_cast<const sockaddr_in*>(&address);
          inet_ntop(AF_INET, &v4->sin_addr, text, sizeof(text));
          connection_.local_port = ntohs(v4->sin_port);
        } else if (address.ss_family == AF_INET6) {
          const auto* v6 = reinterpret_cast<const sockaddr_in6*>(&address);
          inet_ntop(AF_INET6, &v6->sin6_addr, text, sizeof(text));
          connection_.local_port = ntohs(v6->sin6_port);
        }
        connection_.local_address = text;
      }
    }
    ip = connection_.local_address;
    port = connection_.local_port;
  }
  socket_t socket() const override { return connection_.fd; }

 private:
  // The status line and headers of a response whose body follows at once
  // (a non-zero Content-Length; chunked and streamed answers go out as written).
  static bool holds_body_headers(std::string_view data) {
    if (!data.starts_with("HTTP/1.") || !data.ends_with("\r\n\r\n")) return false;
    size_t at = data.find("\r\nContent-Length: ");
    return at != std::string_view::npos && data.substr(at + 18, 3) != "0\r\n";
  }
  // Sends at once when the socket has room (almost always: the socket is
  // non-blocking), waiting for room only when it has none.
  ssize_t send_some(std::string_view data) {
    bool waited = false;
    while (true) {
      ssize_t sent = ::send(connection_.fd, data.data(), data.size(), MSG_NOSIGNAL);
      if (sent >= 0) return sent;
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) return -1;
      if (waited) return 0;
      if (poll_one(connection_.fd, POLLOUT, write_timeout_) <= 0) return -1;
      waited = true;
    }
  }
  bool send_all(std::string_view data) {
    while (!data.empty()) {
      ssize_t sent = send_some(data);
      if (sent < 0) return false;
      data.remove_prefix(static_cast<size_t>(sent));
    }
    return true;
  }

  Connection& connection_;
  size_t position_ = 0;
  std::chrono::milliseconds read_timeout_;
  std::chrono::milliseconds write_timeout_;
  size_t writes_ = 0;
  std::string held_;  // response headers waiting for the body's first bytes
};

GuardedServer::GuardedServer(ConnectionLimits limits, MetricsRegistry& metrics)
    : limits_(limits),
      open_(metrics
                .gauge("telekern_http_connections_open",
                       "HTTP connections open (waiting for a request or being served)")
                .with()),
      rejected_(metrics.counter(
          "telekern_http_connections_closed_total",
          "HTTP connections refused or closed by the endpoint's limits, by reason", {"reason"})) {
  if (limits_.max_total == 0) limits_.max_total = default_max_total();
  // Register every reason so the series exist from the start.
  for (const char* reason :
       {"per_address_limit", "total_limit", "header_timeout", "header_too_large", "idle_timeout"}) {
    rejected_.with({reason});
  }
  new_task_queue = [] { return new InlineTaskQueue(); };
  epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  epoll_event event{};
  event.events = EPOLLIN;
  event.data.fd = wake_fd_;
  epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &event);
  // Named, so per-thread tools (top -H, perf, the gateway bench) tell them apart.
  gate_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "http-gate");
    gate_loop();
  });
  for (size_t i = 0; i < limits_.workers; ++i) {
    workers_.emplace_back([this] {
      pthread_setname_np(pthread_self(), "http-worker");
      worker_loop();
    });
  }
}

GuardedServer::~GuardedServer() {
  stop();
  shutdown_connections();
}

void GuardedServer::shutdown_connections() {
  std::call_once(shutdown_once_, [this] {
    {
      std::lock_guard lock(work_mutex_);
      stopping_ = true;
    }
    work_ready_.notify_all();
    wake_gate();
    if (gate_.joinable()) gate_.join();
    for (auto& worker : workers_) worker.join();
    for (auto& [fd, connection] : waiting_) ::close(connection->fd);
    waiting_.clear();
    for (auto& connection : incoming_) ::close(connection->fd);
    incoming_.clear();
    for (auto& connection : work_) ::close(connection->fd);
    work_.clear();
    ::close(epoll_fd_);
    ::close(wake_fd_);
  });
}

void GuardedServer::widen_backlog(int backlog) {
  socket_t listening = svr_sock_;
  // Listening again on a listening socket only changes its backlog.
  if (listening != INVALID_SOCKET) ::listen(listening, backlog);
}

void GuardedServer::wake_gate() {
  uint64_t one = 1;
  (void)!::write(wake_fd_, &one, sizeof(one));
}

void GuardedServer::reject(int fd, const char* status_line, const std::string& message) {
  std::string response = str_cat("HTTP/1.1 ", status_line, "\r\nContent-Type: text/plain\r\n",
                                 "Content-Length: ", message.size() + 1,
                                 "\r\nConnection: close\r\n\r\n", message, "\n");
  // Best effort and never blocking: the client may not read at all.
  (void)!::send(fd, response.data(), response.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
  ::shutdown(fd, SHUT_RDWR);
  ::close(fd);
}

bool GuardedServer::process_and_close_socket(socket_t sock) {
  auto connection = std::make_unique<Connection>();
  connection->fd = sock;
  connection->address = peer_address(sock, &connection->port);
  const char* refusal = nullptr;
  {
    std::lock_guard lock(count_mutex_);
    if (total_ >= limits_.max_total) {
      refusal = "total_limit";
    } else if (per_address_[connection->address] >= limits_.max_per_address) {
      refusal = "per_address_limit";
    } else {
      ++per_address_[connection->address];
      ++total_;
    }
    if (refusal != nullptr && per_address_[connection->address] == 0) {
      per_address_.erase(connection->address);
    }
  }
  if (refusal != nullptr) {
    rejected_.with({refusal}).inc();
    reject(sock, "503 Service Unavailable",
           std::string(refusal) == "total_limit"
               ? str_cat("telekernd: ", limits_.max_total,
                         " HTTP connections are open; retry when some have closed")
               : str_cat("telekernd: ", connection->address, " already holds ",
                         limits_.max_per_address,
                         " HTTP connections; close some (reuse one with keep-alive) and retry"));
    return false;
  }
  open_.inc();
  int flags = fcntl(sock, F_GETFL, 0);
  fcntl(sock, F_SETFL, flags | O_NONBLOCK);
  connection->deadline = Clock::now() + limits_.header_timeout;
  to_gate(std::move(connection));
  return true;
}

void GuardedServer::to_gate(ConnectionPtr connection) {
  {
    std::lock_guard lock(incoming_mutex_);
    incoming_.push_back(std::move(connection));
  }
  wake_gate();
}

void GuardedServer::to_worker(ConnectionPtr connection) {
  {
    std::lock_guard lock(work_mutex_);
    work_.push_back(std::move(connection));
    queued_.fetch_add(1, std::memory_order_relaxed);
  }
  work_ready_.notify_one();
}

void GuardedServer::close_connection(ConnectionPtr connection) {
  ::close(connection->fd);
  open_.dec();
  std::lock_guard lock(count_mutex_);
  --total_;
  if (auto it = per_address_.find(connection->address); it != per_address_.end()) {
    if (--it->second == 0) per_address_.erase(it);
  }
}

void GuardedServer::gate_loop() {
  constexpr int kMaxEvents = 256;
  epoll_event events[kMaxEvents];
  auto next_scan = Clock::now();
  char chunk[16 * 1024];
  while (true) {
    {
      std::lock_guard lock(work_mutex_);
      if (stopping_) return;
    }
    int count = epoll_wait(epoll_fd_, events, kMaxEvents, 100);
    std::vector<ConnectionPtr> arrived;
    {
      std::lock_guard lock(incoming_mutex_);
      arrived.swap(incoming_);
    }
    for (auto& connection : arrived) {
      // Pipelined bytes may already hold the next request.
      if (complete_request_end(connection->buffer, limits_.max_buffered_body) !=
          std::string::npos) {
        to_worker(std::move(connection));
        continue;
      }
      epoll_event event{};
      event.events = EPOLLIN | EPOLLRDHUP;
      event.data.fd = connection->fd;
      if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, connection->fd, &event) != 0) {
        close_connection(std::move(connection));
        continue;
      }
      int fd = connection->fd;
      waiting_[fd] = std::move(connection);
    }
    for (int i = 0; i < count; ++i) {
      int fd = events[i].data.fd;
      if (fd == wake_fd_) {
        uint64_t drained;
        (void)!::read(wake_fd_, &drained, sizeof(drained));
        continue;
      }
      auto it = waiting_.find(fd);
      if (it == waiting_.end()) continue;
      Connection& connection = *it->second;
      bool closed = false;
      while (true) {
        ssize_t received = ::recv(fd, chunk, sizeof(chunk), 0);
        if (received > 0) {
          if (connection.idle) {
            connection.idle = false;
            connection.deadline = Clock::now() + limits_.header_timeout;
          }
          connection.buffer.append(chunk, static_cast<size_t>(received));
          if (connection.buffer.size() > limits_.max_header_bytes + limits_.max_buffered_body)
            break;
          continue;
        }
        if (received < 0 && errno == EINTR) continue;
        if (received < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
        closed = true;  // orderly close or error
        break;
      }
      size_t end = complete_request_end(connection.buffer, limits_.max_buffered_body);
      bool ready = end != std::string::npos;
      bool too_large = !ready && connection.buffer.find("\r\n\r\n") == std::string::npos &&
                       connection.buffer.size() > limits_.max_header_bytes;
      if (!ready && !closed && !too_large) continue;
      epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
      ConnectionPtr owned = std::move(it->second);
      waiting_.erase(it);
      if (ready) {
        // A request whose client half-closed after sending still gets its answer.
        to_worker(std::move(owned));
      } else if (too_large) {
        rejected_.with({"header_too_large"}).inc();
        reject(owned->fd, "431 Request Header Fields Too Large",
               str_cat("telekernd: request headers exceed ", limits_.max_header_bytes, " bytes"));
        owned->fd = -1;
        close_connection(std::move(owned));
      } else {
        close_connection(std::move(owned));
      }
    }
    auto now = Clock::now();
    if (now < next_scan) continue;
    next_scan = now + std::chrono::milliseconds(100);
    for (auto it = waiting_.begin(); it != waiting_.end();) {
      if (it->second->deadline > now) {
        ++it;
        continue;
      }
      ConnectionPtr owned = std::move(it->second);
      it = waiting_.erase(it);
      epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, owned->fd, nullptr);
      if (owned->idle) {
        rejected_.with({"idle_timeout"}).inc();
        close_connection(std::move(owned));
        continue;
      }
      rejected_.with({"header_timeout"}).inc();
      reject(owned->fd, "408 Request Timeout",
             str_cat("telekernd: the request did not arrive within ",
                     limits_.header_timeout.count(), " ms"));
      owned->fd = -1;
      close_connection(std::move(owned));
    }
  }
}

void GuardedServer::worker_loop() {
  auto read_timeout =
      std::chrono::milliseconds(read_timeout_sec_ * 1000 + read_timeout_usec_ / 1000);
  auto write_timeout =
      std::chrono::milliseconds(write_timeout_sec_ * 1000 + write_timeout_usec_ / 1000);
  while (true) {
    ConnectionPtr connection;
    {
      std::unique_lock lock(work_mutex_);
      work_ready_.wait(lock, [&] { return stopping_ || !work_.empty(); });
      if (stopping_) return;
      connection = std::move(work_.front());
      work_.pop_front();
      queued_.fetch_sub(1, std::memory_order_relaxed);
    }
    serve(std::move(connection), read_timeout, write_timeout);
  }
}

void GuardedServer::serve(ConnectionPtr connection, std::chrono::milliseconds read_timeout,
                          std::chrono::milliseconds write_timeout) {
  while (true) {
    bool last = ++connection->requests >= limits_.max_requests_per_connection;
    bool connection_closed = false;
    bool ok;
    {
      BufferedStream stream(*connection, read_timeout, write_timeout);
      ok = process_request(stream, last, connection_closed, nullptr);
    }
    if (!ok || last || connection_closed || !is_running()) {
      close_connection(std::move(connection));
      return;
    }
    Next next = await_next_request(*connection);
    if (next == Next::kComplete) continue;
    if (next == Next::kClosed) {
      close_connection(std::move(connection));
      return;
    }
    connection->idle = connection->buffer.empty();
    connection->deadline =
        Clock::now() + (connection->idle ? limits_.idle_timeout : limits_.header_timeout);
    to_gate(std::move(connection));
    return;
  }
}

GuardedServer::Next GuardedServer::await_next_request(Connection& connection) {
  const size_t max_buffer = limits_.max_header_bytes + limits_.max_buffered_body;
  auto complete = [&] {
    return complete_request_end(connection.buffer, limits_.max_buffered_body) != std::string::npos;
  };
  // Takes what the socket holds now; false once the peer closed (or failed).
  auto receive = [&] {
    char chunk[16 * 1024];
    while (connection.buffer.size() <= max_buffer) {
      ssize_t received = ::recv(connection.fd, chunk, sizeof(chunk), MSG_DONTWAIT);
      if (received > 0) {
        connection.buffer.append(chunk, static_cast<size_t>(received));
        continue;
      }
      if (received < 0 && errno == EINTR) continue;
      return received < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
    }
    return true;
  };
  // Pipelined: the next request came with the last one.
  if (complete()) return Next::kComplete;
  if (limits_.keep_alive_linger.count() <= 0) return Next::kWait;
  // Only spare workers wait: never while connections queue for a worker, and
  // at most half of them at once, so the others always take new requests.
  size_t most = std::max<size_t>(1, limits_.workers / 2);
  if (queued_.load(std::memory_order_relaxed) > 0) return Next::kWait;
  if (lingering_.fetch_add(1, std::memory_order_relaxed) >= most) {
    lingering_.fetch_sub(1, std::memory_order_relaxed);
    return Next::kWait;
  }
  Next next = Next::kWait;
  bool open = true;
  auto until = Clock::now() + limits_.keep_alive_linger;
  while (true) {
    auto left = std::chrono::duration_cast<std::chrono::microseconds>(until - Clock::now());
    if (left.count() <= 0) break;
    pollfd entry{connection.fd, POLLIN, 0};
    timespec timeout{static_cast<time_t>(left.count() / 1'000'000),
                     static_cast<long>(left.count() % 1'000'000) * 1000};
    int ready = ::ppoll(&entry, 1, &timeout, nullptr);
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) break;
    open = receive();
    if (complete()) {
      // A request whose client half-closed after sending still gets its answer.
      next = Next::kComplete;
      break;
    }
    if (!open) {
      next = Next::kClosed;
      break;
    }
    // Part of a request: the gate waits for the rest (with its header timeout).
    if (!connection.buffer.empty()) break;
  }
  lingering_.fetch_sub(1, std::memory_order_relaxed);
  return next;
}

}  // namespace telekern::kernel::http
