// Routing fields of a serialized telekern.broker.v1.ProduceRequest, read
// without parsing the records: topic (field 1), partition (field 3) and
// sequence (field 5). The
// proxy routes a produce to an explicit partition by these alone and
// forwards the bytes (produce_bytes.h). No gRPC or protobuf types here.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace telekern::proxy {

struct ProduceRoute {
  std::string topic;
  std::optional<uint32_t> partition;
  uint64_t sequence = 0;  // field 5, echoed in the answer
};

namespace wire {

inline bool read_varint(std::string_view& bytes, uint64_t* value) {
  uint64_t result = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (bytes.empty()) return false;
    auto byte = static_cast<uint8_t>(bytes.front());
    bytes.remove_prefix(1);
    result |= uint64_t(byte & 0x7f) << shift;
    if ((byte & 0x80) == 0) {
      *value = result;
      return true;
    }
  }
  return false;
}

}  // namespace wire

// nullopt when the bytes are not a well-formed message; a repeated field
// counts its last value, as protobuf does.
inline std::optional<ProduceRoute> peek_produce_route(std::string_view bytes) {
  ProduceRoute route;
  while (!bytes.empty()) {
    uint64_t tag = 0, value = 0;
    if (!wire::read_varint(bytes, &tag)) return std::nullopt;
    uint64_t field = tag >> 3;
    switch (tag & 7) {
      case 0:  // varint
        if (!wire::read_varint(bytes, &value)) return std::nullopt;
        if (field == 3) route.partition = static_cast<uint32_t>(value);
        if (field == 5) route.sequence = value;
        break;
      case 1:  // 64-bit
        if (bytes.size() < 8) return std::nullopt;
        bytes.remove_prefix(8);
        break;
      case 2:  // length-delimited
        if (!wire::read_varint(bytes, &value) || value > bytes.size()) return std::nullopt;
        if (field == 1) route.topic.assign(bytes.data(), value);
        bytes.remove_prefix(value);
        break;
      case 5:  // 32-bit
        if (bytes.size() < 4) return std::nullopt;
        bytes.remove_prefix(4);
        break;
      default:
        return std::nullopt;
    }
  }
  return route;
}

}  // namespace telekern::proxy
