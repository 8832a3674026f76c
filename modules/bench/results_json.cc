#include "results_json.h"

#include "telekern/strings.h"

namespace telekern::bench {
namespace {

using nlohmann::json;

std::string iso8601(std::chrono::system_clock::time_point t) {
  auto seconds = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char buffer[32];
  std::strftime(buffer, sizeof(buffer), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buffer;
}

void add_series(json& out, const std::string& prefix, const std::vector<LatencyFigures>& series,
                double scale) {
  json avg = json::array(), p50 = json::array(), p75 = json::array(), p95 = json::array(),
       p99 = json::array(), p999 = json::array(), p9999 = json::array(), max = json::array();
  for (const auto& f : series) {
    avg.push_back(f.avg * scale);
    p50.push_back(f.p50 * scale);
    p75.push_back(f.p75 * scale);
    p95.push_back(f.p95 * scale);
    p99.push_back(f.p99 * scale);
    p999.push_back(f.p999 * scale);
    p9999.push_back(f.p9999 * scale);
    max.push_back(f.max * scale);
  }
  out[prefix + "Avg"] = avg;
  out[prefix + "50pct"] = p50;
  out[prefix + "75pct"] = p75;
  out[prefix + "95pct"] = p95;
  out[prefix + "99pct"] = p99;
  out[prefix + "999pct"] = p999;
  out[prefix + "9999pct"] = p9999;
  out[prefix + "Max"] = max;
}

void add_aggregated(json& out, const std::string& prefix, const HdrHistogram& h, double scale) {
  auto f = LatencyFigures::of(h);
  out["aggregated" + prefix + "Avg"] = f.avg * scale;
  out["aggregated" + prefix + "50pct"] = f.p50 * scale;
  out["aggregated" + prefix + "75pct"] = f.p75 * scale;
  out["aggregated" + prefix + "95pct"] = f.p95 * scale;
  out["aggregated" + prefix + "99pct"] = f.p99 * scale;
  out["aggregated" + prefix + "999pct"] = f.p999 * scale;
  out["aggregated" + prefix + "9999pct"] = f.p9999 * scale;
  out["aggregated" + prefix + "Max"] = f.max * scale;
  // OMB's quantile map: percentile (as a string key) -> value, 100 steps plus the tail.
  json quantiles = json::object();
  for (double q : {1.0, 5.0, 10.0, 25.0, 50.0, 75.0, 90.0, 95.0, 99.0, 99.9, 99.99, 100.0}) {
    quantiles[str_cat(q)] = double(h.percentile(q / 100.0)) / 1000.0 * scale;
  }
  out["aggregated" + prefix + "Quantiles"] = quantiles;
}

}  // namespace

json histogram_json(const HdrHistogram& histogram) {
  auto exported = histogram.export_buckets();
  json buckets = json::array();
  for (const auto& [index, count] : exported.buckets) buckets.push_back({index, count});
  return {{"unit", "microseconds"}, {"layout", "hdr-8bit"}, {"count", exported.count},
          {"sum", exported.sum},    {"min", exported.min},  {"max", exported.max},
          {"buckets", buckets}};
}

absl::StatusOr<HdrHistogram> histogram_from_json(const json& in) {
  try {
    HdrHistogram::Exported exported;
    exported.count = in.at("count").get<uint64_t>();
    exported.sum = in.at("sum").get<uint64_t>();
    exported.min = in.at("min").get<uint64_t>();
    exported.max = in.at("max").get<uint64_t>();
    for (const auto& bucket : in.at("buckets"))
      exported.buckets.emplace_back(bucket.at(0).get<uint32_t>(), bucket.at(1).get<uint64_t>());
    return HdrHistogram::import_buckets(exported);
  } catch (const json::exception& error) {
    return absl::InvalidArgumentError(str_cat("histogram JSON: ", error.what()));
  }
}

json omb_result(const RunResult& result) {
  const auto& w = result.workload;
  json out;
  out["workload"] = w.name;
  out["driver"] = result.driver.name;
  out["messageSize"] = result.message_size;
  out["topics"] = w.topics;
  out["partitions"] = w.partitions_per_topic;
  out["producersPerTopic"] = w.producers_per_topic;
  out["consumersPerTopic"] = w.subscriptions_per_topic * w.consumer_per_subscription;
  json publish_rate = json::array(), publish_error_rate = json::array(),
       consume_rate = json::array(), backlog = json::array();
  std::vector<LatencyFigures> publish, delay, e2e;
  for (const auto& window : result.windows) {
    if (window.warmup) continue;
    publish_rate.push_back(window.publish_rate);
    publish_error_rate.push_back(window.publish_error_rate);
    consume_rate.push_back(window.consume_rate);
    backlog.push_back(window.backlog);
    publish.push_back(window.publish_latency);
    delay.push_back(window.publish_delay);
    e2e.push_back(window.end_to_end_latency);
  }
  out["publishRate"] = publish_rate;
  out["publishErrorRate"] = publish_error_rate;
  out["consumeRate"] = consume_rate;
  out["backlog"] = backlog;
  add_series(out, "publishLatency", publish, 1.0);
  add_series(out, "publishDelayLatency", delay, 1000.0);  // OMB: microseconds
  add_series(out, "endToEndLatency", e2e, 1.0);
  add_aggregated(out, "PublishLatency", result.publish_latency, 1.0);
  add_aggregated(out, "PublishDelayLatency", result.publish_delay, 1000.0);
  add_aggregated(out, "EndToEndLatency", result.end_to_end_latency, 1.0);
  return out;
}

json full_result(const RunResult& result, const std::string& run_id) {
  json out = omb_result(result);
  json windows = json::array();
  for (const auto& w : result.windows) {
    auto figures = [](const LatencyFigures& f) {
      return json{{"avg", f.avg}, {"p50", f.p50},   {"p75", f.p75},     {"p95", f.p95},
                  {"p99", f.p99}, {"p999", f.p999}, {"p9999", f.p9999}, {"max", f.max}};
    };
    windows.push_back({{"index", w.index},
                       {"warmup", w.warmup},
                       {"elapsedSeconds", w.elapsed_seconds},
                       {"seconds", w.seconds},
                       {"publishRate", w.publish_rate},
                       {"publishMBps", w.publish_mb},
                       {"publishErrorRate", w.publish_error_rate},
                       {"consumeRate", w.consume_rate},
                       {"consumeMBps", w.consume_mb},
                       {"backlog", w.backlog},
                       {"published", w.published},
                       {"consumed", w.consumed},
                       {"publishLatencyMs", figures(w.publish_latency)},
                       {"publishDelayMs", figures(w.publish_delay)},
                       {"endToEndLatencyMs", figures(w.end_to_end_latency)}});
  }
  out["telekern"] = {{"runId", run_id},
                     {"valid", result.valid},
                     {"invalidReasons", result.invalid_reasons},
                     {"notes", result.notes},
                     {"cancelled", result.cancelled},
                     {"started", iso8601(result.started)},
                     {"finished", iso8601(result.finished)},
                     {"measuredSeconds", result.measured_seconds},
                     {"published", result.published},
                     {"consumed", result.consumed},
                     {"publishErrors", result.publish_errors},
                     {"producerRate", result.workload.producer_rate},
                     {"warmupSeconds", result.workload.warmup_duration.count() / 1000.0},
                     {"testSeconds", result.workload.test_duration.count() / 1000.0},
                     {"driverKind", driver_kind_name(result.driver.kind)},
                     {"workloadYaml", result.workload.source},
                     {"driverSpec", result.driver.source},
                     {"windows", windows},
                     {"histograms",
                      {{"publishLatency", histogram_json(result.publish_latency)},
                       {"publishDelay", histogram_json(result.publish_delay)},
                       {"endToEndLatency", histogram_json(result.end_to_end_latency)}}}};
  return out;
}

}  // namespace telekern::bench
