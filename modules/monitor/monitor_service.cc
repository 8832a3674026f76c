#include "monitor_service.h"

namespace telekern::monitor {
namespace {

constexpr auto kWatchPoll = std::chrono::milliseconds(200);

template <typename Items, typename Field>
void copy_all(const Items& items, Field* field) {
  for (const auto& item : items) *field->Add() = item;
}

telekern::options::v1::Role role_of(const std::string& role) {
  if (role == "admin") return telekern::options::v1::ROLE_ADMIN;
  if (role == "operator") return telekern::options::v1::ROLE_OPERATOR;
  if (role == "viewer") return telekern::options::v1::ROLE_VIEWER;
  return telekern::options::v1::ROLE_UNSPECIFIED;
}

}  // namespace

Caller MonitorService::caller(const grpc::ServerContextBase& context) const {
  std::lock_guard lock(mutex_);
  return caller_ ? caller_(context) : Caller{"anonymous", "admin"};
}

grpc::ServerUnaryReactor* MonitorService::ListNodes(grpc::CallbackServerContext* context,
                                                    const v1::ListNodesRequest* request,
                                                    v1::ListNodesResponse* response) {
  return binding_.unary(context, [request, response](MonitorEngine& engine) {
    copy_all(engine.list_nodes(request->status()), response->mutable_nodes());
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* MonitorService::GetNode(grpc::CallbackServerContext* context,
                                                  const v1::GetNodeRequest* request,
                                                  v1::GetNodeResponse* response) {
  return binding_.unary(context, [request, response](MonitorEngine& engine) {
    auto node = engine.get_node(request->node_id());
    if (!node.ok()) return node.status();
    *response = std::move(*node);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* MonitorService::LatestMetrics(grpc::CallbackServerContext* context,
                                                        const v1::LatestMetricsRequest* request,
                                                        v1::LatestMetricsResponse* response) {
  return binding_.unary(context, [request, response](MonitorEngine& engine) {
    copy_all(engine.latest(request->node_id()), response->mutable_samples());
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* MonitorService::MetricHistory(grpc::CallbackServerContext* context,
                                                        const v1::MetricHistoryRequest* request,
                                                        v1::MetricHistoryResponse* response) {
  return binding_.unary(context, [request, response](MonitorEngine& engine) {
    auto history = engine.history(*request);
    if (!history.ok()) return history.status();
    *response = std::move(*history);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* MonitorService::ListThresholds(grpc::CallbackServerContext* context,
                                                         const v1::ListThresholdsRequest* request,
                                                         v1::ListThresholdsResponse* response) {
  return binding_.unary(context, [request, response](MonitorEngine& engine) {
    copy_all(engine.list_thresholds(request->node_id(), request->metric()),
             response->mutable_thresholds());
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* MonitorService::UpsertThreshold(grpc::CallbackServerContext* context,
                                                          const v1::UpsertThresholdRequest* request,
                                                          v1::UpsertThresholdResponse* response) {
  std::string actor = caller(*context).subject;
  return binding_.unary(context, [request, response, actor](MonitorEngine& engine) {
    auto result = engine.upsert_threshold(*request, actor);
    if (!result.ok()) return result.status();
    *response = std::move(*result);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* MonitorService::DeleteThreshold(grpc::CallbackServerContext* context,
                                                          const v1::DeleteThresholdRequest* request,
                                                          v1::DeleteThresholdResponse* response) {
  std::string actor = caller(*context).subject;
  return binding_.unary(context, [request, response, actor](MonitorEngine& engine) {
    auto result = engine.delete_threshold(request->id(), actor);
    if (!result.ok()) return result.status();
    *response->mutable_threshold() = std::move(*result);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* MonitorService::ListAlerts(grpc::CallbackServerContext* context,
                                                     const v1::ListAlertsRequest* request,
                                                     v1::ListAlertsResponse* response) {
  return binding_.unary(context, [request, response](MonitorEngine& engine) {
    auto alerts = engine.list_alerts(*request);
    if (!alerts.ok()) return alerts.status();
    copy_all(*alerts, response->mutable_alerts());
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* MonitorService::AcknowledgeAlert(
    grpc::CallbackServerContext* context, const v1::AcknowledgeAlertRequest* request,
    v1::AcknowledgeAlertResponse* response) {
  std::string actor = caller(*context).subject;
  return binding_.unary(context, [request, response, actor](MonitorEngine& engine) {
    auto alert = engine.acknowledge(request->id(), actor, request->note());
    if (!alert.ok()) return alert.status();
    *response->mutable_alert() = std::move(*alert);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* MonitorService::AlertHistory(grpc::CallbackServerContext* context,
                                                       const v1::AlertHistoryRequest* request,
                                                       v1::AlertHistoryResponse* response) {
  return binding_.unary(context, [request, response](MonitorEngine& engine) {
    auto events = engine.alert_history(*request);
    if (!events.ok()) return events.status();
    copy_all(*events, response->mutable_events());
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* MonitorService::Summary(grpc::CallbackServerContext* context,
                                                  const v1::SummaryRequest* request,
                                                  v1::SummaryResponse* response) {
  return binding_.unary(context, [request, response](MonitorEngine& engine) {
    auto summary = engine.summary(*request);
    if (!summary.ok()) return summary.status();
    *response = std::move(*summary);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* MonitorService::Overview(grpc::CallbackServerContext* context,
                                                   const v1::OverviewRequest*,
                                                   v1::OverviewResponse* response) {
  return binding_.unary(context, [response](MonitorEngine& engine) {
    *response = engine.overview();
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* MonitorService::WhoAmI(grpc::CallbackServerContext* context,
                                                 const v1::WhoAmIRequest*,
                                                 v1::WhoAmIResponse* response) {
  Caller who = caller(*context);
  return binding_.unary(context, [response, who](MonitorEngine&) {
    response->set_name(who.subject);
    response->set_role(role_of(who.role));
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* MonitorService::CreateUser(grpc::CallbackServerContext* context,
                                                     const v1::CreateUserRequest* request,
                                                     v1::CreateUserResponse* response) {
  return binding_.unary(context, [request, response](MonitorEngine& engine) {
    auto user = engine.create_user(*request);
    if (!user.ok()) return user.status();
    *response->mutable_user() = std::move(*user);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* MonitorService::ListUsers(grpc::CallbackServerContext* context,
                                                    const v1::ListUsersRequest*,
                                                    v1::ListUsersResponse* response) {
  return binding_.unary(context, [response](MonitorEngine& engine) {
    auto users = engine.list_users();
    if (!users.ok()) return users.status();
    copy_all(*users, response->mutable_users());
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* MonitorService::DeleteUser(grpc::CallbackServerContext* context,
                                                     const v1::DeleteUserRequest* request,
                                                     v1::DeleteUserResponse*) {
  return binding_.unary(
      context, [request](MonitorEngine& engine) { return engine.delete_user(request->name()); });
}

grpc::ServerWriteReactor<v1::WatchMetricsResponse>* MonitorService::WatchMetrics(
    grpc::CallbackServerContext* context, const v1::WatchMetricsRequest* request) {
  std::string node_id = request->node_id();
  return binding_.server_stream<v1::WatchMetricsResponse>(
      context,
      [node_id](MonitorEngine& engine, StreamWriter<v1::WatchMetricsResponse>& writer,
                std::stop_token stop) -> absl::Status {
        auto subscription = engine.watch_metrics();
        while (!stop.stop_requested()) {
          auto event = subscription->next(kWatchPoll);
          if (!event) {
            if (subscription->overflowed())
              return subscription->overflow_status("WatchMetrics", "samples");
            continue;
          }
          if (!node_id.empty() && event->sample().node_id() != node_id) continue;
          if (!writer.write(*event)) return absl::OkStatus();
        }
        return absl::OkStatus();
      });
}

grpc::ServerWriteReactor<v1::WatchAlertsResponse>* MonitorService::WatchAlerts(
    grpc::CallbackServerContext* context, const v1::WatchAlertsRequest* request) {
  std::string node_id = request->node_id();
  auto min_severity = request->min_severity();
  return binding_.server_stream<v1::WatchAlertsResponse>(
      context,
      [node_id, min_severity](MonitorEngine& engine, StreamWriter<v1::WatchAlertsResponse>& writer,
                              std::stop_token stop) -> absl::Status {
        auto wanted = [&](const v1::Alert& alert) {
          return (node_id.empty() || alert.node_id() == node_id) &&
                 alert.severity() >= min_severity;
        };
        std::vector<v1::Alert> open;
        auto subscription = engine.watch_alerts(&open);
        for (const auto& alert : open) {
          if (!wanted(alert)) continue;
          v1::WatchAlertsResponse initial;
          *initial.mutable_alert() = alert;
          initial.set_initial(true);
          if (!writer.write(initial)) return absl::OkStatus();
        }
        while (!stop.stop_requested()) {
          auto event = subscription->next(kWatchPoll);
          if (!event) {
            if (subscription->overflowed())
              return subscription->overflow_status("WatchAlerts", "alert changes");
            continue;
          }
          if (!wanted(event->alert())) continue;
          if (!writer.write(*event)) return absl::OkStatus();
        }
        return absl::OkStatus();
      });
}

grpc::ServerWriteReactor<v1::ExportCsvResponse>* MonitorService::ExportCsv(
    grpc::CallbackServerContext* context, const v1::ExportCsvRequest* request) {
  v1::ExportCsvRequest copy = *request;
  return binding_.server_stream<v1::ExportCsvResponse>(
      context,
      [copy](MonitorEngine& engine, StreamWriter<v1::ExportCsvResponse>& writer,
             std::stop_token stop) -> absl::Status {
        return engine.export_csv(copy, 64 * 1024, [&](std::string chunk, uint64_t rows) {
          if (stop.stop_requested()) return false;
          v1::ExportCsvResponse response;
          response.set_data(std::move(chunk));
          response.set_rows(rows);
          return writer.write(response);
        });
      });
}

}  // namespace telekern::monitor
