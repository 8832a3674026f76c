#include "tracer_service.h"

namespace telekern::tracer {
namespace {

// Forwards what a trace reports to the client's stream.
class StreamObserver final : public TraceObserver {
 public:
  explicit StreamObserver(StreamWriter<v1::TraceDeviceResponse>& writer) : writer_(writer) {}
  bool progress(const v1::Progress& progress) override {
    done_ = progress.units_done();
    total_ = progress.units_total();
    v1::TraceDeviceResponse response;
    *response.mutable_progress() = progress;
    return write(response);
  }
  bool event(const v1::Event& event) override {
    v1::TraceDeviceResponse response;
    *response.mutable_event() = event;
    return write(response);
  }
  bool write(v1::TraceDeviceResponse& response) {
    response.set_done(done_);
    response.set_total(total_);
    return writer_.write(response);
  }

 private:
  uint32_t done_ = 0;
  uint32_t total_ = 0;
  StreamWriter<v1::TraceDeviceResponse>& writer_;
};

}  // namespace

grpc::ServerWriteReactor<v1::TraceDeviceResponse>* TracerService::TraceDevice(
    grpc::CallbackServerContext* context, const v1::TraceDeviceRequest* request) {
  return binding_.server_stream<v1::TraceDeviceResponse>(
      context,
      [request = *request](TraceEngine& engine, StreamWriter<v1::TraceDeviceResponse>& writer,
                           std::stop_token stop) -> absl::Status {
        StreamObserver observer(writer);
        auto summary = engine.trace(request, observer, stop);
        if (!summary.ok()) return summary.status();
        v1::TraceDeviceResponse response;
        *response.mutable_summary() = std::move(*summary);
        observer.write(response);
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* TracerService::ListTraces(grpc::CallbackServerContext* context,
                                                    const v1::ListTracesRequest* request,
                                                    v1::ListTracesResponse* response) {
  return binding_.unary(context, [request, response](TraceEngine& engine) {
    auto result = engine.list_traces(*request);
    if (!result.ok()) return result.status();
    *response = std::move(*result);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* TracerService::GetTrace(grpc::CallbackServerContext* context,
                                                  const v1::GetTraceRequest* request,
                                                  v1::GetTraceResponse* response) {
  return binding_.unary(context, [request, response](TraceEngine& engine) {
    auto result = engine.get_trace(*request);
    if (!result.ok()) return result.status();
    *response = std::move(*result);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* TracerService::RenderReport(grpc::CallbackServerContext* context,
                                                      const v1::RenderReportRequest* request,
                                                      v1::RenderReportResponse* response) {
  return binding_.unary(context, [request, response](TraceEngine& engine) {
    auto result = engine.render_report(*request);
    if (!result.ok()) return result.status();
    *response = std::move(*result);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* TracerService::GetReport(grpc::CallbackServerContext* context,
                                                   const v1::GetReportRequest* request,
                                                   v1::GetReportResponse* response) {
  return binding_.unary(context, [request, response](TraceEngine& engine) {
    auto result = engine.get_report(*request);
    if (!result.ok()) return result.status();
    *response = std::move(*result);
    return absl::OkStatus();
  });
}

}  // namespace telekern::tracer
