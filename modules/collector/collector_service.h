// The collector's face to clients: telekern.collector.v1.Collector,
// translating requests to engine calls and results back. No logic here.
#pragma once

#include <memory>

#include "collector_engine.h"
#include "telekern/collector/v1/collector.grpc.pb.h"
#include "telekern/service/engine_binding.h"
#include "telekern/service/local_unary.h"

namespace telekern::collector {

class CollectorService final : public v1::Collector::CallbackService,
                               public LocalUnaryMethods<CollectorService> {
 public:
  // Its unary methods may also run without gRPC (the HTTP gateway's calls).
  CollectorService() {
    serve_locally("IngestCsv", &CollectorService::IngestCsv);
    serve_locally("SubmitTelemetry", &CollectorService::SubmitTelemetry);
    serve_locally("ListGpus", &CollectorService::ListGpus);
    serve_locally("GetGpuTelemetry", &CollectorService::GetGpuTelemetry);
    serve_locally("ListHosts", &CollectorService::ListHosts);
    serve_locally("ListNamespaces", &CollectorService::ListNamespaces);
    serve_locally("GetStatus", &CollectorService::GetStatus);
  }

  // Serve with `engine` until withdraw(); streams end once `stop` is requested.
  void serve(std::shared_ptr<CollectorEngine> engine, std::stop_token stop) {
    binding_.serve(std::move(engine), std::move(stop));
  }
  void withdraw() { binding_.withdraw(); }

  grpc::ServerUnaryReactor* IngestCsv(grpc::CallbackServerContext* context,
                                      const v1::IngestCsvRequest* request,
                                      v1::IngestCsvResponse* response) override;
  grpc::ServerReadReactor<v1::IngestCsvStreamRequest>* IngestCsvStream(
      grpc::CallbackServerContext* context, v1::IngestCsvResponse* response) override;
  grpc::ServerUnaryReactor* SubmitTelemetry(grpc::CallbackServerContext* context,
                                            const v1::SubmitTelemetryRequest* request,
                                            v1::SubmitTelemetryResponse* response) override;
  grpc::ServerUnaryReactor* ListGpus(grpc::CallbackServerContext* context,
                                     const v1::ListGpusRequest* request,
                                     v1::ListGpusResponse* response) override;
  grpc::ServerUnaryReactor* GetGpuTelemetry(grpc::CallbackServerContext* context,
                                            const v1::GetGpuTelemetryRequest* request,
                                            v1::GetGpuTelemetryResponse* response) override;
  grpc::ServerUnaryReactor* ListHosts(grpc::CallbackServerContext* context,
                                      const v1::ListHostsRequest* request,
                                      v1::ListHostsResponse* response) override;
  grpc::ServerUnaryReactor* ListNamespaces(grpc::CallbackServerContext* context,
                                           const v1::ListNamespacesRequest* request,
                                           v1::ListNamespacesResponse* response) override;
  grpc::ServerWriteReactor<v1::WatchTelemetryResponse>* WatchTelemetry(
      grpc::CallbackServerContext* context, const v1::WatchTelemetryRequest* request) override;
  grpc::ServerUnaryReactor* GetStatus(grpc::CallbackServerContext* context,
                                      const v1::GetStatusRequest* request,
                                      v1::GetStatusResponse* response) override;

 private:
  EngineBinding<CollectorEngine> binding_{"collector"};
};

}  // namespace telekern::collector
