#include "proxy_service.h"

#include <google/protobuf/util/time_util.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <set>

#include "consume_fanout.h"
#include "forwarding.h"
#include "produce_bytes.h"
#include "telekern/strings.h"

namespace telekern::proxy {
namespace {

// The client's deadline, capped at call_timeout.
Clock::time_point deadline_of(const grpc::CallbackServerContext* context,
                              const ProxyEngine& engine) {
  auto cap = Clock::now() + engine.options().call_timeout;
  return context ? std::min(context->deadline(), cap) : cap;
}

}  // namespace

// ---- Broker --------------------------------------------------------------

grpc::ServerUnaryReactor* ProxyBrokerService::Produce(grpc::CallbackServerContext* context,
                                                      const grpc::ByteBuffer* request,
                                                      grpc::ByteBuffer* response) {
  // A produce to an explicit partition is routed by its topic and partition
  // fields alone and forwarded as bytes from this gRPC thread (no queue hop,
  // no parsing of the records).
  auto peeked = peek_produce(*request);
  auto& route = peeked.route;
  if (route && route->batch) {
    auto* reactor = context->DefaultReactor();
    reactor->Finish(to_grpc(batch_refused()));
    return reactor;
  }
  if (route && route->partition && !route->topic.empty()) {
    if (auto engine = binding_.engine()) {
      auto* reactor = context->DefaultReactor();
      // The forwarded call keeps the engine until its end.
      forward_produce_bytes(*engine, deadline_of(context, *engine), *route,
                            std::move(peeked.slices), response,
                            [reactor](absl::Status status) { reactor->Finish(to_grpc(status)); });
      return reactor;
    }
  }
  // Keyed or unkeyed records are split by partition: parse, route on the
  // proxy's threads, answer serialized.
  struct Call {
    bv1::ProduceRequest request;
    bv1::ProduceResponse response;
  };
  auto call = std::make_shared<Call>();
  grpc::Slice bytes;
  if (!request->DumpToSingleSlice(&bytes).ok() ||
      !call->request.ParseFromArray(bytes.begin(), static_cast<int>(bytes.size()))) {
    auto* reactor = context->DefaultReactor();
    reactor->Finish(
        grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                     "ProduceRequest does not parse; send a telekern.broker.v1 message"));
    return reactor;
  }
  return binding_.unary_async(
      context, [context, call, response](ProxyEngine& engine, Completion done) {
        produce(engine, deadline_of(context, engine), call->request, &call->response,
                [call, response, done = std::move(done)](absl::Status status) {
                  if (status.ok()) {
                    std::string serialized = call->response.SerializeAsString();
                    grpc::Slice slice(serialized);
                    *response = grpc::ByteBuffer(&slice, 1);
                  }
                  done(status);
                });
      });
}

grpc::ServerBidiReactor<bv1::ProduceRequest, bv1::ProduceResponse>*
ProxyBrokerService::ProduceStream(grpc::CallbackServerContext*) {
  using Item = std::shared_ptr<bv1::ProduceRequest>;
  return binding_.pipelined_stream<bv1::ProduceRequest, bv1::ProduceResponse, Item>(
      [](const bv1::ProduceRequest& request) {
        return std::make_shared<bv1::ProduceRequest>(request);
      },
      [](ProxyEngine& engine, Item item, std::function<void(bv1::ProduceResponse)> answer) {
        auto response = std::make_shared<bv1::ProduceResponse>();
        produce(engine, deadline_of(nullptr, engine), *item, response.get(),
                [item, response, answer = std::move(answer)](absl::Status status) {
                  if (!status.ok()) return answer(produce_error(item->sequence(), status));
                  response->set_sequence(item->sequence());
                  answer(std::move(*response));
                });
      },
      [](const Item& item, const absl::Status& status) {
        return produce_error(item->sequence(), status);
      });
}

grpc::ServerWriteReactor<bv1::ConsumeResponse>* ProxyBrokerService::Consume(
    grpc::CallbackServerContext* context, const bv1::ConsumeRequest* request) {
  // No thread per stream or per upstream: the fan-out's upstream reads are
  // gRPC callbacks and the client's side runs on the binding's step threads.
  using Step = StreamStep<bv1::ConsumeResponse>;
  return binding_.polled_stream<bv1::ConsumeResponse>(
      context, [request = *request](ProxyEngine& engine) {
        return [&engine, request, fanout = std::shared_ptr<ConsumeFanout>()](
                   const StepWaker& wake, std::stop_token stop) mutable {
          if (stop.stop_requested()) return Step::done(absl::CancelledError("consume ended"));
          if (!fanout) {
            fanout = std::make_shared<ConsumeFanout>(engine, request, wake);
            fanout->open();
          }
          auto next = fanout->next();
          if (next.done) return Step::done(*next.done);
          if (next.message) return Step::write(std::move(*next.message));
          // Woken by the upstreams' messages and placement changes; the
          // timed recheck is a safety net only.
          return Step::wait(std::chrono::steady_clock::now() + std::chrono::seconds(2));
        };
      });
}

