// telekern.etl.v1.Etl: request/response mapping over EtlEngine.
#pragma once

#include "etl_engine.h"
#include "telekern/etl/v1/etl.grpc.pb.h"
#include "telekern/service/engine_binding.h"
#include "telekern/service/local_unary.h"

namespace telekern::etl {

class EtlService final : public v1::Etl::CallbackService, public LocalUnaryMethods<EtlService> {
 public:
  // Its unary methods may also run without gRPC (the HTTP gateway's calls).
  EtlService() {
    serve_locally("ListPipelines", &EtlService::ListPipelines);
    serve_locally("StartPipeline", &EtlService::StartPipeline);
    serve_locally("StopPipeline", &EtlService::StopPipeline);
    serve_locally("PipelineStats", &EtlService::PipelineStats);
    serve_locally("ListProcessors", &EtlService::ListProcessors);
    serve_locally("DryRun", &EtlService::DryRun);
  }

  void attach(std::shared_ptr<EtlEngine> engine) { binding_.attach(std::move(engine)); }
  void detach() { binding_.detach(); }

  grpc::ServerUnaryReactor* ListPipelines(grpc::CallbackServerContext* context,
                                          const v1::ListPipelinesRequest* request,
                                          v1::ListPipelinesResponse* response) override;
  grpc::ServerUnaryReactor* StartPipeline(grpc::CallbackServerContext* context,
                                          const v1::StartPipelineRequest* request,
                                          v1::StartPipelineResponse* response) override;
  grpc::ServerUnaryReactor* StopPipeline(grpc::CallbackServerContext* context,
                                         const v1::StopPipelineRequest* request,
                                         v1::StopPipelineResponse* response) override;
  grpc::ServerUnaryReactor* PipelineStats(grpc::CallbackServerContext* context,
                                          const v1::PipelineStatsRequest* request,
                                          v1::PipelineStatsResponse* response) override;
  grpc::ServerUnaryReactor* ListProcessors(grpc::CallbackServerContext* context,
                                           const v1::ListProcessorsRequest* request,
                                           v1::ListProcessorsResponse* response) override;
  grpc::ServerUnaryReactor* DryRun(grpc::CallbackServerContext* context,
                                   const v1::DryRunRequest* request,
                                   v1::DryRunResponse* response) override;

 private:
  EngineBinding<EtlEngine> binding_{"etl"};
};

}  // namespace telekern::etl
