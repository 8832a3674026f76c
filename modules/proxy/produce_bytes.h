// Produce to an explicit partition, forwarded as the client's bytes: only the
// topic and partition fields are read (to route), grow_partitions is set by
// appending its field, and the owner's answer goes back unparsed. This skips
// parsing and re-serialising every record on the proxy's hot path.
#pragma once

#include <grpcpp/support/byte_buffer.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "forwarding.h"

namespace telekern::proxy {

struct ProduceRoute {
  std::string topic;
  std::optional<uint32_t> partition;
};

// Topic (field 1) and partition (field 3) of a serialized ProduceRequest;
// nullopt when the bytes are not a well-formed message.
std::optional<ProduceRoute> peek_produce_route(std::string_view bytes);
std::optional<ProduceRoute> peek_produce_route(const grpc::ByteBuffer& request);

// Forwards `request` (a serialized ProduceRequest for `route`, which has a
// partition) to the partition's owner; the owner's answer lands in `response`
// (which must outlive the call).
void forward_produce_bytes(ProxyEngine& engine, Clock::time_point deadline,
                           const ProduceRoute& route, const grpc::ByteBuffer& request,
                           grpc::ByteBuffer* response, Done done);

}  // namespace telekern::proxy
