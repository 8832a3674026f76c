// Produce to an explicit partition, forwarded as the client's bytes: only the
// topic and partition fields are read (to route), grow_partitions is set by
// appending its field, and the owner's answer goes back unparsed. This skips
// parsing and re-serialising every record on the proxy's hot path; the
// client's bytes stay in the slices gRPC received them in (referenced, never
// joined or copied).
#pragma once

#include <grpcpp/support/byte_buffer.h>
#include <grpcpp/support/slice.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "forwarding.h"
#include "produce_route.h"

namespace telekern::proxy {

// A received ProduceRequest: its slices (references) and its route (nullopt
// when the bytes are not a well-formed message).
struct ProduceBytes {
  std::vector<grpc::Slice> slices;
  std::optional<ProduceRoute> route;
};
ProduceBytes peek_produce(const grpc::ByteBuffer& request);

// Forwards `request` (the slices of a serialized ProduceRequest for `route`,
// which has a partition) to the partition's owner; the owner's answer lands
// in `response` (which must outlive the call).
void forward_produce_bytes(ProxyEngine& engine, Clock::time_point deadline,
                           const ProduceRoute& route, std::vector<grpc::Slice> request,
                           grpc::ByteBuffer* response, Done done);

}  // namespace telekern::proxy
