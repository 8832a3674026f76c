// Record batches straight from partition leaders: a Kafka Fetch request
// (v4) over a plain TCP connection, and the decoding of the record batches
// (v2, uncompressed, gzip, lz4 or zstd) it returns into record views that
// point into the fetched or decompressed bytes. The kafka source scans with
// it when it can (plaintext, read_uncommitted), because a bulk scan then
// costs a decompression and a pass over the bytes per batch instead of an
// allocated, queued and freed message per record in librdkafka's consumer;
// whatever it cannot read (snappy, old message formats, errors) continues in
// librdkafka from the offset it reached.
#pragma once

#include <absl/status/status.h>
#include <absl/status/statusor.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "record.h"

namespace telekern::tracer {

struct FetchPartition {
  int32_t partition = 0;
  int64_t offset = 0;
};

struct FetchTopic {
  std::string topic;
  std::vector<FetchPartition> partitions;
};

struct FetchLimits {
  int32_t max_wait_ms = 10;
  int32_t max_bytes = 52428800;
  int32_t partition_max_bytes = 8388608;
};

// A whole Fetch v4 request (size prefix, header, body), read_uncommitted.
std::string encode_fetch_request(int32_t correlation_id, const std::vector<FetchTopic>& topics,
                                 const FetchLimits& limits);

struct FetchedPartition {
  std::string_view topic;
  int32_t partition = 0;
  int16_t error = 0;  // Kafka error code
  int64_t high_watermark = -1;
  std::string_view records;  // record batches, the last one possibly cut short
};

// Parses a Fetch v4 response body (after the size prefix); the views point into `response`.
absl::StatusOr<std::vector<FetchedPartition>> decode_fetch_response(std::string_view response,
                                                                    int32_t correlation_id);

// Calls `record` for each record of the batches in `records` at or after
// `from`, in offset order, with `view` (topic and partition set by the
// caller) filled in, and returns the offset after the last batch it
// read whole (control batches and offset gaps included), or `from` when none.
// A batch it cannot read (magic < 2, snappy) ends the walk with
// UNIMPLEMENTED naming it; `record` returning false ends it early (the
// result is then the offset after that record).
struct BatchWalk {
  int64_t next = 0;
  bool stopped = false;  // `record` said stop
};
absl::StatusOr<BatchWalk> walk_batches(std::string_view records, int64_t from, std::string& scratch,
                                       RecordView& view,
                                       const std::function<bool(const RecordView&)>& record);

// A blocking TCP connection to one broker; requests are sent and answered in order.
class BrokerConnection {
 public:
  static absl::StatusOr<BrokerConnection> open(const std::string& host, int port,
                                               std::chrono::milliseconds timeout);
  BrokerConnection(BrokerConnection&& other) noexcept;
  BrokerConnection& operator=(BrokerConnection&& other) noexcept;
  ~BrokerConnection();

  int fd() const { return fd_; }
  absl::Status send(std::string_view request);
  // The next response (without its size prefix) into `response`.
  absl::Status receive(std::string& response);

 private:
  explicit BrokerConnection(int fd, std::string peer) : fd_(fd), peer_(std::move(peer)) {}
  int fd_ = -1;
  std::string peer_;
};

}  // namespace telekern::tracer
