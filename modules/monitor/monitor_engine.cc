#include "monitor_engine.h"

#include <absl/strings/str_cat.h>
#include <absl/strings/str_format.h>
#include <google/protobuf/util/json_util.h>
#include <google/protobuf/util/time_util.h>
#include <openssl/rand.h>

#include <algorithm>
#include <map>

#include "metric_catalog.h"
#include "telekern/crypto.h"
#include "telekern/proto_time.h"
#include "telekern/strings.h"

namespace telekern::monitor {
namespace {

using google::protobuf::util::TimeUtil;
constexpr auto kRecentWindow = std::chrono::minutes(5);
constexpr size_t kScanPage = 2000;

std::string random_password() {
  static const char* alphabet = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
  unsigned char bytes[20];
  RAND_bytes(bytes, sizeof bytes);
  std::string out;
  for (unsigned char byte : bytes) out.push_back(alphabet[byte % 57]);
  return out;
}

int64_t epoch_ms(TimePoint time) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(time.time_since_epoch()).count();
}

std::string format_number(double value) { return absl::StrFormat("%.10g", value); }

}  // namespace

absl::StatusOr<v1::MetricSample> parse_sample(const std::string& value) {
  v1::MetricSample sample;
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = true;
  auto status = google::protobuf::util::JsonStringToMessage(value, &sample, options);
  if (!status.ok())
    return absl::InvalidArgumentError(
        str_cat("record is not a MetricSample in JSON: ", status.ToString()));
  if (sample.node_id().empty())
    return absl::InvalidArgumentError("sample has no node_id; agents must set one");
  return sample;
}

MonitorEngine::MonitorEngine(MonitorOptions options, std::unique_ptr<MonitorStore> store,
                             std::shared_ptr<spdlog::logger> logger, MetricsRegistry* metrics,
                             NowFunction now)
    : options_(std::move(options)),
      logger_(std::move(logger)),
      metrics_(metrics),
      now_(std::move(now)),
      work_(options_.worker_threads, 1024),
      store_(std::move(store)),
      nodes_(options_.stale_intervals, options_.down_after, options_.agent_interval) {
  auto& samples =
      metrics_->counter("telekern_monitor_samples_total",
                        "Samples received by the monitor backend, by outcome", {"outcome"});
  samples_stored_ = &samples.with({"stored"});
  samples_duplicate_ = &samples.with({"duplicate"});
  samples_rejected_ = &samples.with({"rejected"});
  alert_transitions_ =
      &metrics_->counter("telekern_monitor_alert_transitions_total",
                         "Alert state changes, by state and severity", {"state", "severity"});
  collector_ = register_collector();
}

MonitorEngine::~MonitorEngine() { shutdown(); }

absl::Status MonitorEngine::load() {
  std::lock_guard lock(mutex_);
  auto max_id = store_->max_alert_id();
  if (!max_id.ok()) return max_id.status();
  book_ = AlertBook(*max_id + 1);
  auto thresholds = store_->load_thresholds();
  if (!thresholds.ok()) return thresholds.status();
  for (const auto& threshold : *thresholds) book_.set_threshold(threshold);
  AlertQuery open;
  open.states = {v1::ALERT_STATE_FIRING, v1::ALERT_STATE_ACKNOWLEDGED};
  open.limit = 1000000;
  auto alerts = store_->list_alerts(open);
  if (!alerts.ok()) return alerts.status();
  book_.restore(*alerts);
  auto nodes = store_->load_nodes();
  if (!nodes.ok()) return nodes.status();
  for (const auto& node : *nodes) nodes_.restore(node, from_timestamp(node.last_seen()));
  return absl::OkStatus();
}

void MonitorEngine::start(std::unique_ptr<stream::Consumer> consumer) {
  consumer_ = std::move(consumer);
  if (consumer_)
    consume_thread_ = std::jthread([this](std::stop_token stop) { consume_loop(stop); });
  tick_thread_ = std::jthread([this](std::stop_token stop) { tick_loop(stop); });
}

