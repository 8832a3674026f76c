#include "bench_service.h"

#include <algorithm>
#include <cmath>

#include "telekern/proto_time.h"

namespace telekern::bench {
namespace {

void to_proto(const LatencyFigures& f, v1::LatencyPercentiles* out) {
  out->set_avg(f.avg);
  out->set_p50(f.p50);
  out->set_p75(f.p75);
  out->set_p95(f.p95);
  out->set_p99(f.p99);
  out->set_p999(f.p999);
  out->set_p9999(f.p9999);
  out->set_max(f.max);
}

void to_proto(const WindowStats& w, v1::WindowStats* out) {
  out->set_index(w.index);
  out->set_warmup(w.warmup);
  out->set_elapsed_seconds(w.elapsed_seconds);
  out->set_publish_rate(w.publish_rate);
  out->set_publish_mb_per_second(w.publish_mb);
  out->set_consume_rate(w.consume_rate);
  out->set_consume_mb_per_second(w.consume_mb);
  out->set_backlog(w.backlog);
  out->set_publish_error_rate(w.publish_error_rate);
  to_proto(w.publish_latency, out->mutable_publish_latency());
  to_proto(w.end_to_end_latency, out->mutable_end_to_end_latency());
  to_proto(w.publish_delay, out->mutable_publish_delay());
}

void to_proto(const RunSummary& s, v1::RunSummary* out) {
  out->set_run_id(s.id);
  out->set_workload(s.workload);
  out->set_driver(s.driver);
  out->set_state(s.state);
  out->set_started(s.started);
  out->set_valid(s.valid);
  out->set_publish_rate(s.publish_rate);
  out->set_publish_p99_ms(s.publish_p99_ms);
  out->set_end_to_end_p99_ms(s.end_to_end_p99_ms);
  out->set_error(s.error);
}

RunRequest from_proto(const v1::RunBenchmarkRequest& in) {
  RunRequest out;
  out.workload = in.workload();
  out.driver = in.driver();
  if (in.has_report()) out.report = in.report();
  if (in.has_window()) out.window = to_milliseconds(in.window());
  if (in.has_duration()) out.duration = to_milliseconds(in.duration());
  if (in.has_warmup()) out.warmup = to_milliseconds(in.warmup());
  if (in.has_health_interval()) out.health_interval = to_milliseconds(in.health_interval());
  out.health_targets.assign(in.health_targets().begin(), in.health_targets().end());
  return out;
}

}  // namespace

grpc::ServerWriteReactor<v1::RunBenchmarkResponse>* BenchService::RunBenchmark(
    grpc::CallbackServerContext* context, const v1::RunBenchmarkRequest* request) {
  RunRequest run = from_proto(*request);
  return binding_.server_stream<v1::RunBenchmarkResponse>(
      context,
      [run = std::move(run)](BenchEngine& engine, StreamWriter<v1::RunBenchmarkResponse>& writer,
                             std::stop_token stop) -> absl::Status {
        // A client that cancels the call cancels the run; what ran is stored, flagged.
        auto result = engine.run(run, stop, [&writer](const Progress& p) {
          v1::RunBenchmarkResponse response;
          response.set_run_id(p.run_id);
          response.set_planned_seconds(p.planned_seconds);
          switch (p.kind) {
            case Progress::Kind::kStarted:
              response.set_started(true);
              break;
            case Progress::Kind::kWindow:
              response.set_elapsed_seconds(p.window.elapsed_seconds);
              to_proto(p.window, response.mutable_window());
              break;
            case Progress::Kind::kFinished:
              response.set_elapsed_seconds(p.planned_seconds);
              to_proto(p.summary, response.mutable_finished());
              response.set_report_path(p.report_path);
              for (const auto& r : p.invalid_reasons) response.add_invalid_reasons(r);
              for (const auto& f : p.health_failures) response.add_health_failures(f);
              break;
          }
          response.set_total(static_cast<uint32_t>(std::ceil(p.planned_seconds)));
          response.set_done(
              std::min(response.total(), static_cast<uint32_t>(response.elapsed_seconds())));
          writer.write(response);
        });
        return result.status();
      });
}

grpc::ServerUnaryReactor* BenchService::ListRuns(grpc::CallbackServerContext* context,
                                                 const v1::ListRunsRequest*,
                                                 v1::ListRunsResponse* response) {
  return binding_.unary(context, [response](BenchEngine& engine) {
    for (const auto& run : engine.list()) to_proto(run, response->add_runs());
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* BenchService::GetRun(grpc::CallbackServerContext* context,
                                               const v1::GetRunRequest* request,
                                               v1::GetRunResponse* response) {
  return binding_.unary(context, [request, response](BenchEngine& engine) -> absl::Status {
    auto summary = engine.store().summary(request->run_id());
    if (!summary.ok()) return summary.status();
    to_proto(*summary, response->mutable_summary());
    response->set_directory(engine.store().dir(request->run_id()).string());
    auto result = engine.get(request->run_id());
    if (result.ok()) response->set_result_json(result->dump());
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* BenchService::RenderReport(grpc::CallbackServerContext* context,
                                                     const v1::RenderReportRequest* request,
                                                     v1::RenderReportResponse* response) {
  return binding_.unary(context, [request, response](BenchEngine& engine) -> absl::Status {
    auto path = engine.render_report(request->run_id());
    if (!path.ok()) return path.status();
    response->set_path(path->string());
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* BenchService::GetReport(grpc::CallbackServerContext* context,
                                                  const v1::GetReportRequest* request,
                                                  v1::GetReportResponse* response) {
  return binding_.unary(context, [request, response](BenchEngine& engine) -> absl::Status {
    if (auto status = engine.store().check_id(request->run_id()); !status.ok()) return status;
    auto html = engine.store().read_file(request->run_id(), "report/index.html");
    if (!html.ok()) {
      auto path = engine.render_report(request->run_id());
      if (!path.ok()) return path.status();
      html = engine.store().read_file(request->run_id(), "report/index.html");
      if (!html.ok()) return html.status();
    }
    response->set_html(std::move(*html));
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* BenchService::Compare(grpc::CallbackServerContext* context,
                                                const v1::CompareRequest* request,
                                                v1::CompareResponse* response) {
  return binding_.unary(context, [request, response](BenchEngine& engine) -> absl::Status {
    std::vector<std::string> ids(request->run_ids().begin(), request->run_ids().end());
    auto report = engine.compare(ids);
    if (!report.ok()) return report.status();
    for (const auto& h : report->comparison.header) response->add_header(h);
    for (const auto& row : report->comparison.rows) {
      auto* out = response->add_rows();
      for (const auto& cell : row) out->add_cells(cell);
    }
    for (const auto& r : report->comparison.regressions) response->add_regressions(r);
    response->set_report_path(report->path.string());
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* BenchService::CancelRun(grpc::CallbackServerContext* context,
                                                  const v1::CancelRunRequest* request,
                                                  v1::CancelRunResponse*) {
  return binding_.unary(
      context, [request](BenchEngine& engine) { return engine.cancel(request->run_id()); });
}

}  // namespace telekern::bench
