// The gRPC adapter of telekern.broker.v1.Broker: translates messages and
// hands the work to the engine through an EngineBinding (broker threads for
// unary calls, session threads for Consume). No business logic lives here.
#pragma once

#include <memory>

#include "broker.h"
#include "telekern/broker/v1/broker.grpc.pb.h"
#include "telekern/service/engine_binding.h"
#include "telekern/service/local_unary.h"

namespace telekern::broker {

// Its unary methods may also run without gRPC (the HTTP gateway's calls).
class BrokerService final : public v1::Broker::CallbackService,
                            public LocalUnaryMethods<BrokerService> {
 public:
  BrokerService();

  // Serve with `engine` until withdraw(); open Consume streams end as soon as
  // `stop` is requested (they never end by themselves).
  void serve(std::shared_ptr<Broker> engine, std::stop_token stop) {
    binding_.serve(std::move(engine), std::move(stop));
  }
  void withdraw() { binding_.withdraw(); }

  grpc::ServerUnaryReactor* CreateTopic(grpc::CallbackServerContext* context,
                                        const v1::CreateTopicRequest* request,
                                        v1::CreateTopicResponse* response) override;
  grpc::ServerUnaryReactor* DeleteTopic(grpc::CallbackServerContext* context,
                                        const v1::DeleteTopicRequest* request,
                                        v1::DeleteTopicResponse* response) override;
  grpc::ServerUnaryReactor* ListTopics(grpc::CallbackServerContext* context,
                                       const v1::ListTopicsRequest* request,
                                       v1::ListTopicsResponse* response) override;
  grpc::ServerUnaryReactor* DescribeTopic(grpc::CallbackServerContext* context,
                                          const v1::DescribeTopicRequest* request,
                                          v1::DescribeTopicResponse* response) override;
  grpc::ServerUnaryReactor* AddPartitions(grpc::CallbackServerContext* context,
                                          const v1::AddPartitionsRequest* request,
                                          v1::AddPartitionsResponse* response) override;
  grpc::ServerUnaryReactor* Produce(grpc::CallbackServerContext* context,
                                    const v1::ProduceRequest* request,
                                    v1::ProduceResponse* response) override;
  grpc::ServerBidiReactor<v1::ProduceRequest, v1::ProduceResponse>* ProduceStream(
      grpc::CallbackServerContext* context) override;
  grpc::ServerWriteReactor<v1::ConsumeResponse>* Consume(
      grpc::CallbackServerContext* context, const v1::ConsumeRequest* request) override;
  grpc::ServerUnaryReactor* Ack(grpc::CallbackServerContext* context, const v1::AckRequest* request,
                                v1::AckResponse* response) override;
  grpc::ServerUnaryReactor* Nack(grpc::CallbackServerContext* context,
                                 const v1::NackRequest* request,
                                 v1::NackResponse* response) override;
  grpc::ServerUnaryReactor* ExtendVisibility(grpc::CallbackServerContext* context,
                                             const v1::ExtendVisibilityRequest* request,
                                             v1::ExtendVisibilityResponse* response) override;
  grpc::ServerUnaryReactor* Commit(grpc::CallbackServerContext* context,
                                   const v1::CommitRequest* request,
                                   v1::CommitResponse* response) override;
  grpc::ServerUnaryReactor* ListGroups(grpc::CallbackServerContext* context,
                                       const v1::ListGroupsRequest* request,
                                       v1::ListGroupsResponse* response) override;
  grpc::ServerUnaryReactor* DescribeGroup(grpc::CallbackServerContext* context,
                                          const v1::DescribeGroupRequest* request,
                                          v1::DescribeGroupResponse* response) override;
  grpc::ServerUnaryReactor* ResetOffsets(grpc::CallbackServerContext* context,
                                         const v1::ResetOffsetsRequest* request,
                                         v1::ResetOffsetsResponse* response) override;

 private:
  EngineBinding<Broker> binding_{"broker"};
};

}  // namespace telekern::broker