void MonitorEngine::shutdown() {
  if (consume_thread_.joinable()) {
    consume_thread_.request_stop();
    consume_thread_.join();
  }
  if (tick_thread_.joinable()) {
    tick_thread_.request_stop();
    tick_thread_.join();
  }
  collector_.reset();
  work_.stop();
  std::lock_guard lock(mutex_);
  if (!shut_down_ && store_) {
    std::vector<v1::Node> dirty;
    for (const auto& id : dirty_nodes_)
      if (const auto* node = nodes_.find(id)) dirty.push_back(*node);
    (void)store_->save_nodes(dirty);
    dirty_nodes_.clear();
  }
  shut_down_ = true;
}

absl::Status MonitorEngine::submit(std::function<void()> work) {
  if (!work_.try_submit(std::move(work)))
    return absl::ResourceExhaustedError("monitor work queue is full; retry shortly");
  return absl::OkStatus();
}

std::string MonitorEngine::ingest_error() const {
  std::lock_guard lock(mutex_);
  return ingest_error_;
}

absl::Status MonitorEngine::ingest(std::vector<v1::MetricSample> samples) {
  TimePoint now = now_();
  for (auto& sample : samples) {
    fill_derived(sample);
    if (!sample.has_time()) *sample.mutable_time() = to_timestamp(now);
  }
  std::lock_guard lock(mutex_);
  if (auto status = store_->insert_samples(samples); !status.ok()) return status;
  uint64_t fresh = 0;
  const bool watched = !metric_hub_.empty();
  for (const auto& sample : samples) {
    std::vector<NodeStatusChange> status_changes;
    if (!nodes_.observe(sample, now, status_changes)) {
      samples_duplicate_->inc();
      continue;
    }
    ++fresh;
    dirty_nodes_.insert(sample.node_id());
    if (options_.node_status_alerts) {
      for (const auto& change : status_changes)
        apply(book_.node_status(change.node_id, change.node_name, change.status, now));
    }
    apply(book_.evaluate(sample, now));
    if (watched) {
      v1::WatchMetricsResponse event;
      *event.mutable_sample() = sample;
      event.set_status(v1::NODE_STATUS_ACTIVE);
      metric_hub_.publish(event);
    }
  }
  samples_stored_->inc(static_cast<double>(fresh));
  samples_total_ += fresh;
  auto second = std::chrono::time_point_cast<std::chrono::seconds>(now);
  if (recent_counts_.empty() || recent_counts_.back().first != second)
    recent_counts_.emplace_back(second, 0);
  recent_counts_.back().second += fresh;
  while (!recent_counts_.empty() && recent_counts_.front().first < now - kRecentWindow)
    recent_counts_.pop_front();
  ingest_error_.clear();
  return absl::OkStatus();
}

void MonitorEngine::tick() {
  TimePoint now = now_();
  std::lock_guard lock(mutex_);
  for (const auto& change : nodes_.sweep(now)) {
    dirty_nodes_.insert(change.node_id);
    if (options_.node_status_alerts)
      apply(book_.node_status(change.node_id, change.node_name, change.status, now));
    logger_->warn("node {} ({}) is {}", change.node_id, change.node_name,
                  change.status == v1::NODE_STATUS_DOWN ? "down" : "stale");
  }
  apply(book_.tick(now, [this](const std::string& id) { return nodes_.active(id); }));
  if (!dirty_nodes_.empty()) {
    std::vector<v1::Node> dirty;
    for (const auto& id : dirty_nodes_)
      if (const auto* node = nodes_.find(id)) dirty.push_back(*node);
    if (auto status = store_->save_nodes(dirty); status.ok())
      dirty_nodes_.clear();
    else
      logger_->warn("saving nodes failed (kept for the next try): {}",
                    std::string(status.message()));
  }
  if (options_.retention.count() > 0 && now - last_retention_ >= std::chrono::minutes(1)) {
    last_retention_ = now;
    auto removed = store_->delete_samples_before(now - options_.retention);
    if (!removed.ok())
      logger_->warn("retention: {}", std::string(removed.status().message()));
    else if (*removed > 0)
      logger_->info("retention removed {} samples older than {} s", *removed,
                    options_.retention.count() / 1000);
  }
}

void MonitorEngine::apply(std::vector<AlertChange> changes) {
  for (auto& change : changes) {
    if (auto status = store_->save_alert(change.alert, change.event); !status.ok())
      logger_->error("storing alert {} failed: {}", change.alert.id(),
                     std::string(status.message()));
    alert_transitions_
        ->with(
            {v1::AlertState_Name(change.event.state()), v1::Severity_Name(change.alert.severity())})
        .inc();
    if (change.event.state() == v1::ALERT_STATE_FIRING)
      logger_->warn("alert {} firing: {}", change.alert.id(), change.alert.message());
    v1::WatchAlertsResponse event;
    *event.mutable_alert() = std::move(change.alert);
    *event.mutable_event() = std::move(change.event);
    alert_hub_.publish(event);
  }
}

