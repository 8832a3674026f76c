#include "kafka_batch_fetch.h"

#include <lz4frame.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include "telekern/strings.h"

namespace telekern::tracer {
namespace {

constexpr int16_t kFetchApiKey = 1;
constexpr int16_t kFetchVersion = 4;
constexpr std::string_view kClientId = "telekern-tracer";

void put16(std::string& out, int16_t value) {
  auto v = static_cast<uint16_t>(value);
  out.push_back(static_cast<char>(v >> 8));
  out.push_back(static_cast<char>(v));
}
void put32(std::string& out, int32_t value) {
  auto v = static_cast<uint32_t>(value);
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>(v >> shift));
}
void put64(std::string& out, int64_t value) {
  auto v = static_cast<uint64_t>(value);
  for (int shift = 56; shift >= 0; shift -= 8) out.push_back(static_cast<char>(v >> shift));
}
void put_string(std::string& out, std::string_view text) {
  put16(out, static_cast<int16_t>(text.size()));
  out.append(text);
}

// Big-endian and varint reads over a view; any read past the end marks it bad.
class Reader {
 public:
  explicit Reader(std::string_view data) : data_(data) {}
  bool ok() const { return ok_; }
  size_t left() const { return data_.size() - position_; }
  size_t position() const { return position_; }

  uint64_t fixed(int bytes) {
    if (!need(static_cast<size_t>(bytes))) return 0;
    uint64_t value = 0;
    for (int i = 0; i < bytes; ++i)
      value = (value << 8) | static_cast<unsigned char>(data_[position_ + i]);
    position_ += static_cast<size_t>(bytes);
    return value;
  }
  int16_t i16() { return static_cast<int16_t>(fixed(2)); }
  int32_t i32() { return static_cast<int32_t>(fixed(4)); }
  int64_t i64() { return static_cast<int64_t>(fixed(8)); }
  int8_t i8() { return static_cast<int8_t>(fixed(1)); }

  // Zigzag varint (Kafka's record fields).
  int64_t varint() {
    uint64_t raw = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (!need(1)) return 0;
      auto byte = static_cast<unsigned char>(data_[position_++]);
      raw |= static_cast<uint64_t>(byte & 0x7f) << shift;
      if ((byte & 0x80) == 0)
        return static_cast<int64_t>(raw >> 1) ^ -static_cast<int64_t>(raw & 1);
    }
    ok_ = false;
    return 0;
  }
  std::string_view bytes(size_t size) {
    if (!need(size)) return {};
    auto view = data_.substr(position_, size);
    position_ += size;
    return view;
  }
  std::string_view string16() {
    int16_t size = i16();
    return size < 0 ? std::string_view() : bytes(static_cast<size_t>(size));
  }
  // A varint length then the bytes; -1 is null (an empty view).
  std::string_view varbytes() {
    int64_t size = varint();
    if (size < 0) return {};
    return bytes(static_cast<size_t>(size));
  }

 private:
  bool need(size_t size) {
    if (ok_ && left() >= size) return true;
    ok_ = false;
    return false;
  }
  std::string_view data_;
  size_t position_ = 0;
  bool ok_ = true;
};

// The decompressors write into `output` from its start, growing it when
// needed (never shrinking it: it is reused batch after batch), and return
// the size produced.
absl::StatusOr<size_t> decompress_gzip(std::string_view input, std::string& output) {
  z_stream stream{};
  if (inflateInit2(&stream, 16 + MAX_WBITS) != Z_OK)
    return absl::InternalError("gzip: cannot initialise zlib");
  std::unique_ptr<z_stream, int (*)(z_stream*)> guard(&stream, inflateEnd);
  stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(input.data()));
  stream.avail_in = static_cast<uInt>(input.size());
  if (output.size() < input.size() * 4) output.resize(std::max<size_t>(input.size() * 4, 65536));
  size_t produced = 0;
  for (;;) {
    if (produced == output.size()) output.resize(output.size() * 2);
    stream.next_out = reinterpret_cast<Bytef*>(output.data() + produced);
    stream.avail_out = static_cast<uInt>(output.size() - produced);
    int result = inflate(&stream, Z_NO_FLUSH);
    produced = output.size() - stream.avail_out;
    if (result == Z_STREAM_END) break;
    if (result != Z_OK && result != Z_BUF_ERROR)
      return absl::DataLossError(str_cat("gzip batch: zlib error ", result));
    if (result == Z_BUF_ERROR && stream.avail_in == 0)
      return absl::DataLossError("gzip batch cut short");
  }
  return produced;
}

