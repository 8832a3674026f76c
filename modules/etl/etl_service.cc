#include "etl_service.h"

#include "telekern/proto_time.h"

namespace telekern::etl {
namespace {

v1::PipelineState to_proto(PipelineState state) {
  switch (state) {
    case PipelineState::kRunning:
      return v1::PIPELINE_STATE_RUNNING;
    case PipelineState::kRetrying:
      return v1::PIPELINE_STATE_RETRYING;
    case PipelineState::kStopped:
      return v1::PIPELINE_STATE_STOPPED;
    case PipelineState::kFailed:
      return v1::PIPELINE_STATE_FAILED;
  }
  return v1::PIPELINE_STATE_UNSPECIFIED;
}

void fill(const PipelineView& view, v1::PipelineStatus* out) {
  const auto& c = view.counters;
  out->set_name(view.spec.name);
  out->set_type(std::string(type_name(view.spec.type)));
  out->set_state(to_proto(c.state));
  out->set_last_error(c.last_error);
  if (c.last_error_time.time_since_epoch().count() != 0) {
    auto ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(c.last_error_time.time_since_epoch())
            .count();
    out->mutable_last_error_time()->set_seconds(ms / 1000);
    out->mutable_last_error_time()->set_nanos(static_cast<int32_t>(ms % 1000) * 1000000);
  }
  for (const auto& name : view.processors) out->add_processors(name);
  out->set_messages(c.messages);
  out->set_rows_written(c.rows_written);
  out->set_messages_per_second(c.messages_per_second);
  out->set_rows_per_second(c.rows_per_second);
  out->set_pending_messages(c.pending);
  out->set_consumer_lag(c.consumer_lag);
  out->set_batches(c.batches);
  out->set_errors(c.errors);
}

void fill_counts(const std::map<std::string, uint64_t>& counts,
                 google::protobuf::RepeatedPtrField<v1::CountByLabel>* out) {
  for (const auto& [label, count] : counts) {
    auto* item = out->Add();
    item->set_label(label);
    item->set_count(count);
  }
}

}  // namespace

grpc::ServerUnaryReactor* EtlService::ListPipelines(grpc::CallbackServerContext* context,
                                                    const v1::ListPipelinesRequest*,
                                                    v1::ListPipelinesResponse* response) {
  return binding_.unary(context, [response](EtlEngine& engine) {
    for (const auto& view : engine.list()) fill(view, response->add_pipelines());
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* EtlService::StartPipeline(grpc::CallbackServerContext* context,
                                                    const v1::StartPipelineRequest* request,
                                                    v1::StartPipelineResponse* response) {
  return binding_.unary(context, [request, response](EtlEngine& engine) -> absl::Status {
    auto view = engine.start_pipeline(request->name(), request->yaml(), request->file());
    if (!view.ok()) return view.status();
    fill(*view, response->mutable_pipeline());
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* EtlService::StopPipeline(grpc::CallbackServerContext* context,
                                                   const v1::StopPipelineRequest* request,
                                                   v1::StopPipelineResponse* response) {
  return binding_.unary(context, [request, response](EtlEngine& engine) -> absl::Status {
    auto view = engine.stop_pipeline(request->name());
    if (!view.ok()) return view.status();
    fill(*view, response->mutable_pipeline());
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* EtlService::PipelineStats(grpc::CallbackServerContext* context,
                                                    const v1::PipelineStatsRequest* request,
                                                    v1::PipelineStatsResponse* response) {
  return binding_.unary(context, [request, response](EtlEngine& engine) -> absl::Status {
    auto view = engine.view(request->name());
    if (!view.ok()) return view.status();
    fill(*view, response->mutable_pipeline());
    fill_counts(view->counters.rows_by_table, response->mutable_rows_by_table());
    fill_counts(view->counters.messages_by_processor, response->mutable_messages_by_processor());
    fill_counts(view->counters.errors_by_reason, response->mutable_errors_by_reason());
    fill_counts(view->counters.lag_by_partition, response->mutable_lag_by_partition());
    fill_counts(view->counters.pending_by_partition, response->mutable_pending_by_partition());
    response->set_batch_rows_max(view->counters.batch_rows_max);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* EtlService::ListProcessors(grpc::CallbackServerContext* context,
                                                     const v1::ListProcessorsRequest*,
                                                     v1::ListProcessorsResponse* response) {
  return binding_.unary(context, [response](EtlEngine& engine) {
    for (const auto& description : engine.processors()) {
      auto* out = response->add_processors();
      out->set_name(description.name);
      out->set_description(description.description);
      out->set_matches(description.matches);
      out->set_table(description.table);
      out->set_store(description.store == Store::kRedis ? "redis" : "clickhouse");
    }
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* EtlService::DryRun(grpc::CallbackServerContext* context,
                                             const v1::DryRunRequest* request,
                                             v1::DryRunResponse* response) {
  return binding_.unary(context, [request, response](EtlEngine& engine) -> absl::Status {
    auto result = engine.dry_run(request->processor(), request->message(), request->yaml());
    if (!result.ok()) return result.status();
    response->set_matched(result->matched);
    for (const auto& row : result->rows) {
      auto* out = response->add_rows();
      out->set_processor(row.processor);
      out->set_table(row.table);
      out->set_json(row.json);
    }
    for (const auto& [processor, reason] : result->rejected) {
      auto* out = response->add_rejected();
      out->set_label(processor + ": " + reason);
      out->set_count(1);
    }
    return absl::OkStatus();
  });
}

}  // namespace telekern::etl