grpc::ServerUnaryReactor* ProxyBrokerService::CreateTopic(grpc::CallbackServerContext* context,
                                                          const bv1::CreateTopicRequest* request,
                                                          bv1::CreateTopicResponse* response) {
  return binding_.unary(context, [context, request, response](ProxyEngine& engine) {
    return create_topic(engine, deadline_of(context, engine), request, response);
  });
}

grpc::ServerUnaryReactor* ProxyBrokerService::AddPartitions(
    grpc::CallbackServerContext* context, const bv1::AddPartitionsRequest* request,
    bv1::AddPartitionsResponse* response) {
  return binding_.unary(context, [context, request, response](ProxyEngine& engine) {
    return add_partitions(engine, deadline_of(context, engine), request, response);
  });
}

grpc::ServerUnaryReactor* ProxyBrokerService::DeleteTopic(grpc::CallbackServerContext* context,
                                                          const bv1::DeleteTopicRequest* request,
                                                          bv1::DeleteTopicResponse*) {
  return binding_.unary(context, [context, request](ProxyEngine& engine) {
    return delete_topic(engine, deadline_of(context, engine), request);
  });
}

grpc::ServerUnaryReactor* ProxyBrokerService::ListTopics(grpc::CallbackServerContext* context,
                                                         const bv1::ListTopicsRequest* request,
                                                         bv1::ListTopicsResponse* response) {
  return binding_.unary(context, [context, request, response](ProxyEngine& engine) {
    return list_topics(engine, deadline_of(context, engine), request, response);
  });
}

grpc::ServerUnaryReactor* ProxyBrokerService::DescribeTopic(
    grpc::CallbackServerContext* context, const bv1::DescribeTopicRequest* request,
    bv1::DescribeTopicResponse* response) {
  return binding_.unary(context, [context, request, response](ProxyEngine& engine) {
    return describe_topic(engine, deadline_of(context, engine), request, response);
  });
}

grpc::ServerUnaryReactor* ProxyBrokerService::ListGroups(grpc::CallbackServerContext* context,
                                                         const bv1::ListGroupsRequest* request,
                                                         bv1::ListGroupsResponse* response) {
  return binding_.unary(context, [context, request, response](ProxyEngine& engine) {
    return list_groups(engine, deadline_of(context, engine), request, response);
  });
}

grpc::ServerUnaryReactor* ProxyBrokerService::DescribeGroup(
    grpc::CallbackServerContext* context, const bv1::DescribeGroupRequest* request,
    bv1::DescribeGroupResponse* response) {
  return binding_.unary(context, [context, request, response](ProxyEngine& engine) {
    return describe_group(engine, deadline_of(context, engine), request, response);
  });
}

grpc::ServerUnaryReactor* ProxyBrokerService::ResetOffsets(grpc::CallbackServerContext* context,
                                                           const bv1::ResetOffsetsRequest* request,
                                                           bv1::ResetOffsetsResponse* response) {
  return binding_.unary(context, [context, request, response](ProxyEngine& engine) {
    return reset_offsets(engine, deadline_of(context, engine), request, response);
  });
}

// Ack, Nack, ExtendVisibility and Commit: each owner gets its deliveries.
#define TELEKERN_PROXY_BY_DELIVERY(Method, function)                                          \
  grpc::ServerUnaryReactor* ProxyBrokerService::Method(grpc::CallbackServerContext* context,  \
                                                       const bv1::Method##Request* request,   \
                                                       bv1::Method##Response* response) {     \
    return binding_.unary_async(                                                              \
        context, [context, request, response](ProxyEngine& engine, Completion done) {         \
          function(engine, deadline_of(context, engine), request, response, std::move(done)); \
        });                                                                                   \
  }

TELEKERN_PROXY_BY_DELIVERY(Ack, ack)
TELEKERN_PROXY_BY_DELIVERY(Nack, nack)
TELEKERN_PROXY_BY_DELIVERY(ExtendVisibility, extend_visibility)
TELEKERN_PROXY_BY_DELIVERY(Commit, commit)

// ---- Proxy (admin) -------------------------------------------------------