std::vector<v1::Node> MonitorEngine::list_nodes(v1::NodeStatus status) const {
  std::lock_guard lock(mutex_);
  std::map<std::string, uint32_t> open;
  for (const auto& [id, alert] : book_.open_alerts()) ++open[alert.node_id()];
  std::vector<v1::Node> out;
  for (const auto& [id, node] : nodes_.nodes()) {
    if (status != v1::NODE_STATUS_UNSPECIFIED && node.status() != status) continue;
    out.push_back(node);
    out.back().set_open_alerts(open[id]);
  }
  return out;
}

absl::StatusOr<v1::GetNodeResponse> MonitorEngine::get_node(const std::string& node_id) const {
  std::lock_guard lock(mutex_);
  const auto* node = nodes_.find(node_id);
  if (node == nullptr)
    return absl::NotFoundError(
        str_cat("no node '", node_id, "' has published; `monitor nodes` lists the known ones"));
  v1::GetNodeResponse response;
  *response.mutable_node() = *node;
  std::set<uint64_t> seen;
  for (const auto& info : metric_catalog()) {
    for (const auto* threshold : book_.effective(node_id, std::string(info.name)))
      if (seen.insert(threshold->id()).second) *response.add_thresholds() = *threshold;
  }
  for (const auto& [id, alert] : book_.open_alerts())
    if (alert.node_id() == node_id) *response.add_open_alerts() = alert;
  response.mutable_node()->set_open_alerts(response.open_alerts_size());
  return response;
}

std::vector<v1::MetricSample> MonitorEngine::latest(const std::string& node_id) const {
  std::lock_guard lock(mutex_);
  std::vector<v1::MetricSample> out;
  for (const auto& [id, node] : nodes_.nodes()) {
    if (!node_id.empty() && id != node_id) continue;
    if (node.has_latest()) out.push_back(node.latest());
  }
  return out;
}

absl::Status MonitorEngine::range(const google::protobuf::Timestamp& from,
                                  const google::protobuf::Timestamp& to,
                                  const google::protobuf::Duration& since,
                                  std::chrono::milliseconds fallback, TimePoint* out_from,
                                  TimePoint* out_to) const {
  bool has_to = to.seconds() != 0 || to.nanos() != 0;
  bool has_from = from.seconds() != 0 || from.nanos() != 0;
  bool has_since = since.seconds() != 0 || since.nanos() != 0;
  *out_to = has_to ? from_timestamp(to) : now_() + std::chrono::milliseconds(1);
  *out_from =
      has_from ? from_timestamp(from) : *out_to - (has_since ? to_milliseconds(since) : fallback);
  if (*out_from >= *out_to)
    return absl::InvalidArgumentError("the range is empty: 'from' must be before 'to'");
  return absl::OkStatus();
}

absl::Status MonitorEngine::scan(const std::string& node_id, TimePoint from, TimePoint to,
                                 const std::function<bool(const v1::MetricSample&)>& visit) {
  TimePoint cursor = from;
  while (cursor < to) {
    std::vector<v1::MetricSample> page;
    bool more = false;
    {
      std::lock_guard lock(mutex_);
      // A page ends at a millisecond boundary (stores range over whole
      // milliseconds), so samples within one millisecond, of one node or of
      // several, are never split between pages.
      auto status = store_->scan_samples(node_id, cursor, to, [&](const v1::MetricSample& s) {
        if (page.size() >= kScanPage &&
            sample_time_key(s.time()).ms != sample_time_key(page.back().time()).ms) {
          more = true;
          return false;
        }
        page.push_back(s);
        return true;
      });
      if (!status.ok()) return status;
    }
    for (const auto& sample : page)
      if (!visit(sample)) return absl::OkStatus();
    if (!more || page.empty()) return absl::OkStatus();
    cursor = TimePoint(std::chrono::milliseconds(sample_time_key(page.back().time()).ms + 1));
  }
  return absl::OkStatus();
}