absl::StatusOr<size_t> decompress_lz4(std::string_view input, std::string& output) {
  LZ4F_dctx* context = nullptr;
  if (LZ4F_isError(LZ4F_createDecompressionContext(&context, LZ4F_VERSION)))
    return absl::InternalError("lz4: cannot create a decompression context");
  std::unique_ptr<LZ4F_dctx, LZ4F_errorCode_t (*)(LZ4F_dctx*)> guard(context,
                                                                     LZ4F_freeDecompressionContext);
  if (output.size() < input.size() * 4) output.resize(std::max<size_t>(input.size() * 4, 65536));
  size_t produced = 0, consumed = 0;
  for (;;) {
    if (produced == output.size()) output.resize(output.size() * 2);
    size_t out_size = output.size() - produced;
    size_t in_size = input.size() - consumed;
    size_t hint = LZ4F_decompress(context, output.data() + produced, &out_size,
                                  input.data() + consumed, &in_size, nullptr);
    if (LZ4F_isError(hint))
      return absl::DataLossError(str_cat("lz4 batch: ", LZ4F_getErrorName(hint)));
    produced += out_size;
    consumed += in_size;
    if (hint == 0) break;  // frame complete
    if (consumed == input.size() && out_size == 0)
      return absl::DataLossError("lz4 batch cut short");
  }
  return produced;
}

absl::StatusOr<size_t> decompress_zstd(std::string_view input, std::string& output) {
  std::unique_ptr<ZSTD_DStream, size_t (*)(ZSTD_DStream*)> stream(ZSTD_createDStream(),
                                                                  ZSTD_freeDStream);
  if (!stream) return absl::InternalError("zstd: cannot create a stream");
  ZSTD_initDStream(stream.get());
  if (output.size() < input.size() * 4) output.resize(std::max<size_t>(input.size() * 4, 65536));
  ZSTD_inBuffer in{input.data(), input.size(), 0};
  size_t produced = 0;
  for (;;) {
    if (produced == output.size()) output.resize(output.size() * 2);
    ZSTD_outBuffer out{output.data() + produced, output.size() - produced, 0};
    size_t result = ZSTD_decompressStream(stream.get(), &out, &in);
    if (ZSTD_isError(result))
      return absl::DataLossError(str_cat("zstd batch: ", ZSTD_getErrorName(result)));
    produced += out.pos;
    if (result == 0 && in.pos == in.size) break;  // every frame complete
    if (in.pos == in.size && out.pos < out.size) return absl::DataLossError("zstd batch cut short");
  }
  return produced;
}

}  // namespace

std::string encode_fetch_request(int32_t correlation_id, const std::vector<FetchTopic>& topics,
                                 const FetchLimits& limits) {
  std::string out;
  put32(out, 0);  // size, set below
  put16(out, kFetchApiKey);
  put16(out, kFetchVersion);
  put32(out, correlation_id);
  put_string(out, kClientId);
  put32(out, -1);  // replica id: a consumer
  put32(out, limits.max_wait_ms);
  put32(out, 1);  // min bytes
  put32(out, limits.max_bytes);
  out.push_back(0);  // read_uncommitted
  put32(out, static_cast<int32_t>(topics.size()));
  for (const auto& topic : topics) {
    put_string(out, topic.topic);
    put32(out, static_cast<int32_t>(topic.partitions.size()));
    for (const auto& partition : topic.partitions) {
      put32(out, partition.partition);
      put64(out, partition.offset);
      put32(out, limits.partition_max_bytes);
    }
  }
  auto size = static_cast<uint32_t>(out.size() - 4);
  for (int i = 0; i < 4; ++i) out[i] = static_cast<char>(size >> (24 - 8 * i));
  return out;
}

