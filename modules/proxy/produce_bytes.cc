#include "produce_bytes.h"

#include "telekern/status.h"
#include "telekern/strings.h"

namespace telekern::proxy {
namespace {

// Field 8 (grow_partitions), varint, true: appended to the request, it wins
// over any earlier value (protobuf keeps the last one).
constexpr char kGrowPartitions[] = {0x40, 0x01};

}  // namespace

std::optional<ProduceRoute> peek_produce_route(const grpc::ByteBuffer& request) {
  grpc::Slice slice;
  if (!request.TrySingleSlice(&slice).ok() && !request.DumpToSingleSlice(&slice).ok())
    return std::nullopt;
  return peek_produce_route(
      std::string_view(reinterpret_cast<const char*>(slice.begin()), slice.size()));
}

void forward_produce_bytes(ProxyEngine& engine, Clock::time_point deadline,
                           const ProduceRoute& route, const grpc::ByteBuffer& request,
                           grpc::ByteBuffer* response, Done done) {
  if (auto status = check_partition(engine, *route.partition); !status.ok()) return done(status);
  auto upstream = engine.router().route(route.topic, *route.partition);
  if (!upstream.ok()) return done(upstream.status());
  struct Call {
    std::shared_ptr<ProxyEngine> engine;  // outlives a module stop while the call is out
    std::shared_ptr<Upstream> upstream;
    std::shared_ptr<Connection> connection;
    std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
  };
  auto call = std::make_shared<Call>();
  call->engine = engine.shared_from_this();
  call->upstream = *upstream;
  call->upstream->calls.fetch_add(1);
  if (call->upstream->in_flight.fetch_add(1) >= engine.options().max_in_flight) {
    call->upstream->in_flight.fetch_sub(1);
    engine.observe_call(call->upstream->address, "Produce", grpc::StatusCode::RESOURCE_EXHAUSTED,
                        0);
    return done(absl::ResourceExhaustedError(
        str_cat("upstream ", call->upstream->address, ": ", engine.options().max_in_flight,
                " calls in flight (max_in_flight); retry later or raise it")));
  }
  LaneProduce produce;
  produce.request = with_field(request, std::string_view(kGrowPartitions, sizeof kGrowPartitions));
  produce.client_sequence = route.sequence;
  produce.response = response;
  produce.deadline = deadline;
  call->connection = engine.connection(call->upstream->address);
  produce.done = [call, done = std::move(done)](grpc::Status status) {
    call->upstream->in_flight.fetch_sub(1);
    call->engine->observe_call(
        call->upstream->address, "Produce", status.error_code(),
        std::chrono::duration<double>(std::chrono::steady_clock::now() - call->started).count());
    if (status.ok()) return done(absl::OkStatus());
    done(absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                      str_cat("upstream ", call->upstream->address, ": ", status.error_message())));
  };
  call->connection->produce->send(std::move(produce));
}

}  // namespace telekern::proxy