absl::StatusOr<v1::MetricHistoryResponse> MonitorEngine::history(
    const v1::MetricHistoryRequest& request) {
  if (request.node_id().empty())
    return absl::InvalidArgumentError("node_id is required (see `monitor nodes`)");
  TimePoint from, to;
  if (auto s =
          range(request.from(), request.to(), request.since(), std::chrono::hours(1), &from, &to);
      !s.ok())
    return s;
  v1::MetricHistoryResponse response;
  response.set_node_id(request.node_id());
  uint32_t limit = request.limit() ? request.limit() : 10000;
  if (request.metric().empty()) {
    auto status = scan(request.node_id(), from, to, [&](const v1::MetricSample& s) {
      if (static_cast<uint32_t>(response.samples_size()) >= limit) {
        response.set_truncated(true);
        return false;
      }
      *response.add_samples() = s;
      return true;
    });
    if (!status.ok()) return status;
    return response;
  }
  auto metric = canonical_metric(request.metric());
  if (!metric.ok()) return metric.status();
  response.set_metric(*metric);
  auto step = to_milliseconds(request.step());
  std::map<int64_t, v1::MetricPoint> buckets;
  auto status = scan(request.node_id(), from, to, [&](const v1::MetricSample& s) {
    double value = *metric_value(s, *metric);
    if (step.count() <= 0) {
      if (static_cast<uint32_t>(response.points_size()) >= limit) {
        response.set_truncated(true);
        return false;
      }
      auto* point = response.add_points();
      *point->mutable_time() = s.time();
      point->set_value(value);
      point->set_min(value);
      point->set_max(value);
      point->set_count(1);
      return true;
    }
    int64_t index = (epoch_ms(from_timestamp(s.time())) - epoch_ms(from)) / step.count();
    auto [it, created] = buckets.try_emplace(index);
    auto& point = it->second;
    if (created) {
      *point.mutable_time() = to_timestamp(from + step * index);
      point.set_min(value);
      point.set_max(value);
    }
    point.set_min(std::min(point.min(), value));
    point.set_max(std::max(point.max(), value));
    point.set_value(point.value() + value);  // sum until the end
    point.set_count(point.count() + 1);
    return true;
  });
  if (!status.ok()) return status;
  for (auto& [index, point] : buckets) {
    point.set_value(point.value() / point.count());
    *response.add_points() = point;
  }
  return response;
}

absl::StatusOr<v1::SummaryResponse> MonitorEngine::summary(const v1::SummaryRequest& request) {
  TimePoint from, to;
  if (auto s =
          range(request.from(), request.to(), request.since(), std::chrono::hours(24), &from, &to);
      !s.ok())
    return s;
  std::map<std::pair<std::string, std::string>, v1::MetricSummary> sums;
  auto status = scan(request.node(), from, to, [&](const v1::MetricSample& s) {
    for (const auto& info : metric_catalog()) {
      double value = info.read(s);
      auto [it, created] = sums.try_emplace({s.node_id(), std::string(info.name)});
      auto& summary = it->second;
      if (created) {
        summary.set_node_id(s.node_id());
        summary.set_metric(std::string(info.name));
        summary.set_min(value);
        summary.set_max(value);
      }
      summary.set_min(std::min(summary.min(), value));
      summary.set_max(std::max(summary.max(), value));
      summary.set_avg(summary.avg() + value);
      summary.set_count(summary.count() + 1);
    }
    return true;
  });
  if (!status.ok()) return status;
  v1::SummaryResponse response;
  *response.mutable_from() = to_timestamp(from);
  *response.mutable_to() = to_timestamp(to);
  for (auto& [key, summary] : sums) {
    summary.set_avg(summary.avg() / static_cast<double>(summary.count()));
    *response.add_summaries() = summary;
  }
  return response;
}

