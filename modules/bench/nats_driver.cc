// The NATS driver: a small client of the NATS text protocol (Debian ships
// nats-server but no C client). With jetStream (default) each topic is a
// JetStream stream with file storage and every publish waits for its
// JetStream ack; without it, publishes are confirmed by a PING/PONG round
// trip. Consumers are queue subscriptions (one queue group per subscription).
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <deque>

#include "driver.h"
#include "telekern/strings.h"

namespace telekern::bench {
namespace {

using Clock = std::chrono::steady_clock;

// One NATS connection: writes commands, reads and parses server operations.
class NatsConnection {
 public:
  struct Delivery {
    std::string subject;
    std::string reply;
    std::string payload;
  };

  ~NatsConnection() {
    if (fd_ >= 0) ::close(fd_);
  }

  absl::Status connect(const std::string& url) {
    std::string_view rest = url;
    if (rest.starts_with("nats://")) rest.remove_prefix(7);
    auto colon = rest.rfind(':');
    std::string host(colon == std::string_view::npos ? rest : rest.substr(0, colon));
    std::string port(colon == std::string_view::npos ? "4222" : rest.substr(colon + 1));
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* found = nullptr;
    if (getaddrinfo(host.c_str(), port.c_str(), &hints, &found) != 0 || !found)
      return absl::UnavailableError(str_cat("nats: cannot resolve '", host, "'"));
    for (addrinfo* a = found; a; a = a->ai_next) {
      int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
      if (fd < 0) continue;
      if (::connect(fd, a->ai_addr, a->ai_addrlen) == 0) {
        fd_ = fd;
        break;
      }
      ::close(fd);
    }
    freeaddrinfo(found);
    if (fd_ < 0)
      return absl::UnavailableError(str_cat("nats server ", host, ":", port,
                                            " unreachable; start nats-server or fix "
                                            "natsHostUrl"));
    int one = 1;
    setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    std::string line;
    if (auto s = read_line(line, std::chrono::seconds(5)); !s.ok()) return s;
    if (!line.starts_with("INFO"))
      return absl::UnavailableError(str_cat("nats: expected INFO, got '", line, "'"));
    if (auto s =
            write("CONNECT {\"verbose\":false,\"pedantic\":false,\"headers\":false,"
                  "\"name\":\"telekern-bench\",\"lang\":\"c++\",\"version\":\"1.0\",\"protocol\":1}"
                  "\r\nPING\r\n");
        !s.ok())
      return s;
    return wait_pong(std::chrono::seconds(5));
  }

  absl::Status write(std::string_view data) {
    while (!data.empty()) {
      ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EINTR) continue;
        return absl::UnavailableError(str_cat("nats write: ", strerror(errno)));
      }
      data.remove_prefix(static_cast<size_t>(n));
    }
    return absl::OkStatus();
  }

  static void append_pub(std::string& out, const std::string& subject, const std::string& reply,
                         std::string_view payload) {
    str_append(out, "PUB ", subject, " ", reply, reply.empty() ? "" : " ", payload.size(), "\r\n");
    out.append(payload);
    out.append("\r\n");
  }

  // Reads operations until a PONG (answering server PINGs, queueing MSGs).
  absl::Status wait_pong(std::chrono::milliseconds timeout) {
    auto deadline = Clock::now() + timeout;
    while (true) {
      std::optional<Delivery> delivery;
      bool pong = false;
      if (auto s = next(delivery, pong, deadline); !s.ok()) return s;
      if (delivery) deliveries_.push_back(std::move(*delivery));
      if (pong) return absl::OkStatus();
    }
  }

  // The next MSG (queued first), or nullopt when `deadline` passed.
  absl::StatusOr<std::optional<Delivery>> next_delivery(Clock::time_point deadline) {
    if (!deliveries_.empty()) {
      Delivery d = std::move(deliveries_.front());
      deliveries_.pop_front();
      return std::optional<Delivery>(std::move(d));
    }
    std::optional<Delivery> delivery;
    bool pong = false;
    while (!delivery) {
      auto s = next(delivery, pong, deadline);
      if (absl::IsDeadlineExceeded(s)) return std::optional<Delivery>();
      if (!s.ok()) return s;
    }
    return delivery;
  }

  bool has_buffered() const { return !deliveries_.empty() || buffer_.size() > consumed_; }

