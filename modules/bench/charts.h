// The report's content built from a stored run alone (result.json and
// metrics/plot_data.json): the five Plotly figures of the seed's
// InteractiveChartGenerator, correlation notes, and the CSV/JSON exports.
// Figures are {"data": [...], "layout": {...}} for HtmlReport::chart().
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace telekern::bench {

// `result`: full_result() JSON; `health`: plot_data() JSON (may be empty).
nlohmann::json throughput_health_chart(const nlohmann::json& result, const nlohmann::json& health);
nlohmann::json latency_percentiles_chart(const nlohmann::json& result);
nlohmann::json health_heatmap_chart(const nlohmann::json& health);
nlohmann::json resource_utilization_chart(const nlohmann::json& health);
nlohmann::json storage_utilization_chart(const nlohmann::json& health);

// Latency spikes (window p99 above twice the median window p99) next to CPU
// saturation (>= 80%) or pauses in the same window, one sentence each.
std::vector<std::string> correlation_notes(const nlohmann::json& result,
                                           const nlohmann::json& health);

// metrics.csv: tidy rows kind,elapsed_seconds,target,metric,value.
std::string metrics_csv(const nlohmann::json& result, const nlohmann::json& health);
// metrics.json: {"windows": [...], "health": plot data, "summary": {...}}.
nlohmann::json metrics_json(const nlohmann::json& result, const nlohmann::json& health);

// Several runs side by side: rows of aggregated figures, the first run the
// baseline; a figure worse by more than `threshold` (0.10 = 10%) is a regression.
struct Comparison {
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> regressions;  // sentences naming run, figure and change
  nlohmann::json p99_overlay;            // publish p99 per window, one line per run
  nlohmann::json percentile_bars;        // aggregated percentiles recomputed from histograms
};
Comparison compare_runs(const std::vector<nlohmann::json>& results, double threshold);

}  // namespace telekern::bench
