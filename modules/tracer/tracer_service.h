// telekern.tracer.v1.Tracer: request/response mapping only; the engine runs traces.
#pragma once

#include <memory>

#include "telekern/service/engine_binding.h"
#include "telekern/service/local_unary.h"
#include "telekern/tracer/v1/tracer.grpc.pb.h"
#include "trace_engine.h"

namespace telekern::tracer {

class TracerService final : public v1::Tracer::CallbackService,
                            public LocalUnaryMethods<TracerService> {
 public:
  // Its unary methods may also run without gRPC (the HTTP gateway's calls).
  TracerService() {
    serve_locally("ListTraces", &TracerService::ListTraces);
    serve_locally("GetTrace", &TracerService::GetTrace);
    serve_locally("RenderReport", &TracerService::RenderReport);
    serve_locally("GetReport", &TracerService::GetReport);
  }

  // Serve with `engine` until withdraw(); streams end once `stop` is requested.
  void serve(std::shared_ptr<TraceEngine> engine, std::stop_token stop) {
    binding_.serve(std::move(engine), std::move(stop));
  }
  void withdraw() { binding_.withdraw(); }

  grpc::ServerWriteReactor<v1::TraceDeviceResponse>* TraceDevice(
      grpc::CallbackServerContext* context, const v1::TraceDeviceRequest* request) override;
  grpc::ServerUnaryReactor* ListTraces(grpc::CallbackServerContext* context,
                                       const v1::ListTracesRequest* request,
                                       v1::ListTracesResponse* response) override;
  grpc::ServerUnaryReactor* GetTrace(grpc::CallbackServerContext* context,
                                     const v1::GetTraceRequest* request,
                                     v1::GetTraceResponse* response) override;
  grpc::ServerUnaryReactor* RenderReport(grpc::CallbackServerContext* context,
                                         const v1::RenderReportRequest* request,
                                         v1::RenderReportResponse* response) override;
  grpc::ServerUnaryReactor* GetReport(grpc::CallbackServerContext* context,
                                      const v1::GetReportRequest* request,
                                      v1::GetReportResponse* response) override;

 private:
  EngineBinding<TraceEngine> binding_{"tracer"};
};

}  // namespace telekern::tracer