v1::OverviewResponse MonitorEngine::overview() const {
  std::lock_guard lock(mutex_);
  v1::OverviewResponse response;
  for (const auto& [id, node] : nodes_.nodes()) {
    response.set_nodes(response.nodes() + 1);
    if (node.status() == v1::NODE_STATUS_ACTIVE)
      response.set_active_nodes(response.active_nodes() + 1);
    if (node.status() == v1::NODE_STATUS_STALE)
      response.set_stale_nodes(response.stale_nodes() + 1);
    if (node.status() == v1::NODE_STATUS_DOWN) response.set_down_nodes(response.down_nodes() + 1);
  }
  for (const auto& [id, alert] : book_.open_alerts()) {
    response.set_open_alerts(response.open_alerts() + 1);
    if (alert.state() == v1::ALERT_STATE_FIRING)
      response.set_unacknowledged_alerts(response.unacknowledged_alerts() + 1);
    if (alert.severity() == v1::SEVERITY_CRITICAL)
      response.set_critical_alerts(response.critical_alerts() + 1);
  }
  TimePoint cutoff = now_() - kRecentWindow;
  for (const auto& [second, count] : recent_counts_)
    if (second >= cutoff) response.set_recent_samples(response.recent_samples() + count);
  response.set_samples_total(samples_total_);
  return response;
}

std::vector<v1::Threshold> MonitorEngine::list_thresholds(const std::string& node_id,
                                                          const std::string& metric) const {
  std::string wanted_metric;
  if (!metric.empty()) {
    auto canonical = canonical_metric(metric);
    wanted_metric = canonical.ok() ? *canonical : metric;
  }
  std::lock_guard lock(mutex_);
  std::vector<v1::Threshold> out;
  for (const auto& [id, threshold] : book_.thresholds()) {
    if (!node_id.empty() && threshold.node_id() != node_id) continue;
    if (!wanted_metric.empty() && threshold.metric() != wanted_metric) continue;
    out.push_back(threshold);
  }
  return out;
}

absl::StatusOr<v1::UpsertThresholdResponse> MonitorEngine::upsert_threshold(
    const v1::UpsertThresholdRequest& request, const std::string& actor) {
  v1::Threshold threshold;
  threshold.set_id(request.id());
  threshold.set_node_id(request.node_id());
  threshold.set_metric(request.metric().empty() ? request.metric_type() : request.metric());
  threshold.set_condition(request.condition());
  threshold.set_value(request.value() != 0 ? request.value() : request.threshold_value());
  if (request.has_clear_threshold()) threshold.set_clear_threshold(request.clear_threshold());
  threshold.set_severity(request.severity());
  *threshold.mutable_for_() = request.for_();
  threshold.set_enabled(request.has_enabled() ? request.enabled() : true);
  if (threshold.metric().empty())
    return absl::InvalidArgumentError("metric is required (cpu, memory, disk_io, network, ...)");
  if (auto status = normalize_threshold(threshold); !status.ok()) return status;
  TimePoint now = now_();
  *threshold.mutable_updated_at() = to_timestamp(now);
  threshold.set_updated_by(actor);
  std::lock_guard lock(mutex_);
  bool created = true;
  if (threshold.id() != 0) {
    if (!book_.thresholds().count(threshold.id()))
      return absl::NotFoundError(
          str_cat("no threshold ", threshold.id(), "; omit the id to create one"));
    created = false;
  } else {
    for (const auto& [id, existing] : book_.thresholds()) {
      if (existing.node_id() == threshold.node_id() && existing.metric() == threshold.metric() &&
          existing.severity() == threshold.severity()) {
        threshold.set_id(id);
        created = false;
      }
    }
  }
  auto id = store_->save_threshold(threshold);
  if (!id.ok()) return id.status();
  threshold.set_id(*id);
  book_.set_threshold(threshold);
  v1::UpsertThresholdResponse response;
  *response.mutable_threshold() = threshold;
  response.set_created(created);
  return response;
}

absl::StatusOr<v1::Threshold> MonitorEngine::delete_threshold(uint64_t id,
                                                              const std::string& actor) {
  std::lock_guard lock(mutex_);
  auto it = book_.thresholds().find(id);
  if (it == book_.thresholds().end())
    return absl::NotFoundError(str_cat("no threshold ", id, "; `monitor thresholds` lists them"));
  v1::Threshold threshold = it->second;
  if (auto status = store_->delete_threshold(id); !status.ok()) return status;
  apply(book_.remove_threshold(id, now_(), actor));
  return threshold;
}