namespace {

v1::UpstreamHealth to_proto(UpstreamHealth health) {
  switch (health) {
    case UpstreamHealth::kHealthy:
      return v1::UPSTREAM_HEALTH_HEALTHY;
    case UpstreamHealth::kUnhealthy:
      return v1::UPSTREAM_HEALTH_UNHEALTHY;
    case UpstreamHealth::kRejoining:
      return v1::UPSTREAM_HEALTH_REJOINING;
    case UpstreamHealth::kDraining:
      return v1::UPSTREAM_HEALTH_DRAINING;
  }
  return v1::UPSTREAM_HEALTH_UNSPECIFIED;
}

void to_proto(const RemapReport& report, v1::RemapReport* out) {
  out->set_reason(report.reason);
  out->set_sampled(report.sampled);
  out->set_moved(report.moved);
  out->set_moved_share(report.moved_share());
  for (const auto& move : report.moves) {
    auto* item = out->add_moves();
    item->set_from(move.from);
    item->set_to(move.to);
    item->set_partitions(move.partitions);
  }
}

v1::Algorithm to_proto(Algorithm algorithm) {
  return algorithm == Algorithm::kMaglev ? v1::ALGORITHM_MAGLEV : v1::ALGORITHM_RING;
}

}  // namespace

grpc::ServerUnaryReactor* ProxyAdminService::ListUpstreams(grpc::CallbackServerContext* context,
                                                           const v1::ListUpstreamsRequest*,
                                                           v1::ListUpstreamsResponse* response) {
  return binding_.unary(context, [response](ProxyEngine& engine) {
    response->set_algorithm(to_proto(engine.router().algorithm()));
    for (const auto& view : engine.router().view()) {
      auto* out = response->add_upstreams();
      out->set_address(view.address);
      out->set_health(to_proto(view.health));
      if (view.last_check.time_since_epoch().count() != 0) {
        *out->mutable_last_check() = google::protobuf::util::TimeUtil::MillisecondsToTimestamp(
            std::chrono::duration_cast<std::chrono::milliseconds>(
                view.last_check.time_since_epoch())
                .count());
      }
      out->set_last_error(view.last_error);
      out->set_share(view.share);
      out->set_home_share(view.home_share);
      out->set_in_flight(view.in_flight);
      out->set_calls(view.calls);
    }
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* ProxyAdminService::AddUpstream(grpc::CallbackServerContext* context,
                                                         const v1::AddUpstreamRequest* request,
                                                         v1::AddUpstreamResponse* response) {
  return binding_.unary(context, [request, response](ProxyEngine& engine) {
    auto report = engine.add_upstream(request->address());
    if (!report.ok()) return report.status();
    to_proto(*report, response->mutable_report());
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* ProxyAdminService::RemoveUpstream(
    grpc::CallbackServerContext* context, const v1::RemoveUpstreamRequest* request,
    v1::RemoveUpstreamResponse* response) {
  return binding_.unary(context, [request, response](ProxyEngine& engine) {
    auto report = engine.remove_upstream(request->address());
    if (!report.ok()) return report.status();
    to_proto(*report, response->mutable_report());
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* ProxyAdminService::DrainUpstream(grpc::CallbackServerContext* context,
                                                           const v1::DrainUpstreamRequest* request,
                                                           v1::DrainUpstreamResponse* response) {
  return binding_.unary(context, [request, response](ProxyEngine& engine) {
    auto report = engine.drain_upstream(request->address());
    if (!report.ok()) return report.status();
    to_proto(*report, response->mutable_report());
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* ProxyAdminService::RingStatus(grpc::CallbackServerContext* context,
                                                        const v1::RingStatusRequest* request,
                                                        v1::RingStatusResponse* response) {
  return binding_.unary(context, [request, response](ProxyEngine& engine) {
    response->set_algorithm(to_proto(engine.router().algorithm()));
    response->set_virtual_nodes(engine.router().virtual_nodes());
    std::string topic = request->topic().empty() ? "sample" : request->topic();
    uint32_t partitions = request->partitions() ? request->partitions() : 10000;
    auto owned = partitions_owned(engine, topic, partitions);
    uint64_t most = 0, routable = 0;
    for (const auto& view : engine.router().view()) {
      auto* member = response->add_members();
      member->set_address(view.address);
      member->set_points(view.points);
      member->set_share(view.share);
      member->set_partitions_owned(owned[view.address]);
      member->set_health(to_proto(view.health));
      if (view.health == UpstreamHealth::kHealthy) {
        ++routable;
        most = std::max(most, owned[view.address]);
      }
    }
    if (routable > 0)
      response->set_max_over_mean(double(most) / (double(partitions) / double(routable)));
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* ProxyAdminService::Locate(grpc::CallbackServerContext* context,
                                                    const v1::LocateRequest* request,
                                                    v1::LocateResponse* response) {
  return binding_.unary(context, [request, response](ProxyEngine& engine) {
    if (request->topic().empty())
      return absl::InvalidArgumentError("locate needs a topic: proxy locate TOPIC PARTITION");
    if (auto status = check_partition(engine, request->partition()); !status.ok()) return status;
    response->set_home(engine.router().home(request->topic(), request->partition()));
    auto upstream = engine.router().route(request->topic(), request->partition());
    if (upstream.ok()) response->set_upstream((*upstream)->address);
    response->set_failed_over(upstream.ok() && (*upstream)->address != response->home());
    return absl::OkStatus();
  });
}

}  // namespace telekern::proxy
