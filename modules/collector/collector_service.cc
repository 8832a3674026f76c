#include "collector_service.h"

#include "telekern/proto_time.h"
#include "telekern/strings.h"

namespace telekern::collector {
namespace {

constexpr uint32_t kDefaultLimit = 1000;
constexpr uint32_t kMaxLimit = 10000;

void to_proto(const TelemetryPoint& point, v1::TelemetryPoint* out) {
  *out->mutable_time() = to_timestamp(point.time);
  out->set_metric_name(point.metric_name);
  out->set_gpu_id(point.gpu_id);
  out->set_device(point.device);
  out->set_uuid(point.uuid);
  out->set_model_name(point.model_name);
  out->set_hostname(point.hostname);
  out->set_container(point.container);
  out->set_pod(point.pod);
  out->set_namespace_(point.namespace_name);
  out->set_value(point.value);
  out->set_labels_raw(point.labels_raw);
}

absl::StatusOr<TelemetryQuery> to_query(const v1::GetGpuTelemetryRequest& request) {
  if (request.id().empty()) return absl::InvalidArgumentError("id (GPU uuid or device) is empty");
  TelemetryQuery query;
  query.gpu = request.id();
  query.end = request.has_end() ? from_timestamp(request.end()) : std::chrono::system_clock::now();
  if (request.has_start()) {
    query.start = from_timestamp(request.start());
  } else {
    auto since = request.has_since() ? to_milliseconds(request.since()) : std::chrono::hours(1);
    query.start = query.end - since;
  }
  if (query.start > query.end)
    return absl::InvalidArgumentError(
        str_cat("start ", format_time(query.start), " is after end ", format_time(query.end)));
  query.metrics.assign(request.metric().begin(), request.metric().end());
  uint32_t limit = request.limit() == 0 ? kDefaultLimit : request.limit();
  if (limit > kMaxLimit)
    return absl::InvalidArgumentError(str_cat("limit ", limit, " exceeds ", kMaxLimit));
  query.limit = limit;
  if (!request.page_token().empty()) {
    try {
      query.offset = std::stoull(request.page_token());
    } catch (...) {
      return absl::InvalidArgumentError(
          str_cat("page_token '", request.page_token(), "' is not one this API returned"));
    }
  }
  if (request.has_window()) {
    auto window = to_milliseconds(request.window());
    if (window.count() <= 0) return absl::InvalidArgumentError("window must be positive");
    query.window = window;
  }
  query.aggregate = request.aggregate() == v1::AGGREGATE_MAX ? Aggregate::kMax : Aggregate::kMean;
  return query;
}

}  // namespace

grpc::ServerUnaryReactor* CollectorService::IngestCsv(grpc::CallbackServerContext* context,
                                                      const v1::IngestCsvRequest* request,
                                                      v1::IngestCsvResponse* response) {
  return binding_.unary(context, [request, response](CollectorEngine& engine) -> absl::Status {
    auto rate = parse_rate(request->rate());
    if (!rate.ok()) return rate.status();
    auto outcome =
        engine.ingest({request->path(), request->csv(), request->replay(), *rate, request->loop()});
    if (!outcome.ok()) return outcome.status();
    response->set_rows_published(outcome->result.published);
    response->set_rows_rejected(outcome->result.rejected);
    for (const auto& reject : outcome->result.rejects) response->add_rejects(reject);
    response->set_reject_file(outcome->reject_file);
    response->set_running_in_background(outcome->background);
    return absl::OkStatus();
  });
}

grpc::ServerReadReactor<v1::IngestCsvStreamRequest>* CollectorService::IngestCsvStream(
    grpc::CallbackServerContext* context, v1::IngestCsvResponse* response) {
  return binding_.client_stream<v1::IngestCsvStreamRequest>(
      context, response,
      [](CollectorEngine& engine, StreamReader<v1::IngestCsvStreamRequest>& reader,
         v1::IngestCsvResponse& out, std::stop_token stop) -> absl::Status {
        v1::IngestCsvStreamRequest first;
        if (!reader.read(first)) {
          if (stop.stop_requested()) return absl::CancelledError("ingest stream cancelled");
          return absl::InvalidArgumentError(
              "empty ingest stream: the first message names the file and carries its first "
              "bytes");
        }
        auto rate = parse_rate(first.rate());
        if (!rate.ok()) return rate.status();
        // The first message's bytes, then each further message's, as they come.
        ChunkedLines lines(
            [&reader, pending = std::move(*first.mutable_data())](std::string& chunk) mutable {
              if (!pending.empty()) {
                chunk.swap(pending);
                pending.clear();
                return true;
              }
              v1::IngestCsvStreamRequest next;
              if (!reader.read(next)) return false;
              chunk = std::move(*next.mutable_data());
              return true;
            });
        auto outcome = engine.ingest_lines(first.file_name(), first.replay(), *rate, lines, stop);
        if (!outcome.ok()) return outcome.status();
        if (stop.stop_requested())
          return absl::CancelledError(str_cat("ingest of ", first.file_name(), " cut short after ",
                                              outcome->result.published, " rows"));
        out.set_rows_published(outcome->result.published);
        out.set_rows_rejected(outcome->result.rejected);
        for (const auto& reject : outcome->result.rejects) out.add_rejects(reject);
        out.set_reject_file(outcome->reject_file);
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* CollectorService::SubmitTelemetry(
    grpc::CallbackServerContext* context, const v1::SubmitTelemetryRequest* request,
    v1::SubmitTelemetryResponse* response) {
  return binding_.unary(context, [request, response](CollectorEngine& engine) -> absl::Status {
    TelemetryPoint point;
    point.time =
        request->has_time() ? from_timestamp(request->time()) : std::chrono::system_clock::now();
    point.metric_name = request->metric();
    point.device = request->device_id();
    point.gpu_id = request->gpu_id();
    point.uuid = request->uuid();
    point.model_name = request->model_name();
    point.hostname = request->hostname();
    point.container = request->container();
    point.pod = request->pod();
    point.namespace_name = request->namespace_();
    point.value = request->value();
    point.labels_raw = request->labels_raw();
    auto key = engine.submit_point(point);
    if (!key.ok()) return key.status();
    response->set_status("accepted");
    response->set_key(*key);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* CollectorService::ListGpus(grpc::CallbackServerContext* context,
                                                     const v1::ListGpusRequest* request,
                                                     v1::ListGpusResponse* response) {
  return binding_.unary(context, [request, response](CollectorEngine& engine) -> absl::Status {
    auto gpus = engine.list_gpus(request->host());
    if (!gpus.ok()) return gpus.status();
    for (const auto& gpu : *gpus) {
      auto* out = response->add_gpus();
      out->set_id(gpu.id);
      out->set_gpu_id(gpu.gpu_id);
      out->set_device(gpu.device);
      out->set_uuid(gpu.uuid);
      out->set_model_name(gpu.model_name);
      out->set_hostname(gpu.hostname);
      *out->mutable_last_seen() = to_timestamp(gpu.last_seen);
    }
    response->set_count(static_cast<uint32_t>(gpus->size()));
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* CollectorService::GetGpuTelemetry(
    grpc::CallbackServerContext* context, const v1::GetGpuTelemetryRequest* request,
    v1::GetGpuTelemetryResponse* response) {
  return binding_.unary(context, [request, response](CollectorEngine& engine) -> absl::Status {
    auto query = to_query(*request);
    if (!query.ok()) return query.status();
    auto page = engine.query(*query);
    if (!page.ok()) return page.status();
    for (const auto& point : page->points) to_proto(point, response->add_points());
    response->set_count(static_cast<uint32_t>(page->points.size()));
    if (page->more) response->set_next_page_token(std::to_string(query->offset + query->limit));
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* CollectorService::ListHosts(grpc::CallbackServerContext* context,
                                                      const v1::ListHostsRequest*,
                                                      v1::ListHostsResponse* response) {
  return binding_.unary(context, [response](CollectorEngine& engine) -> absl::Status {
    auto hosts = engine.list_hosts();
    if (!hosts.ok()) return hosts.status();
    for (const auto& host : *hosts) {
      auto* out = response->add_hosts();
      out->set_hostname(host.hostname);
      out->set_gpus(host.gpus);
      *out->mutable_last_seen() = to_timestamp(host.last_seen);
    }
    response->set_count(static_cast<uint32_t>(hosts->size()));
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* CollectorService::ListNamespaces(grpc::CallbackServerContext* context,
                                                           const v1::ListNamespacesRequest*,
                                                           v1::ListNamespacesResponse* response) {
  return binding_.unary(context, [response](CollectorEngine& engine) -> absl::Status {
    auto namespaces = engine.list_namespaces();
    if (!namespaces.ok()) return namespaces.status();
    for (const auto& name : *namespaces) response->add_namespaces(name);
    response->set_count(static_cast<uint32_t>(namespaces->size()));
    return absl::OkStatus();
  });
}

grpc::ServerWriteReactor<v1::WatchTelemetryResponse>* CollectorService::WatchTelemetry(
    grpc::CallbackServerContext* context, const v1::WatchTelemetryRequest* request) {
  WatchFilter filter{
      request->id(), request->host(), {request->metric().begin(), request->metric().end()}};
  return binding_.server_stream<v1::WatchTelemetryResponse>(
      context,
      [filter](CollectorEngine& engine, StreamWriter<v1::WatchTelemetryResponse>& writer,
               std::stop_token stop) -> absl::Status {
        if (filter.gpu.empty() && filter.host.empty())
          return absl::InvalidArgumentError("watch needs a GPU id or a host");
        auto subscription = engine.feed().subscribe(filter);
        while (!stop.stop_requested()) {
          auto point = subscription->next(std::chrono::milliseconds(500), stop);
          if (!point) continue;
          v1::WatchTelemetryResponse response;
          to_proto(*point, response.mutable_point());
          if (!writer.write(response)) return absl::OkStatus();
        }
        return absl::UnavailableError("collector module is stopping; retry");
      });
}

grpc::ServerUnaryReactor* CollectorService::GetStatus(grpc::CallbackServerContext* context,
                                                      const v1::GetStatusRequest*,
                                                      v1::GetStatusResponse* response) {
  return binding_.unary(context, [response](CollectorEngine& engine) -> absl::Status {
    auto status = engine.status();
    response->set_store(status.store);
    response->set_store_reachable(status.store_reachable);
    response->set_store_error(status.store_error);
    response->set_breaker(status.breaker == 1   ? v1::BREAKER_STATE_OPEN
                          : status.breaker == 2 ? v1::BREAKER_STATE_HALF_OPEN
                                                : v1::BREAKER_STATE_CLOSED);
    response->set_retries(status.retries);
    response->set_rows_waiting(status.rows_waiting);
    response->set_rows_ingested(status.rows_ingested);
    response->set_rows_rejected(status.rows_rejected);
    response->set_points_written(status.points_written);
    response->set_write_errors(status.write_errors);
    response->set_consumers(status.consumers);
    response->set_topic(status.topic);
    response->set_group(status.group);
    response->set_consumer_lag(status.consumer_lag);
    for (const auto& lag : status.lags) {
      auto* out = response->add_partition_lags();
      out->set_partition(static_cast<uint32_t>(lag.partition));
      out->set_committed(lag.committed);
      out->set_high_watermark(lag.high_watermark);
      out->set_lag(static_cast<uint64_t>(lag.lag()));
    }
    response->set_lag_error(status.lag_error);
    return absl::OkStatus();
  });
}

}  // namespace telekern::collector