absl::StatusOr<std::vector<v1::Alert>> MonitorEngine::list_alerts(
    const v1::ListAlertsRequest& request) {
  AlertQuery query;
  auto filter = request.unacked() ? v1::ALERT_FILTER_UNACKNOWLEDGED : request.filter();
  switch (filter) {
    case v1::ALERT_FILTER_UNACKNOWLEDGED:
      query.states = {v1::ALERT_STATE_FIRING};
      query.acknowledged = false;
      break;
    case v1::ALERT_FILTER_ACKNOWLEDGED:
      query.acknowledged = true;
      break;
    case v1::ALERT_FILTER_OPEN:
      query.states = {v1::ALERT_STATE_FIRING, v1::ALERT_STATE_ACKNOWLEDGED};
      break;
    case v1::ALERT_FILTER_RESOLVED:
      query.states = {v1::ALERT_STATE_RESOLVED};
      break;
    default:
      break;
  }
  query.severity = request.severity();
  query.node_id = request.node_id();
  query.limit = request.limit() ? request.limit() : 500;
  std::lock_guard lock(mutex_);
  return store_->list_alerts(query);
}

absl::StatusOr<v1::Alert> MonitorEngine::acknowledge(uint64_t id, const std::string& actor,
                                                     const std::string& note) {
  std::lock_guard lock(mutex_);
  auto change = book_.acknowledge(id, actor, note, now_());
  if (!change.ok()) return change.status();
  v1::Alert alert = change->alert;
  apply({std::move(*change)});
  return alert;
}

absl::StatusOr<std::vector<v1::AlertEvent>> MonitorEngine::alert_history(
    const v1::AlertHistoryRequest& request) {
  TimePoint from{};
  if (request.has_from())
    from = from_timestamp(request.from());
  else if (request.has_since())
    from = now_() - to_milliseconds(request.since());
  std::lock_guard lock(mutex_);
  return store_->alert_events(request.alert_id(), request.node_id(), from,
                              request.limit() ? request.limit() : 1000);
}

std::vector<v1::Alert> MonitorEngine::open_alerts() const {
  std::lock_guard lock(mutex_);
  std::vector<v1::Alert> out;
  for (const auto& [id, alert] : book_.open_alerts()) out.push_back(alert);
  return out;
}

absl::Status MonitorEngine::export_csv(
    const v1::ExportCsvRequest& request, size_t chunk_bytes,
    const std::function<bool(std::string chunk, uint64_t rows)>& write) {
  TimePoint from, to;
  if (auto s =
          range(request.from(), request.to(), request.since(), std::chrono::hours(24), &from, &to);
      !s.ok())
    return s;
  std::vector<const MetricInfo*> columns;
  for (const auto& wanted : request.metrics()) {
    auto name = canonical_metric(wanted);
    if (!name.ok()) return name.status();
    for (const auto& info : metric_catalog())
      if (info.name == *name) columns.push_back(&info);
  }
  if (columns.empty())
    for (const auto& info : metric_catalog()) columns.push_back(&info);
  std::string chunk = "time,node_id,node_name";
  for (const auto* column : columns) str_append(chunk, ",", column->name);
  chunk += "\n";
  uint64_t rows = 0;
  bool open = true;
  auto escape = [](const std::string& text) {
    if (text.find_first_of(",\"\n") == std::string::npos) return text;
    std::string out = "\"";
    for (char c : text) out += c == '"' ? std::string("\"\"") : std::string(1, c);
    return out + "\"";
  };
  auto status = scan(request.node(), from, to, [&](const v1::MetricSample& s) {
    str_append(chunk, TimeUtil::ToString(s.time()), ",", escape(s.node_id()), ",",
               escape(s.node_name()));
    for (const auto* column : columns) str_append(chunk, ",", format_number(column->read(s)));
    chunk += "\n";
    ++rows;
    if (chunk.size() >= chunk_bytes) {
      open = write(std::move(chunk), rows);
      chunk.clear();
      rows = 0;
    }
    return open;
  });
  if (!status.ok()) return status;
  if (open && !chunk.empty()) write(std::move(chunk), rows);
  return absl::OkStatus();
}

std::shared_ptr<WatchHub<v1::WatchAlertsResponse>::Subscription> MonitorEngine::watch_alerts(
    std::vector<v1::Alert>* open_now) {
  std::lock_guard lock(mutex_);  // no change slips between snapshot and subscription
  for (const auto& [id, alert] : book_.open_alerts()) open_now->push_back(alert);
  return alert_hub_.subscribe();
}

std::shared_ptr<WatchHub<v1::WatchMetricsResponse>::Subscription> MonitorEngine::watch_metrics() {
  return metric_hub_.subscribe();
}

