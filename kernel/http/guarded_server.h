// An httplib::Server that slow clients cannot take down (slowloris): a
// connection reaches a worker thread only once its request headers (and a
// small body) have fully arrived. Until then one epoll thread holds it, with a
// deadline; idle keep-alive connections wait there too. Each client address
// may hold a bounded number of connections, the whole server a bounded number.
#pragma once

#include <httplib.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "telekern/metrics.h"

namespace telekern::kernel::http {

struct ConnectionLimits {
  // From accepting a connection (or the first byte of a keep-alive request) to
  // the end of its headers and buffered body.
  std::chrono::milliseconds header_timeout{10'000};
  // How long a keep-alive connection may wait for its next request.
  std::chrono::milliseconds idle_timeout{5'000};
  size_t max_per_address = 128;
  size_t max_total = 0;  // 0: half the process's open-file limit
  size_t max_header_bytes = 64 * 1024;
  // Bodies up to this size arrive before a worker sees the request.
  size_t max_buffered_body = 1 << 20;
  size_t workers = 16;
  size_t max_requests_per_connection = 100;
  // After an answer, how long a worker waits for the connection's next
  // request (complete) before it hands the connection back to the gate. It
  // saves the gate's two thread hops per keep-alive request; only up to half
  // the workers wait at once, and none while other connections wait for one.
  std::chrono::microseconds keep_alive_linger{1'000};
};

class GuardedServer final : public httplib::Server {
 public:
  GuardedServer(ConnectionLimits limits, MetricsRegistry& metrics);
  ~GuardedServer() override;

  // Lets the kernel queue this many connections before accept (cpp-httplib
  // listens with a backlog of 5, so a burst of connections, slow ones
  // included, made new clients wait for SYN retransmits). Call after binding.
  void widen_backlog(int backlog = SOMAXCONN);

  // Closes every connection and joins the threads; call after stop() (the
  // listener has ended). Safe to call twice.
  void shutdown_connections();
  size_t max_total() const { return limits_.max_total; }

 private:
  struct Connection;
  using ConnectionPtr = std::unique_ptr<Connection>;
  class BufferedStream;

  // httplib calls this for each accepted socket, from its accept loop (our
  // task queue runs it inline); it only admits the socket to the gate.
  bool process_and_close_socket(socket_t sock) override;

  void gate_loop();
  void worker_loop();
  // Serves `connection`'s requests while the next one is complete in time
  // (see keep_alive_linger), then hands it back to the gate or closes it.
  void serve(ConnectionPtr connection, std::chrono::milliseconds read_timeout,
             std::chrono::milliseconds write_timeout);
  enum class Next { kComplete, kWait, kClosed };
  Next await_next_request(Connection& connection);
  // Registers with the gate, or hands to a worker when a request is complete.
  void to_gate(ConnectionPtr connection);
  void to_worker(ConnectionPtr connection);
  void close_connection(ConnectionPtr connection);
  void reject(int fd, const char* status_line, const std::string& message);
  void wake_gate();

  ConnectionLimits limits_;
  Gauge& open_;
  CounterFamily& rejected_;

  std::mutex count_mutex_;
  std::unordered_map<std::string, size_t> per_address_;
  size_t total_ = 0;

  int epoll_fd_ = -1;
  int wake_fd_ = -1;
  std::mutex incoming_mutex_;
  std::vector<ConnectionPtr> incoming_;
  std::map<int, ConnectionPtr> waiting_;  // owned by the gate thread

  std::mutex work_mutex_;
  std::condition_variable work_ready_;
  std::deque<ConnectionPtr> work_;
  std::atomic<size_t> queued_{0};     // work_.size(), read without the lock
  std::atomic<size_t> lingering_{0};  // workers waiting in await_next_request
  bool stopping_ = false;

  std::thread gate_;
  std::vector<std::thread> workers_;
  std::once_flag shutdown_once_;
};

}  // namespace telekern::kernel::http
