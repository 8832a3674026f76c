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
#include "produce_route.h"

namespace telekern::proxy {

// peek_produce_route over the request's bytes (one slice, or flattened).
std::optional<ProduceRoute> peek_produce_route(const grpc::ByteBuffer& request);

// Forwards `request` (a serialized ProduceRequest for `route`, which has a
// partition) to the partition's owner; the owner's answer lands in `response`
// (which must outlive the call).
void forward_produce_bytes(ProxyEngine& engine, Clock::time_point deadline,
                           const ProduceRoute& route, const grpc::ByteBuffer& request,
                           grpc::ByteBuffer* response, Done done);

}  // namespace telekern::proxy