absl::StatusOr<v1::User> MonitorEngine::create_user(const v1::CreateUserRequest& request) {
  if (request.name().empty()) return absl::InvalidArgumentError("name is required");
  if (request.password().size() < 8)
    return absl::InvalidArgumentError("password must have at least 8 characters");
  StoredUser user;
  user.name = request.name();
  user.password_hash = telekern::hash_password(request.password());
  user.role = request.role() == telekern::options::v1::ROLE_UNSPECIFIED
                  ? telekern::options::v1::ROLE_VIEWER
                  : request.role();
  if (user.role > telekern::options::v1::ROLE_ADMIN)
    return absl::InvalidArgumentError("role must be viewer, operator or admin");
  user.created_ms = epoch_ms(now_());
  std::lock_guard lock(mutex_);
  if (auto status = store_->save_user(user); !status.ok()) return status;
  v1::User out;
  out.set_name(user.name);
  out.set_role(static_cast<telekern::options::v1::Role>(user.role));
  *out.mutable_created_at() = to_timestamp(TimePoint(std::chrono::milliseconds(user.created_ms)));
  return out;
}

absl::StatusOr<std::vector<v1::User>> MonitorEngine::list_users() {
  std::lock_guard lock(mutex_);
  auto users = store_->list_users();
  if (!users.ok()) return users.status();
  std::vector<v1::User> out;
  for (const auto& user : *users) {
    v1::User& item = out.emplace_back();
    item.set_name(user.name);
    item.set_role(static_cast<telekern::options::v1::Role>(user.role));
    *item.mutable_created_at() =
        to_timestamp(TimePoint(std::chrono::milliseconds(user.created_ms)));
  }
  return out;
}

absl::Status MonitorEngine::delete_user(const std::string& name) {
  std::lock_guard lock(mutex_);
  return store_->delete_user(name);
}

absl::StatusOr<std::optional<StoredUser>> MonitorEngine::find_user(std::string_view name) {
  std::lock_guard lock(mutex_);
  auto users = store_->list_users();
  if (!users.ok()) return users.status();
  for (auto& user : *users) {
    if (user.name == name) return std::optional<StoredUser>(std::move(user));
  }
  return std::optional<StoredUser>();
}

absl::StatusOr<std::string> MonitorEngine::ensure_admin() {
  {
    std::lock_guard lock(mutex_);
    auto users = store_->list_users();
    if (!users.ok()) return users.status();
    if (!users->empty()) return std::string();
  }
  v1::CreateUserRequest request;
  request.set_name("admin");
  request.set_password(random_password());
  request.set_role(telekern::options::v1::ROLE_ADMIN);
  auto user = create_user(request);
  if (!user.ok()) return user.status();
  return request.password();
}

void MonitorEngine::consume_loop(std::stop_token stop) {
  auto backoff = std::chrono::milliseconds(100);
  auto wait = [&stop](std::chrono::milliseconds duration) {
    auto until = std::chrono::steady_clock::now() + duration;
    while (!stop.stop_requested() && std::chrono::steady_clock::now() < until)
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
  };
  while (!stop.stop_requested()) {
    auto records = consumer_->poll(options_.max_batch, std::chrono::milliseconds(200));
    if (!records.ok()) {
      {
        std::lock_guard lock(mutex_);
        ingest_error_ =
            str_cat("consuming '", options_.topic, "': ", std::string(records.status().message()));
      }
      logger_->warn("consuming {}: {} (retrying)", options_.topic,
                    std::string(records.status().message()));
      wait(backoff);
      backoff = std::min(backoff * 2, std::chrono::milliseconds(5000));
      continue;
    }
    backoff = std::chrono::milliseconds(100);
    if (records->empty()) continue;
    std::vector<v1::MetricSample> samples;
    samples.reserve(records->size());
    for (const auto& record : *records) {
      auto sample = parse_sample(record.value);
      if (!sample.ok()) {
        samples_rejected_->inc();
        logger_->warn("rejected record {}/{}@{}: {}", record.topic, record.partition, record.offset,
                      std::string(sample.status().message()));
        continue;
      }
      samples.push_back(std::move(*sample));
    }
    // The records are committed only once stored: a store outage retries
    // the same batch, never skips it.
    auto store_backoff = std::chrono::milliseconds(100);
    while (!stop.stop_requested()) {
      auto status = ingest(samples);
      if (status.ok()) break;
      {
        std::lock_guard lock(mutex_);
        ingest_error_ = str_cat("storing samples: ", std::string(status.message()));
      }
      logger_->error("storing {} samples failed (retrying): {}", samples.size(),
                     std::string(status.message()));
      wait(store_backoff);
      store_backoff = std::min(store_backoff * 2, std::chrono::milliseconds(5000));
    }
    if (stop.stop_requested()) return;
    if (auto status = consumer_->commit(*records); !status.ok())
      logger_->warn("commit on {}: {}", options_.topic, std::string(status.message()));
    consumed_batches_.fetch_add(1);
  }
}

