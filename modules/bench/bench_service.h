// telekern.bench.v1.Bench: request/response mapping over BenchEngine.
#pragma once

#include <memory>

#include "bench_engine.h"
#include "telekern/bench/v1/bench.grpc.pb.h"
#include "telekern/service/engine_binding.h"
#include "telekern/service/local_unary.h"

namespace telekern::bench {

class BenchService final : public v1::Bench::CallbackService,
                           public LocalUnaryMethods<BenchService> {
 public:
  // Its unary methods may also run without gRPC (the HTTP gateway's calls).
  BenchService() {
    serve_locally("ListRuns", &BenchService::ListRuns);
    serve_locally("GetRun", &BenchService::GetRun);
    serve_locally("RenderReport", &BenchService::RenderReport);
    serve_locally("GetReport", &BenchService::GetReport);
    serve_locally("Compare", &BenchService::Compare);
    serve_locally("CancelRun", &BenchService::CancelRun);
  }

  // Serve with `engine` until withdraw(); streams end once `stop` is requested.
  void serve(std::shared_ptr<BenchEngine> engine, std::stop_token stop) {
    binding_.serve(std::move(engine), std::move(stop));
  }
  void withdraw() { binding_.withdraw(); }

  grpc::ServerWriteReactor<v1::RunBenchmarkResponse>* RunBenchmark(
      grpc::CallbackServerContext* context, const v1::RunBenchmarkRequest* request) override;
  grpc::ServerUnaryReactor* ListRuns(grpc::CallbackServerContext* context,
                                     const v1::ListRunsRequest* request,
                                     v1::ListRunsResponse* response) override;
  grpc::ServerUnaryReactor* GetRun(grpc::CallbackServerContext* context,
                                   const v1::GetRunRequest* request,
                                   v1::GetRunResponse* response) override;
  grpc::ServerUnaryReactor* RenderReport(grpc::CallbackServerContext* context,
                                         const v1::RenderReportRequest* request,
                                         v1::RenderReportResponse* response) override;
  grpc::ServerUnaryReactor* GetReport(grpc::CallbackServerContext* context,
                                      const v1::GetReportRequest* request,
                                      v1::GetReportResponse* response) override;
  grpc::ServerUnaryReactor* Compare(grpc::CallbackServerContext* context,
                                    const v1::CompareRequest* request,
                                    v1::CompareResponse* response) override;
  grpc::ServerUnaryReactor* CancelRun(grpc::CallbackServerContext* context,
                                      const v1::CancelRunRequest* request,
                                      v1::CancelRunResponse* response) override;

 private:
  EngineBinding<BenchEngine> binding_{"bench"};
};

}  // namespace telekern::bench