absl::StatusOr<std::vector<FetchedPartition>> decode_fetch_response(std::string_view response,
                                                                    int32_t correlation_id) {
  Reader in(response);
  if (int32_t id = in.i32(); id != correlation_id)
    return absl::DataLossError(
        str_cat("fetch response for request ", id, ", expected ", correlation_id));
  in.i32();  // throttle time
  std::vector<FetchedPartition> result;
  int32_t topics = in.i32();
  for (int32_t t = 0; t < topics && in.ok(); ++t) {
    std::string_view topic = in.string16();
    int32_t partitions = in.i32();
    for (int32_t p = 0; p < partitions && in.ok(); ++p) {
      FetchedPartition entry;
      entry.topic = topic;
      entry.partition = in.i32();
      entry.error = in.i16();
      entry.high_watermark = in.i64();
      in.i64();  // last stable offset
      int32_t aborted = in.i32();
      for (int32_t a = 0; a < aborted && in.ok(); ++a) {
        in.i64();
        in.i64();
      }
      int32_t size = in.i32();
      if (size > 0) entry.records = in.bytes(static_cast<size_t>(size));
      result.push_back(entry);
    }
  }
  if (!in.ok()) return absl::DataLossError("fetch response cut short");
  return result;
}

absl::StatusOr<BatchWalk> walk_batches(std::string_view records, int64_t from, std::string& scratch,
                                       RecordView& view,
                                       const std::function<bool(const RecordView&)>& record) {
  BatchWalk walk{from, false};
  Reader batches(records);
  while (batches.left() >= 12) {
    int64_t base_offset = batches.i64();
    int32_t length = batches.i32();
    if (length < 49 || batches.left() < static_cast<size_t>(length)) break;  // cut short
    Reader header(batches.bytes(static_cast<size_t>(length)));
    header.i32();  // partition leader epoch
    int8_t magic = header.i8();
    if (magic != 2)
      return absl::UnimplementedError(
          str_cat("message format v", magic, " at offset ", base_offset));
    header.fixed(4);  // crc (checked by the broker; librdkafka skips it by default too)
    int16_t attributes = header.i16();
    int32_t last_offset_delta = header.i32();
    int64_t base_timestamp = header.i64();
    int64_t max_timestamp = header.i64();
    header.i64();  // producer id
    header.i16();  // producer epoch
    header.i32();  // base sequence
    int32_t count = header.i32();
    int64_t after_batch = base_offset + last_offset_delta + 1;
    bool control = (attributes & 0x20) != 0;
    bool log_append_time = (attributes & 0x08) != 0;
    if (control || after_batch <= walk.next) {
      walk.next = std::max(walk.next, after_batch);
      continue;
    }
    std::string_view body = header.bytes(header.left());
    int codec = attributes & 0x07;
    if (codec != 0) {
      absl::StatusOr<size_t> size =
          codec == 1   ? decompress_gzip(body, scratch)
          : codec == 3 ? decompress_lz4(body, scratch)
          : codec == 4 ? decompress_zstd(body, scratch)
                       : absl::StatusOr<size_t>(absl::UnimplementedError(
                             str_cat("compression codec ", codec, " at offset ", base_offset)));
      if (!size.ok()) return size.status();
      body = std::string_view(scratch.data(), *size);
    }
    Reader in(body);
    for (int32_t i = 0; i < count; ++i) {
      int64_t size = in.varint();
      Reader one(in.bytes(size > 0 ? static_cast<size_t>(size) : 0));
      if (!in.ok())
        return absl::DataLossError(str_cat("batch at offset ", base_offset, " cut short"));
      one.i8();  // attributes
      int64_t timestamp_delta = one.varint();
      int64_t offset = base_offset + one.varint();
      view.key = one.varbytes();
      view.value = one.varbytes();
      view.headers.clear();
      int64_t headers = one.varint();
      for (int64_t h = 0; h < headers && one.ok(); ++h) {
        auto key = one.varbytes();
        view.headers.emplace_back(key, one.varbytes());
      }
      if (!one.ok())
        return absl::DataLossError(str_cat("record at offset ", offset, " is malformed"));
      if (offset < walk.next) continue;
      view.offset = offset;
      view.timestamp_ms = log_append_time ? max_timestamp : base_timestamp + timestamp_delta;
      if (!record(view)) {
        walk.next = offset + 1;
        walk.stopped = true;
        return walk;
      }
    }
    walk.next = std::max(walk.next, after_batch);
  }
  return walk;
}