void MonitorEngine::tick_loop(std::stop_token stop) {
  auto next = std::chrono::steady_clock::now();
  while (!stop.stop_requested()) {
    next += options_.evaluation_interval;
    tick();
    while (!stop.stop_requested() && std::chrono::steady_clock::now() < next)
      std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(
          std::chrono::milliseconds(20), next - std::chrono::steady_clock::now()));
  }
}

std::unique_ptr<CollectorHandle> MonitorEngine::register_collector() {
  return metrics_->add_collector([this] {
    std::vector<CollectedFamily> families;
    std::lock_guard lock(mutex_);
    for (const auto& info : metric_catalog()) {
      CollectedFamily family{std::string(info.prometheus), std::string(info.help), "gauge", {}};
      for (const auto& [id, node] : nodes_.nodes()) {
        if (!node.has_latest()) continue;
        family.samples.push_back({family.name,
                                  {{"node_id", id}, {"node_name", node.node_name()}},
                                  info.read(node.latest())});
      }
      families.push_back(std::move(family));
    }
    CollectedFamily up{"telekern_node_up",
                       "1 while the node's samples arrive (active), 0 when stale or down",
                       "gauge",
                       {}};
    CollectedFamily status{
        "telekern_node_status", "Node status: 1 active, 2 stale, 3 down", "gauge", {}};
    CollectedFamily seen{"telekern_node_last_seen_timestamp_seconds",
                         "When the node's last sample arrived (Unix time)",
                         "gauge",
                         {}};
    for (const auto& [id, node] : nodes_.nodes()) {
      std::vector<std::pair<std::string, std::string>> labels{{"node_id", id},
                                                              {"node_name", node.node_name()}};
      up.samples.push_back({up.name, labels, node.status() == v1::NODE_STATUS_ACTIVE ? 1.0 : 0.0});
      status.samples.push_back({status.name, labels, static_cast<double>(node.status())});
      seen.samples.push_back(
          {seen.name, labels,
           static_cast<double>(epoch_ms(from_timestamp(node.last_seen()))) / 1000});
    }
    families.push_back(std::move(up));
    families.push_back(std::move(status));
    families.push_back(std::move(seen));
    CollectedFamily open{
        "telekern_monitor_alerts_open", "Open alerts by severity and state", "gauge", {}};
    std::map<std::pair<std::string, std::string>, double> counts;
    for (const char* severity : {"info", "warning", "critical"})
      for (const char* state : {"firing", "acknowledged"}) counts[{severity, state}] = 0;
    CollectedFamily firing{
        "telekern_monitor_alert", "1 for each open alert, with its labels", "gauge", {}};
    for (const auto& [id, alert] : book_.open_alerts()) {
      std::string severity = alert.severity() == v1::SEVERITY_CRITICAL ? "critical"
                             : alert.severity() == v1::SEVERITY_INFO   ? "info"
                                                                       : "warning";
      std::string state = alert.state() == v1::ALERT_STATE_ACKNOWLEDGED ? "acknowledged" : "firing";
      counts[{severity, state}] += 1;
      firing.samples.push_back({firing.name,
                                {{"alert_id", std::to_string(id)},
                                 {"node_id", alert.node_id()},
                                 {"metric", alert.metric()},
                                 {"severity", severity},
                                 {"state", state}},
                                1.0});
    }
    for (const auto& [key, value] : counts)
      open.samples.push_back({open.name, {{"severity", key.first}, {"state", key.second}}, value});
    families.push_back(std::move(open));
    families.push_back(std::move(firing));
    return families;
  });
}

}  // namespace telekern::monitor
