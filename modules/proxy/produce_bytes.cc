#include "produce_bytes.h"

#include "telekern/status.h"
#include "telekern/strings.h"

namespace telekern::proxy {
ProduceBytes peek_produce(const grpc::ByteBuffer& request) {
  ProduceBytes bytes;
  if (!request.Dump(&bytes.slices).ok()) return bytes;  // references, not copies
  std::vector<std::string_view> chunks;
  chunks.reserve(bytes.slices.size());
  for (const auto& slice : bytes.slices) {
    chunks.emplace_back(reinterpret_cast<const char*>(slice.begin()), slice.size());
  }
  bytes.route = peek_produce_route(chunks);
  return bytes;
}

void forward_produce_bytes(ProxyEngine& engine, Clock::time_point deadline,
                           const ProduceRoute& route, std::vector<grpc::Slice> request,
                           grpc::ByteBuffer* response, Done done) {
  if (auto status = check_partition(engine, *route.partition); !status.ok()) return done(status);
  auto upstream = engine.router().route(route.topic, *route.partition);
  if (!upstream.ok()) return done(upstream.status());
  // One allocation per forwarded produce holds what its end needs.
  struct Call {
    std::shared_ptr<ProxyEngine> engine;  // outlives a module stop while the call is out
    std::shared_ptr<Upstream> upstream;
    std::shared_ptr<Connection> connection;
    Done done;
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
  call->connection = engine.connection(call->upstream->address);
  call->done = std::move(done);
  LaneProduce produce;
  produce.request = std::move(request);
  produce.client_sequence = route.sequence;
  produce.response = response;
  produce.deadline = deadline;
  produce.done = [call](grpc::Status status) {  // fits std::function's own storage
    call->upstream->in_flight.fetch_sub(1);
    call->engine->observe_produce(
        *call->connection, status.error_code(),
        std::chrono::duration<double>(std::chrono::steady_clock::now() - call->started).count());
    if (status.ok()) return call->done(absl::OkStatus());
    call->done(
        absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                     str_cat("upstream ", call->upstream->address, ": ", status.error_message())));
  };
  call->connection->produce->send(std::move(produce));
}

}  // namespace telekern::proxy