 private:
  absl::Status fill(Clock::time_point deadline) {
    if (consumed_ > 0 && consumed_ == buffer_.size()) {
      buffer_.clear();
      consumed_ = 0;
    } else if (consumed_ > (1 << 20)) {
      buffer_.erase(0, consumed_);
      consumed_ = 0;
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() < 0) return absl::DeadlineExceededError("nats: timed out");
    pollfd p{fd_, POLLIN, 0};
    int ready = ::poll(&p, 1, static_cast<int>(left.count()));
    if (ready == 0) return absl::DeadlineExceededError("nats: timed out waiting for the server");
    if (ready < 0) return absl::UnavailableError(str_cat("nats poll: ", strerror(errno)));
    char chunk[65536];
    ssize_t n = ::recv(fd_, chunk, sizeof(chunk), 0);
    if (n <= 0) return absl::UnavailableError("nats server closed the connection");
    buffer_.append(chunk, static_cast<size_t>(n));
    return absl::OkStatus();
  }

  absl::Status read_line(std::string& line, std::chrono::milliseconds timeout) {
    auto deadline = Clock::now() + timeout;
    return read_line_until(line, deadline);
  }

  absl::Status read_line_until(std::string& line, Clock::time_point deadline) {
    while (true) {
      auto end = buffer_.find("\r\n", consumed_);
      if (end != std::string::npos) {
        line = buffer_.substr(consumed_, end - consumed_);
        consumed_ = end + 2;
        return absl::OkStatus();
      }
      if (auto s = fill(deadline); !s.ok()) return s;
    }
  }

  // One server operation: MSG fills `delivery`, PONG sets `pong`, PING is
  // answered, +OK/INFO skipped, -ERR is an error.
  absl::Status next(std::optional<Delivery>& delivery, bool& pong, Clock::time_point deadline) {
    std::string line;
    if (auto s = read_line_until(line, deadline); !s.ok()) return s;
    if (line.starts_with("MSG ")) {
      auto parts = split(line, ' ');
      if (parts.size() < 4) return absl::InternalError(str_cat("nats: bad MSG '", line, "'"));
      auto size = parse_int(parts.back());
      if (!size) return absl::InternalError(str_cat("nats: bad MSG size '", line, "'"));
      while (buffer_.size() - consumed_ < static_cast<size_t>(*size) + 2) {
        if (auto s = fill(deadline + std::chrono::seconds(5)); !s.ok()) return s;
      }
      Delivery d;
      d.subject = parts[1];
      if (parts.size() == 5) d.reply = parts[3];
      d.payload = buffer_.substr(consumed_, static_cast<size_t>(*size));
      consumed_ += static_cast<size_t>(*size) + 2;
      delivery = std::move(d);
    } else if (line == "PONG") {
      pong = true;
    } else if (line == "PING") {
      return write("PONG\r\n");
    } else if (line.starts_with("-ERR")) {
      return absl::InternalError(str_cat("nats server: ", line));
    }
    return absl::OkStatus();
  }

  int fd_ = -1;
  std::string buffer_;
  size_t consumed_ = 0;
  std::deque<Delivery> deliveries_;
};

std::atomic<uint64_t> inbox_counter{0};

// Subscribes to a reply inbox and sends a JetStream API request; returns the reply.
absl::StatusOr<std::string> jetstream_request(NatsConnection& nats, const std::string& subject,
                                              const std::string& body) {
  std::string inbox = str_cat("_INBOX.bench.", inbox_counter.fetch_add(1));
  std::string out = str_cat("SUB ", inbox, " 1\r\n");
  NatsConnection::append_pub(out, subject, inbox, body);
  if (auto s = nats.write(out); !s.ok()) return s;
  auto deadline = Clock::now() + std::chrono::seconds(10);
  while (true) {
    auto delivery = nats.next_delivery(deadline);
    if (!delivery.ok()) return delivery.status();
    if (!*delivery) return absl::DeadlineExceededError(str_cat("nats: no reply to ", subject));
    if ((*delivery)->subject == inbox) {
      (void)nats.write("UNSUB 1\r\n");
      return (*delivery)->payload;
    }
  }
}

class NatsProducer final : public DriverProducer {
 public:
  NatsProducer(std::unique_ptr<NatsConnection> nats, std::string topic, bool jetstream)
      : nats_(std::move(nats)), topic_(std::move(topic)), jetstream_(jetstream) {
    inbox_ = str_cat("_INBOX.bench.ack.", inbox_counter.fetch_add(1));
  }

  absl::Status init() {
    if (!jetstream_) return absl::OkStatus();
    return nats_->write(str_cat("SUB ", inbox_, ".* 1\r\n"));
  }

