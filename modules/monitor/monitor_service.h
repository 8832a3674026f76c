// telekern.monitor.v1.Monitor: request/response mapping onto MonitorEngine.
// Unary work runs on the engine's queue; the Watch and ExportCsv streams run
// as sessions the module ends at stop.
#pragma once

#include <functional>
#include <memory>

#include "monitor_engine.h"
#include "telekern/module.h"
#include "telekern/monitor/v1/monitor.grpc.pb.h"
#include "telekern/service/engine_binding.h"
#include "telekern/service/local_unary.h"

namespace telekern::monitor {

using CallerLookup = std::function<Caller(const grpc::ServerContextBase&)>;

class MonitorService final : public v1::Monitor::CallbackService,
                             public LocalUnaryMethods<MonitorService> {
 public:
  // Its unary methods may also run without gRPC (the HTTP gateway's calls).
  MonitorService() {
    serve_locally("ListNodes", &MonitorService::ListNodes);
    serve_locally("GetNode", &MonitorService::GetNode);
    serve_locally("LatestMetrics", &MonitorService::LatestMetrics);
    serve_locally("MetricHistory", &MonitorService::MetricHistory);
    serve_locally("ListThresholds", &MonitorService::ListThresholds);
    serve_locally("UpsertThreshold", &MonitorService::UpsertThreshold);
    serve_locally("DeleteThreshold", &MonitorService::DeleteThreshold);
    serve_locally("ListAlerts", &MonitorService::ListAlerts);
    serve_locally("AcknowledgeAlert", &MonitorService::AcknowledgeAlert);
    serve_locally("AlertHistory", &MonitorService::AlertHistory);
    serve_locally("Summary", &MonitorService::Summary);
    serve_locally("Overview", &MonitorService::Overview);
    serve_locally("WhoAmI", &MonitorService::WhoAmI);
    serve_locally("CreateUser", &MonitorService::CreateUser);
    serve_locally("ListUsers", &MonitorService::ListUsers);
    serve_locally("DeleteUser", &MonitorService::DeleteUser);
  }

  void attach(std::shared_ptr<MonitorEngine> engine, CallerLookup caller) {
    {
      std::lock_guard lock(mutex_);
      caller_ = std::move(caller);
    }
    binding_.attach(std::move(engine));
  }
  void end_streams() { binding_.end_streams(); }
  void detach() { binding_.detach(); }

#define TELEKERN_MONITOR_UNARY(Method)                                   \
  grpc::ServerUnaryReactor* Method(grpc::CallbackServerContext* context, \
                                   const v1::Method##Request* request,   \
                                   v1::Method##Response* response) override;
  TELEKERN_MONITOR_UNARY(ListNodes)
  TELEKERN_MONITOR_UNARY(GetNode)
  TELEKERN_MONITOR_UNARY(LatestMetrics)
  TELEKERN_MONITOR_UNARY(MetricHistory)
  TELEKERN_MONITOR_UNARY(ListThresholds)
  TELEKERN_MONITOR_UNARY(UpsertThreshold)
  TELEKERN_MONITOR_UNARY(DeleteThreshold)
  TELEKERN_MONITOR_UNARY(ListAlerts)
  TELEKERN_MONITOR_UNARY(AcknowledgeAlert)
  TELEKERN_MONITOR_UNARY(AlertHistory)
  TELEKERN_MONITOR_UNARY(Summary)
  TELEKERN_MONITOR_UNARY(Overview)
  TELEKERN_MONITOR_UNARY(WhoAmI)
  TELEKERN_MONITOR_UNARY(CreateUser)
  TELEKERN_MONITOR_UNARY(ListUsers)
  TELEKERN_MONITOR_UNARY(DeleteUser)
#undef TELEKERN_MONITOR_UNARY

  grpc::ServerWriteReactor<v1::WatchMetricsResponse>* WatchMetrics(
      grpc::CallbackServerContext* context, const v1::WatchMetricsRequest* request) override;
  grpc::ServerWriteReactor<v1::WatchAlertsResponse>* WatchAlerts(
      grpc::CallbackServerContext* context, const v1::WatchAlertsRequest* request) override;
  grpc::ServerWriteReactor<v1::ExportCsvResponse>* ExportCsv(
      grpc::CallbackServerContext* context, const v1::ExportCsvRequest* request) override;

 private:
  Caller caller(const grpc::ServerContextBase& context) const;
  EngineBinding<MonitorEngine> binding_{"monitor"};
  mutable std::mutex mutex_;
  CallerLookup caller_;
};

}  // namespace telekern::monitor
