// The proxy's face to clients: telekern.broker.v1.Broker, served by
// forwarding each call to the upstreams owning its partitions (consume_fanout
// and forwarder carry the mechanics), and the admin service
// telekern.proxy.v1.Proxy. Request/response mapping only; routing lives in
// the engine.
#pragma once

#include <memory>

#include "proxy_engine.h"
#include "telekern/broker/v1/broker.grpc.pb.h"
#include "telekern/proxy/v1/proxy.grpc.pb.h"
#include "telekern/service/engine_binding.h"
#include "telekern/service/local_unary.h"

namespace telekern::proxy {

// Produce is a raw method (bytes in, bytes out): see produce_bytes.h.
class ProxyBrokerService final : public broker::v1::Broker::WithRawCallbackMethod_Produce<
                                     broker::v1::Broker::CallbackService> {
 public:
  void attach(std::shared_ptr<ProxyEngine> engine) { binding_.attach(std::move(engine)); }
  void end_streams() { binding_.end_streams(); }
  void detach() { binding_.detach(); }

  grpc::ServerUnaryReactor* CreateTopic(grpc::CallbackServerContext* context,
                                        const broker::v1::CreateTopicRequest* request,
                                        broker::v1::CreateTopicResponse* response) override;
  grpc::ServerUnaryReactor* DeleteTopic(grpc::CallbackServerContext* context,
                                        const broker::v1::DeleteTopicRequest* request,
                                        broker::v1::DeleteTopicResponse* response) override;
  grpc::ServerUnaryReactor* ListTopics(grpc::CallbackServerContext* context,
                                       const broker::v1::ListTopicsRequest* request,
                                       broker::v1::ListTopicsResponse* response) override;
  grpc::ServerUnaryReactor* DescribeTopic(grpc::CallbackServerContext* context,
                                          const broker::v1::DescribeTopicRequest* request,
                                          broker::v1::DescribeTopicResponse* response) override;
  grpc::ServerUnaryReactor* AddPartitions(grpc::CallbackServerContext* context,
                                          const broker::v1::AddPartitionsRequest* request,
                                          broker::v1::AddPartitionsResponse* response) override;
  grpc::ServerUnaryReactor* Produce(grpc::CallbackServerContext* context,
                                    const grpc::ByteBuffer* request,
                                    grpc::ByteBuffer* response) override;
  grpc::ServerBidiReactor<broker::v1::ProduceRequest, broker::v1::ProduceResponse>* ProduceStream(
      grpc::CallbackServerContext* context) override;
  grpc::ServerWriteReactor<broker::v1::ConsumeResponse>* Consume(
      grpc::CallbackServerContext* context, const broker::v1::ConsumeRequest* request) override;
  grpc::ServerUnaryReactor* Ack(grpc::CallbackServerContext* context,
                                const broker::v1::AckRequest* request,
                                broker::v1::AckResponse* response) override;
  grpc::ServerUnaryReactor* Nack(grpc::CallbackServerContext* context,
                                 const broker::v1::NackRequest* request,
                                 broker::v1::NackResponse* response) override;
  grpc::ServerUnaryReactor* ExtendVisibility(
      grpc::CallbackServerContext* context, const broker::v1::ExtendVisibilityRequest* request,
      broker::v1::ExtendVisibilityResponse* response) override;
  grpc::ServerUnaryReactor* Commit(grpc::CallbackServerContext* context,
                                   const broker::v1::CommitRequest* request,
                                   broker::v1::CommitResponse* response) override;
  grpc::ServerUnaryReactor* ListGroups(grpc::CallbackServerContext* context,
                                       const broker::v1::ListGroupsRequest* request,
                                       broker::v1::ListGroupsResponse* response) override;
  grpc::ServerUnaryReactor* DescribeGroup(grpc::CallbackServerContext* context,
                                          const broker::v1::DescribeGroupRequest* request,
                                          broker::v1::DescribeGroupResponse* response) override;
  grpc::ServerUnaryReactor* ResetOffsets(grpc::CallbackServerContext* context,
                                         const broker::v1::ResetOffsetsRequest* request,
                                         broker::v1::ResetOffsetsResponse* response) override;

 private:
  EngineBinding<ProxyEngine> binding_{"proxy"};
};

class ProxyAdminService final : public v1::Proxy::CallbackService,
                                public LocalUnaryMethods<ProxyAdminService> {
 public:
  // Its unary methods may also run without gRPC (the HTTP gateway's calls).
  ProxyAdminService() {
    serve_locally("ListUpstreams", &ProxyAdminService::ListUpstreams);
    serve_locally("AddUpstream", &ProxyAdminService::AddUpstream);
    serve_locally("RemoveUpstream", &ProxyAdminService::RemoveUpstream);
    serve_locally("DrainUpstream", &ProxyAdminService::DrainUpstream);
    serve_locally("RingStatus", &ProxyAdminService::RingStatus);
    serve_locally("Locate", &ProxyAdminService::Locate);
  }

  void attach(std::shared_ptr<ProxyEngine> engine) { binding_.attach(std::move(engine)); }
  void detach() { binding_.detach(); }

  grpc::ServerUnaryReactor* ListUpstreams(grpc::CallbackServerContext* context,
                                          const v1::ListUpstreamsRequest* request,
                                          v1::ListUpstreamsResponse* response) override;
  grpc::ServerUnaryReactor* AddUpstream(grpc::CallbackServerContext* context,
                                        const v1::AddUpstreamRequest* request,
                                        v1::AddUpstreamResponse* response) override;
  grpc::ServerUnaryReactor* RemoveUpstream(grpc::CallbackServerContext* context,
                                           const v1::RemoveUpstreamRequest* request,
                                           v1::RemoveUpstreamResponse* response) override;
  grpc::ServerUnaryReactor* DrainUpstream(grpc::CallbackServerContext* context,
                                          const v1::DrainUpstreamRequest* request,
                                          v1::DrainUpstreamResponse* response) override;
  grpc::ServerUnaryReactor* RingStatus(grpc::CallbackServerContext* context,
                                       const v1::RingStatusRequest* request,
                                       v1::RingStatusResponse* response) override;
  grpc::ServerUnaryReactor* Locate(grpc::CallbackServerContext* context,
                                   const v1::LocateRequest* request,
                                   v1::LocateResponse* response) override;

 private:
  EngineBinding<ProxyEngine> binding_{"proxy"};
};

}  // namespace telekern::proxy
