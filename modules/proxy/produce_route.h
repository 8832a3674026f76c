// Routing fields of a serialized telekern.broker.v1.ProduceRequest, read
// without parsing the records: topic (field 1), partition (field 3) and
// sequence (field 5). The
// proxy routes a produce to an explicit partition by these alone and
// forwards the bytes (produce_bytes.h). No gRPC or protobuf types here.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace telekern::proxy {

struct ProduceRoute {
  std::string topic;
  std::optional<uint32_t> partition;
  uint64_t sequence = 0;  // field 5, echoed in the answer
  bool batch = false;     // field 9 present (ProduceStream to a broker only)
};

namespace wire {

// Reads a message that may lie in several chunks (gRPC hands a received
// message over as the slices it arrived in) without joining them.
class ChunkedReader {
 public:
  explicit ChunkedReader(std::span<const std::string_view> chunks) : chunks_(chunks) { settle(); }

  bool empty() const { return chunk_ == chunks_.size(); }

  bool read_varint(uint64_t* value) {
    uint64_t result = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (empty()) return false;
      auto byte = static_cast<uint8_t>(chunks_[chunk_][offset_]);
      advance(1);
      result |= uint64_t(byte & 0x7f) << shift;
      if ((byte & 0x80) == 0) {
        *value = result;
        return true;
      }
    }
    return false;
  }

  // Skips `size` bytes, appending them to `out` when given; false past the end.
  bool skip(uint64_t size, std::string* out = nullptr) {
    while (size > 0) {
      if (empty()) return false;
      auto here = chunks_[chunk_].substr(offset_, size);
      if (out) out->append(here);
      size -= here.size();
      advance(here.size());
    }
    return true;
  }

 private:
  void advance(size_t size) {
    offset_ += size;
    settle();
  }
  // Moves past exhausted (and empty) chunks.
  void settle() {
    while (chunk_ < chunks_.size() && offset_ == chunks_[chunk_].size()) {
      ++chunk_;
      offset_ = 0;
    }
  }

  std::span<const std::string_view> chunks_;
  size_t chunk_ = 0;
  size_t offset_ = 0;
};

}  // namespace wire

// nullopt when the bytes are not a well-formed message; a repeated field
// counts its last value, as protobuf does. `chunks` are the message's bytes
// in order (gRPC's slices of it).
inline std::optional<ProduceRoute> peek_produce_route(std::span<const std::string_view> chunks) {
  ProduceRoute route;
  wire::ChunkedReader bytes(chunks);
  while (!bytes.empty()) {
    uint64_t tag = 0, value = 0;
    if (!bytes.read_varint(&tag)) return std::nullopt;
    uint64_t field = tag >> 3;
    switch (tag & 7) {
      case 0:  // varint
        if (!bytes.read_varint(&value)) return std::nullopt;
        if (field == 3) route.partition = static_cast<uint32_t>(value);
        if (field == 5) route.sequence = value;
        break;
      case 1:  // 64-bit
        if (!bytes.skip(8)) return std::nullopt;
        break;
      case 2:  // length-delimited
        if (!bytes.read_varint(&value)) return std::nullopt;
        if (field == 1) route.topic.clear();
        if (field == 9) route.batch = true;
        if (!bytes.skip(value, field == 1 ? &route.topic : nullptr)) return std::nullopt;
        break;
      case 5:  // 32-bit
        if (!bytes.skip(4)) return std::nullopt;
        break;
      default:
        return std::nullopt;
    }
  }
  return route;
}

inline std::optional<ProduceRoute> peek_produce_route(std::string_view bytes) {
  return peek_produce_route(std::span<const std::string_view>(&bytes, 1));
}

}  // namespace telekern::proxy