  absl::Status send_batch(const std::vector<Message>& batch) override {
    std::string out;
    for (const auto& message : batch) {
      NatsConnection::append_pub(out, topic_,
                                 jetstream_ ? str_cat(inbox_, ".", sequence_++) : std::string(),
                                 message.payload);
    }
    if (!jetstream_) out += "PING\r\n";
    if (auto s = nats_->write(out); !s.ok()) return s;
    if (!jetstream_) return nats_->wait_pong(std::chrono::seconds(30));
    auto deadline = Clock::now() + std::chrono::seconds(30);
    absl::Status first;
    for (size_t acked = 0; acked < batch.size();) {
      auto delivery = nats_->next_delivery(deadline);
      if (!delivery.ok()) return delivery.status();
      if (!*delivery)
        return absl::DeadlineExceededError(
            str_cat("nats: ", batch.size() - acked, " JetStream acks missing after 30s"));
      if (!(*delivery)->subject.starts_with(inbox_)) continue;
      ++acked;
      if (first.ok() && (*delivery)->payload.find("\"error\"") != std::string::npos)
        first = absl::InternalError(str_cat("nats JetStream publish: ", (*delivery)->payload));
    }
    return first;
  }

 private:
  std::unique_ptr<NatsConnection> nats_;
  std::string topic_;
  bool jetstream_;
  std::string inbox_;
  uint64_t sequence_ = 0;
};

class NatsConsumer final : public DriverConsumer {
 public:
  explicit NatsConsumer(std::unique_ptr<NatsConnection> nats) : nats_(std::move(nats)) {}

  absl::Status poll(std::vector<std::string>& out, size_t max,
                    std::chrono::milliseconds timeout) override {
    auto deadline = Clock::now() + timeout;
    while (out.size() < max) {
      auto delivery = nats_->next_delivery(deadline);
      if (!delivery.ok()) return delivery.status();
      if (!*delivery) break;
      out.push_back(std::move((*delivery)->payload));
      // After the first message, take only what already arrived.
      if (!nats_->has_buffered()) break;
      deadline = Clock::now();
    }
    return absl::OkStatus();
  }

 private:
  std::unique_ptr<NatsConnection> nats_;
};

class NatsDriver final : public Driver {
 public:
  explicit NatsDriver(DriverSpec spec) : spec_(std::move(spec)) {}

  absl::Status create_topic(const std::string& topic, uint32_t) override {
    if (!spec_.nats_jetstream) return absl::OkStatus();
    auto nats = std::make_unique<NatsConnection>();
    if (auto s = nats->connect(spec_.nats_url); !s.ok()) return s;
    std::string stream = stream_name(topic);
    auto reply = jetstream_request(
        *nats, str_cat("$JS.API.STREAM.CREATE.", stream),
        str_cat("{\"name\":\"", stream, "\",\"subjects\":[\"", topic,
                "\"],\"storage\":\"file\",\"retention\":\"limits\",\"max_bytes\":1073741824}"));
    if (!reply.ok()) return reply.status();
    if (reply->find("\"error\"") != std::string::npos)
      return absl::FailedPreconditionError(
          str_cat("nats: creating JetStream stream ", stream, ": ", *reply,
                  " (start nats-server with -js and a store dir)"));
    streams_.push_back(stream);
    return absl::OkStatus();
  }

  absl::StatusOr<std::unique_ptr<DriverProducer>> producer(const std::string& topic) override {
    auto nats = std::make_unique<NatsConnection>();
    if (auto s = nats->connect(spec_.nats_url); !s.ok()) return s;
    auto producer = std::make_unique<NatsProducer>(std::move(nats), topic, spec_.nats_jetstream);
    if (auto s = producer->init(); !s.ok()) return s;
    return producer;
  }

  absl::StatusOr<std::unique_ptr<DriverConsumer>> consumer(
      const std::string& topic, const std::string& subscription) override {
    auto nats = std::make_unique<NatsConnection>();
    if (auto s = nats->connect(spec_.nats_url); !s.ok()) return s;
    if (auto s = nats->write(str_cat("SUB ", topic, " ", subscription, " 1\r\nPING\r\n")); !s.ok())
      return s;
    if (auto s = nats->wait_pong(std::chrono::seconds(5)); !s.ok()) return s;
    return std::make_unique<NatsConsumer>(std::move(nats));
  }

  void cleanup() override {
    if (streams_.empty()) return;
    NatsConnection nats;
    if (!nats.connect(spec_.nats_url).ok()) return;
    for (const auto& stream : streams_)
      (void)jetstream_request(nats, str_cat("$JS.API.STREAM.DELETE.", stream), "");
  }

 private:
  static std::string stream_name(const std::string& topic) {
    std::string name = topic;
    for (char& c : name) {
      if (c == '.' || c == '*' || c == '>' || c == ' ') c = '_';
    }
    return name;
  }

  DriverSpec spec_;
  std::vector<std::string> streams_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Driver>> make_nats_driver(const DriverSpec& spec) {
  return std::make_unique<NatsDriver>(spec);
}

}  // namespace telekern::bench