absl::StatusOr<BrokerConnection> BrokerConnection::open(const std::string& host, int port,
                                                        std::chrono::milliseconds timeout) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  std::string peer = str_cat(host, ":", port);
  if (int error = getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &found);
      error != 0)
    return absl::UnavailableError(str_cat("resolve ", peer, ": ", gai_strerror(error)));
  std::unique_ptr<addrinfo, void (*)(addrinfo*)> addresses(found, freeaddrinfo);
  std::string last_error = "no address";
  for (addrinfo* address = found; address != nullptr; address = address->ai_next) {
    int fd = socket(address->ai_family, address->ai_socktype | SOCK_CLOEXEC, address->ai_protocol);
    if (fd < 0) continue;
    timeval limit{static_cast<time_t>(timeout.count() / 1000),
                  static_cast<suseconds_t>((timeout.count() % 1000) * 1000)};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, sizeof limit);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, address->ai_addr, address->ai_addrlen) == 0) return BrokerConnection(fd, peer);
    last_error = std::strerror(errno);
    close(fd);
  }
  return absl::UnavailableError(str_cat("connect ", peer, ": ", last_error));
}

BrokerConnection::BrokerConnection(BrokerConnection&& other) noexcept
    : fd_(other.fd_), peer_(std::move(other.peer_)) {
  other.fd_ = -1;
}

BrokerConnection& BrokerConnection::operator=(BrokerConnection&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) close(fd_);
    fd_ = other.fd_;
    peer_ = std::move(other.peer_);
    other.fd_ = -1;
  }
  return *this;
}

BrokerConnection::~BrokerConnection() {
  if (fd_ >= 0) close(fd_);
}

absl::Status BrokerConnection::send(std::string_view request) {
  while (!request.empty()) {
    ssize_t sent = ::send(fd_, request.data(), request.size(), MSG_NOSIGNAL);
    if (sent < 0) {
      if (errno == EINTR) continue;
      return absl::UnavailableError(str_cat("send to ", peer_, ": ", std::strerror(errno)));
    }
    request.remove_prefix(static_cast<size_t>(sent));
  }
  return absl::OkStatus();
}

absl::Status BrokerConnection::receive(std::string& response) {
  auto read_exactly = [&](char* into, size_t size) -> absl::Status {
    while (size > 0) {
      ssize_t got = ::recv(fd_, into, size, 0);
      if (got == 0) return absl::UnavailableError(str_cat(peer_, " closed the connection"));
      if (got < 0) {
        if (errno == EINTR) continue;
        return absl::UnavailableError(str_cat(
            "receive from ", peer_, ": ", errno == EAGAIN ? "timed out" : std::strerror(errno)));
      }
      into += got;
      size -= static_cast<size_t>(got);
    }
    return absl::OkStatus();
  };
  unsigned char prefix[4];
  if (auto status = read_exactly(reinterpret_cast<char*>(prefix), 4); !status.ok()) return status;
  uint32_t size = (uint32_t{prefix[0]} << 24) | (uint32_t{prefix[1]} << 16) |
                  (uint32_t{prefix[2]} << 8) | prefix[3];
  if (size > (1u << 30))
    return absl::DataLossError(str_cat(peer_, " sent a ", size, "-byte response"));
  response.resize(size);
  return read_exactly(response.data(), size);
}

}  // namespace telekern::tracer
