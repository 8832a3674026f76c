#include "report.h"

#include <cstdio>

#include "telekern/report/html_report.h"
#include "telekern/strings.h"

namespace telekern::bench {
namespace {

using nlohmann::json;

std::string fixed(double value, int digits = 2) {
  char buffer[64];
  std::snprintf(buffer, sizeof(buffer), "%.*f", digits, value);
  return buffer;
}

double mean(const json& series) {
  double sum = 0;
  for (const auto& v : series) sum += v.get<double>();
  return series.empty() ? 0.0 : sum / double(series.size());
}

}  // namespace

absl::StatusOr<std::filesystem::path> render_run_report(const RunStore& store,
                                                        const std::string& id) {
  auto result = store.result(id);
  if (!result.ok()) return result.status();
  json health = store.health(id);
  const json& t = (*result)["telekern"];

  report::HtmlReport page(str_cat("Benchmark ", id, ": ", result->value("workload", "")));
  page.subtitle(str_cat("driver ", result->value("driver", ""), " (", t.value("driverKind", ""),
                        "), started ", t.value("started", ""), ", finished ",
                        t.value("finished", "")));
  if (!t.value("valid", false)) {
    std::vector<std::string> reasons = t.value("invalidReasons", std::vector<std::string>{});
    page.heading("INVALID RUN");
    page.paragraph(str_cat("These figures should not be used: ", join(reasons, "; ")));
  }
  page.heading("Summary");
  page.key_values({
      {"run", id},
      {"valid", t.value("valid", false) ? "yes" : "no"},
      {"topics / partitions",
       str_cat(result->value("topics", 0), " / ", result->value("partitions", 0))},
      {"producers / consumers per topic", str_cat(result->value("producersPerTopic", 0), " / ",
                                                  result->value("consumersPerTopic", 0))},
      {"message size", str_cat(result->value("messageSize", 0), " bytes")},
      {"target rate", t.value("producerRate", 0.0) > 0
                          ? str_cat(fixed(t.value("producerRate", 0.0), 0), " msg/s")
                          : std::string("max")},
      {"warm-up / measured", str_cat(fixed(t.value("warmupSeconds", 0.0), 1), " s / ",
                                     fixed(t.value("measuredSeconds", 0.0), 1), " s")},
      {"publish rate (mean)", str_cat(fixed(mean((*result)["publishRate"]), 1), " msg/s")},
      {"consume rate (mean)", str_cat(fixed(mean((*result)["consumeRate"]), 1), " msg/s")},
      {"publish latency p50 / p99 / p99.9 / max",
       str_cat(fixed(result->value("aggregatedPublishLatency50pct", 0.0), 3), " / ",
               fixed(result->value("aggregatedPublishLatency99pct", 0.0), 3), " / ",
               fixed(result->value("aggregatedPublishLatency999pct", 0.0), 3), " / ",
               fixed(result->value("aggregatedPublishLatencyMax", 0.0), 3), " ms")},
      {"end-to-end latency p50 / p99 / p99.9 / max",
       str_cat(fixed(result->value("aggregatedEndToEndLatency50pct", 0.0), 3), " / ",
               fixed(result->value("aggregatedEndToEndLatency99pct", 0.0), 3), " / ",
               fixed(result->value("aggregatedEndToEndLatency999pct", 0.0), 3), " / ",
               fixed(result->value("aggregatedEndToEndLatencyMax", 0.0), 3), " ms")},
      {"messages published / consumed",
       str_cat(t.value("published", uint64_t{0}), " / ", t.value("consumed", uint64_t{0}))},
  });
  for (const auto& note : t.value("notes", std::vector<std::string>{})) page.paragraph(note);

  page.heading("Throughput and health");
  page.chart("Throughput + health (CPU, GC/fsync pauses)",
             throughput_health_chart(*result, health));
  page.heading("Latency");
  page.chart("Latency percentiles (p50 .. max)", latency_percentiles_chart(*result));
  page.heading("Infrastructure health");
  page.chart("Broker health heatmap", health_heatmap_chart(health));
  page.chart("Broker resource utilization (CPU / memory)", resource_utilization_chart(health));
  page.chart("Storage resource utilization", storage_utilization_chart(health));

  page.heading("Correlation");
  for (const auto& note : correlation_notes(*result, health)) page.paragraph(note);

  // Health targets that could not be read: the run went on without them.
  std::vector<std::vector<std::string>> failed;
  if (health.contains("targets")) {
    for (const auto& [target, series] : health["targets"].items()) {
      size_t bad = 0;
      for (const auto& ok : series["ok"]) bad += ok.get<bool>() ? 0 : 1;
      if (bad) failed.push_back({target, str_cat(bad, " of ", series["ok"].size())});
    }
  }
  if (!failed.empty()) {
    page.heading("Health targets not read");
    page.paragraph("These targets could not be read; the benchmark continued without them.");
    page.table({"target", "snapshots missed"}, failed);
  }

  page.heading("Windows");
  std::vector<std::vector<std::string>> rows;
  for (const auto& w : t["windows"]) {
    rows.push_back(
        {std::to_string(w["index"].get<int>()), w["warmup"].get<bool>() ? "warm-up" : "",
         fixed(w["elapsedSeconds"].get<double>(), 1), fixed(w["publishRate"].get<double>(), 1),
         fixed(w["consumeRate"].get<double>(), 1), std::to_string(w["backlog"].get<int64_t>()),
         fixed(w["publishLatencyMs"]["p50"].get<double>(), 3),
         fixed(w["publishLatencyMs"]["p99"].get<double>(), 3),
         fixed(w["endToEndLatencyMs"]["p50"].get<double>(), 3),
         fixed(w["endToEndLatencyMs"]["p99"].get<double>(), 3)});
  }
  page.table({"window", "phase", "t (s)", "publish msg/s", "consume msg/s", "backlog", "pub p50 ms",
              "pub p99 ms", "e2e p50 ms", "e2e p99 ms"},
             rows);

  std::string csv = metrics_csv(*result, health);
  std::string metrics = metrics_json(*result, health).dump(2);
  page.heading("Data");
  page.paragraph(
      "result.json carries OMB's result fields, every window, the raw latency histograms "
      "(bucket counts, microseconds) and the run's workload and driver, so percentiles can be "
      "recomputed and runs overlaid from this page alone.");
  page.attachment("result.json", "application/json", result->dump(2));
  page.attachment("metrics.csv", "text/csv", csv);
  page.attachment("metrics.json", "application/json", metrics);

  if (auto s = store.write_file(id, "report/metrics.csv", csv); !s.ok()) return s;
  if (auto s = store.write_file(id, "report/metrics.json", metrics); !s.ok()) return s;
  auto path = store.dir(id) / "report" / "index.html";
  if (auto s = page.write(path); !s.ok()) return s;
  return path;
}

absl::StatusOr<ComparisonReport> render_comparison(const RunStore& store,
                                                   const std::vector<std::string>& ids,
                                                   double threshold) {
  if (ids.size() < 2)
    return absl::InvalidArgumentError("compare needs at least two run ids: bench compare A B");
  std::vector<json> results;
  for (const auto& id : ids) {
    auto result = store.result(id);
    if (!result.ok()) return result.status();
    results.push_back(std::move(*result));
  }
  ComparisonReport out;
  out.comparison = compare_runs(results, threshold);
  report::HtmlReport page(str_cat("Comparison: ", join(ids, " vs ")));
  page.subtitle(str_cat("baseline ", ids.front(), "; regressions are changes worse than ",
                        fixed(threshold * 100, 0), "%"));
  page.heading("Regressions");
  if (out.comparison.regressions.empty()) page.paragraph("none beyond the threshold");
  for (const auto& regression : out.comparison.regressions) page.paragraph(regression);
  page.heading("Aggregated figures");
  page.table(out.comparison.header, out.comparison.rows);
  page.chart("p99 publish latency per window", out.comparison.p99_overlay);
  page.chart("Publish latency percentiles from histograms", out.comparison.percentile_bars);
  out.path = store.root() / str_cat("compare-", join(ids, "-vs-")) / "index.html";
  if (auto s = page.write(out.path); !s.ok()) return s;
  return out;
}

}  // namespace telekern::bench
