#include "charts.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "results_json.h"
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

const json& windows_of(const json& result) {
  static const json empty = json::array();
  if (result.contains("telekern") && result["telekern"].contains("windows"))
    return result["telekern"]["windows"];
  return empty;
}

const json& targets_of(const json& health) {
  static const json empty = json::object();
  if (health.is_object() && health.contains("targets")) return health["targets"];
  return empty;
}

json base_layout(const std::string& title) {
  return {{"title", {{"text", title}}},
          {"hovermode", "x unified"},
          {"legend", {{"orientation", "h"}, {"y", -0.3}}},
          {"margin", {{"l", 60}, {"r", 60}, {"t", 50}, {"b", 60}}}};
}

double median(std::vector<double> values) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

double number_or(const json& value, double fallback) {
  return value.is_number() ? value.get<double>() : fallback;
}

}  // namespace

json throughput_health_chart(const json& result, const json& health) {
  json x = json::array(), publish = json::array(), consume = json::array(), backlog = json::array();
  for (const auto& w : windows_of(result)) {
    x.push_back(w["elapsedSeconds"]);
    publish.push_back(w["publishRate"]);
    consume.push_back(w["consumeRate"]);
    backlog.push_back(w["backlog"]);
  }
  json data = json::array();
  data.push_back({{"type", "scatter"},
                  {"mode", "lines+markers"},
                  {"name", "publish msg/s"},
                  {"x", x},
                  {"y", publish},
                  {"yaxis", "y"}});
  data.push_back({{"type", "scatter"},
                  {"mode", "lines+markers"},
                  {"name", "consume msg/s"},
                  {"x", x},
                  {"y", consume},
                  {"yaxis", "y"}});
  data.push_back({{"type", "scatter"},
                  {"mode", "lines"},
                  {"name", "backlog"},
                  {"x", x},
                  {"y", backlog},
                  {"yaxis", "y"},
                  {"line", {{"dash", "dot"}}}});
  for (const auto& [target, series] : targets_of(health).items()) {
    data.push_back({{"type", "scatter"},
                    {"mode", "lines"},
                    {"name", "CPU % " + target},
                    {"x", series["t"]},
                    {"y", series["cpu_percent"]},
                    {"yaxis", "y2"}});
    data.push_back({{"type", "bar"},
                    {"name", "pauses ms " + target},
                    {"x", series["t"]},
                    {"y", series["pause_ms"]},
                    {"yaxis", "y3"}});
  }
  json layout = base_layout("Throughput and broker health");
  layout["xaxis"] = {{"title", {{"text", "seconds since start"}}}};
  layout["yaxis"] = {{"title", {{"text", "messages/s"}}}, {"domain", {0.32, 1.0}}};
  layout["yaxis2"] = {{"title", {{"text", "CPU %"}}},
                      {"overlaying", "y"},
                      {"side", "right"},
                      {"rangemode", "tozero"}};
  layout["yaxis3"] = {{"title", {{"text", "GC/fsync pause ms"}}}, {"domain", {0.0, 0.22}}};
  return {{"data", data}, {"layout", layout}};
}

json latency_percentiles_chart(const json& result) {
  const std::vector<std::pair<std::string, std::string>> percentiles = {
      {"p50", "p50"},    {"p75", "p75"},      {"p95", "p95"}, {"p99", "p99"},
      {"p999", "p99.9"}, {"p9999", "p99.99"}, {"max", "max"}};
  json data = json::array();
  for (const auto& [kind, label, dash] :
       std::vector<std::tuple<std::string, std::string, std::string>>{
           {"publishLatencyMs", "publish", "solid"}, {"endToEndLatencyMs", "end-to-end", "dash"}}) {
    for (const auto& [key, name] : percentiles) {
      json x = json::array(), y = json::array();
      for (const auto& w : windows_of(result)) {
        x.push_back(w["elapsedSeconds"]);
        y.push_back(w[kind][key]);
      }
      data.push_back({{"type", "scatter"},
                      {"mode", "lines+markers"},
                      {"name", label + " " + name},
                      {"x", x},
                      {"y", y},
                      {"line", {{"dash", dash}}}});
    }
  }
  json layout = base_layout("Latency percentiles per window (p50 .. max)");
  layout["xaxis"] = {{"title", {{"text", "seconds since start"}}}};
  layout["yaxis"] = {{"title", {{"text", "milliseconds"}}}, {"type", "log"}};
  return {{"data", data}, {"layout", layout}};
}

json health_heatmap_chart(const json& health) {
  // 0 healthy, 1 warning (CPU >= 80% or pauses >= 100 ms), 2 critical
  // (unreadable or CPU >= 95%).
  json z = json::array(), text = json::array(), y = json::array(), x = json::array();
  bool first = true;
  double cores = health.is_object() ? health.value("cores", 1.0) : 1.0;
  for (const auto& [target, series] : targets_of(health).items()) {
    y.push_back(target);
    json row = json::array(), labels = json::array();
    for (size_t i = 0; i < series["t"].size(); ++i) {
      if (first) x.push_back(series["t"][i]);
      bool ok = series["ok"][i].get<bool>();
      double cpu = number_or(series["cpu_percent"][i], 0);
      double pause = number_or(series["pause_ms"][i], 0);
      double busy = cpu / std::max(1.0, cores);  // share of the machine's cores
      int level = !ok ? 2 : busy >= 95 ? 2 : (busy >= 80 || pause >= 100) ? 1 : 0;
      row.push_back(level);
      labels.push_back(!ok ? std::string("unreadable")
                           : str_cat("CPU ", fixed(cpu, 1), "%, pauses ", fixed(pause, 1), " ms"));
    }
    first = false;
    z.push_back(row);
    text.push_back(labels);
  }
  json data = json::array();
  data.push_back(
      {{"type", "heatmap"},
       {"x", x},
       {"y", y},
       {"z", z},
       {"text", text},
       {"zmin", 0},
       {"zmax", 2},
       {"hovertemplate", "%{y} at %{x}s: %{text}<extra></extra>"},
       {"colorscale", json::array({json::array({0, "#2ca02c"}), json::array({0.5, "#ffbf00"}),
                                   json::array({1, "#d62728"})})},
       {"colorbar", {{"tickvals", {0, 1, 2}}, {"ticktext", {"healthy", "warning", "critical"}}}}});
  json layout = base_layout("Broker health heatmap");
  layout["xaxis"] = {{"title", {{"text", "seconds since baseline"}}}};
  layout["hovermode"] = "closest";
  return {{"data", data}, {"layout", layout}};
}

json resource_utilization_chart(const json& health) {
  json data = json::array();
  for (const auto& [target, series] : targets_of(health).items()) {
    json rss = json::array();
    for (const auto& v : series["rss_bytes"])
      rss.push_back(v.is_number() ? json(v.get<double>() / (1024.0 * 1024.0)) : json(nullptr));
    data.push_back({{"type", "scatter"},
                    {"mode", "lines+markers"},
                    {"name", "CPU % " + target},
                    {"x", series["t"]},
                    {"y", series["cpu_percent"]},
                    {"yaxis", "y"}});
    data.push_back({{"type", "scatter"},
                    {"mode", "lines+markers"},
                    {"name", "RSS MiB " + target},
                    {"x", series["t"]},
                    {"y", rss},
                    {"yaxis", "y2"},
                    {"line", {{"dash", "dash"}}}});
    bool has_heap = std::any_of(series["heap_bytes"].begin(), series["heap_bytes"].end(),
                                [](const json& v) { return v.is_number(); });
    if (has_heap) {
      json heap = json::array();
      for (const auto& v : series["heap_bytes"])
        heap.push_back(v.is_number() ? json(v.get<double>() / (1024.0 * 1024.0)) : json(nullptr));
      data.push_back({{"type", "scatter"},
                      {"mode", "lines"},
                      {"name", "heap MiB " + target},
                      {"x", series["t"]},
                      {"y", heap},
                      {"yaxis", "y2"},
                      {"line", {{"dash", "dot"}}}});
    }
  }
  json layout = base_layout("Broker resource utilization (CPU / memory)");
  layout["xaxis"] = {{"title", {{"text", "seconds since baseline"}}}};
  layout["yaxis"] = {{"title", {{"text", "CPU %"}}}, {"rangemode", "tozero"}};
  layout["yaxis2"] = {{"title", {{"text", "MiB"}}}, {"overlaying", "y"}, {"side", "right"}};
  return {{"data", data}, {"layout", layout}};
}

json storage_utilization_chart(const json& health) {
  json data = json::array();
  for (const auto& [target, series] : targets_of(health).items()) {
    json write_mb = json::array();
    for (const auto& v : series["disk_write_bytes_per_s"])
      write_mb.push_back(v.is_number() ? json(v.get<double>() / (1024.0 * 1024.0)) : json(nullptr));
    data.push_back({{"type", "scatter"},
                    {"mode", "lines+markers"},
                    {"name", "disk writes MiB/s " + target},
                    {"x", series["t"]},
                    {"y", write_mb},
                    {"yaxis", "y"}});
    data.push_back({{"type", "bar"},
                    {"name", "fsync ms " + target},
                    {"x", series["t"]},
                    {"y", series["fsync_ms"]},
                    {"yaxis", "y"},
                    {"opacity", 0.6}});
    data.push_back({{"type", "scatter"},
                    {"mode", "lines"},
                    {"name", "open fds " + target},
                    {"x", series["t"]},
                    {"y", series["open_fds"]},
                    {"yaxis", "y2"},
                    {"line", {{"dash", "dot"}}}});
  }
  json layout = base_layout("Storage resource utilization (writes, fsync, descriptors)");
  layout["xaxis"] = {{"title", {{"text", "seconds since baseline"}}}};
  layout["yaxis"] = {{"title", {{"text", "MiB/s | fsync ms"}}}, {"rangemode", "tozero"}};
  layout["yaxis2"] = {{"title", {{"text", "open fds"}}}, {"overlaying", "y"}, {"side", "right"}};
  return {{"data", data}, {"layout", layout}};
}

std::vector<std::string> correlation_notes(const json& result, const json& health) {
  std::vector<std::string> notes;
  std::vector<double> p99s;
  for (const auto& w : windows_of(result)) {
    if (!w["warmup"].get<bool>()) p99s.push_back(w["publishLatencyMs"]["p99"].get<double>());
  }
  double typical = median(p99s);
  double cores = health.is_object() ? health.value("cores", 1.0) : 1.0;
  int spikes = 0;
  for (const auto& w : windows_of(result)) {
    if (w["warmup"].get<bool>()) continue;
    double p99 = w["publishLatencyMs"]["p99"].get<double>();
    if (typical <= 0 || p99 < 2 * typical) continue;
    ++spikes;
    double end = w["elapsedSeconds"].get<double>();
    double start = end - w["seconds"].get<double>();
    std::vector<std::string> causes;
    for (const auto& [target, series] : targets_of(health).items()) {
      for (size_t i = 0; i < series["t"].size(); ++i) {
        double t = series["t"][i].get<double>();
        if (t < start - 1 || t > end + 1) continue;
        double cpu = number_or(series["cpu_percent"][i], 0);
        double pause = number_or(series["pause_ms"][i], 0);
        if (cpu / std::max(1.0, cores) >= 80)
          causes.push_back(str_cat("CPU ", fixed(cpu, 0), "% on ", target));
        if (pause >= 10) causes.push_back(str_cat(fixed(pause, 0), " ms of pauses on ", target));
        if (!series["ok"][i].get<bool>()) causes.push_back(str_cat(target, " unreadable"));
      }
    }
    std::string sentence =
        str_cat("p99 publish latency ", fixed(p99), " ms at ", fixed(start, 0), "-", fixed(end, 0),
                " s (", fixed(p99 / typical, 1), "x the median window)");
    sentence += causes.empty() ? ": no CPU saturation or pause seen in the same window"
                               : str_cat(" next to ", join(causes, ", "));
    notes.push_back(sentence);
  }
  if (spikes == 0)
    notes.push_back(
        str_cat("no latency spikes: every window's p99 publish latency is within 2x "
                "the median (",
                fixed(typical), " ms)"));
  return notes;
}

std::string metrics_csv(const json& result, const json& health) {
  std::string out = "kind,elapsed_seconds,target,metric,value\n";
  auto row = [&out](const std::string& kind, double t, const std::string& target,
                    const std::string& metric, const json& value) {
    if (!value.is_number()) return;
    std::string quoted = report::csv_field(target);
    out += str_cat(kind, ",", fixed(t, 3), ",", quoted, ",", metric, ",",
                   fixed(value.get<double>(), 4), "\n");
  };
  for (const auto& w : windows_of(result)) {
    double t = w["elapsedSeconds"].get<double>();
    std::string kind = w["warmup"].get<bool>() ? "warmup_window" : "window";
    for (const char* key : {"publishRate", "publishMBps", "publishErrorRate", "consumeRate",
                            "consumeMBps", "backlog"})
      row(kind, t, "", key, w[key]);
    for (const char* family : {"publishLatencyMs", "publishDelayMs", "endToEndLatencyMs"}) {
      for (const auto& [p, value] : w[family].items())
        row(kind, t, "", std::string(family) + "." + p, value);
    }
  }
  for (const auto& [target, series] : targets_of(health).items()) {
    for (size_t i = 0; i < series["t"].size(); ++i) {
      double t = series["t"][i].get<double>();
      for (const char* key : {"cpu_percent", "rss_bytes", "heap_bytes", "open_fds", "pause_ms",
                              "fsync_ms", "disk_write_bytes_per_s"})
        row("health", t, target, key, series[key][i]);
    }
  }
  return out;
}

json metrics_json(const json& result, const json& health) {
  json summary = json::object();
  for (const auto& [key, value] : result.items()) {
    if (key.starts_with("aggregated") && value.is_number()) summary[key] = value;
  }
  return {{"windows", windows_of(result)}, {"health", health}, {"summary", summary}};
}

Comparison compare_runs(const std::vector<json>& results, double threshold) {
  Comparison out;
  out.header = {"figure"};
  for (const auto& r : results)
    out.header.push_back(r["telekern"].value("runId", std::string("?")));
  struct Figure {
    std::string label;
    std::string key;
    bool higher_is_better;
  };
  auto mean_of = [](const json& series) {
    double sum = 0;
    for (const auto& v : series) sum += v.get<double>();
    return series.empty() ? 0.0 : sum / double(series.size());
  };
  std::vector<Figure> figures = {
      {"publish rate msg/s (mean)", "publishRate", true},
      {"consume rate msg/s (mean)", "consumeRate", true},
      {"publish latency p50 ms", "aggregatedPublishLatency50pct", false},
      {"publish latency p99 ms", "aggregatedPublishLatency99pct", false},
      {"publish latency p99.9 ms", "aggregatedPublishLatency999pct", false},
      {"end-to-end latency p50 ms", "aggregatedEndToEndLatency50pct", false},
      {"end-to-end latency p99 ms", "aggregatedEndToEndLatency99pct", false},
      {"end-to-end latency p99.9 ms", "aggregatedEndToEndLatency999pct", false}};
  for (const auto& figure : figures) {
    std::vector<std::string> row = {figure.label};
    double base = 0;
    for (size_t i = 0; i < results.size(); ++i) {
      const auto& value = results[i][figure.key];
      double v = value.is_array() ? mean_of(value) : number_or(value, 0);
      if (i == 0) {
        base = v;
        row.push_back(fixed(v));
        continue;
      }
      double change = base != 0 ? (v - base) / base : 0;
      std::string cell =
          str_cat(fixed(v), " (", change >= 0 ? "+" : "", fixed(change * 100, 1), "%)");
      bool worse = figure.higher_is_better ? change < -threshold : change > threshold;
      if (worse) {
        cell += " REGRESSION";
        out.regressions.push_back(str_cat(
            out.header[i + 1], ": ", figure.label, " ", fixed(base), " -> ", fixed(v), " (",
            change >= 0 ? "+" : "", fixed(change * 100, 1), "% against ", out.header[1], ")"));
      }
      row.push_back(cell);
    }
    out.rows.push_back(std::move(row));
  }
  json overlay = json::array(), bars = json::array();
  for (size_t i = 0; i < results.size(); ++i) {
    json x = json::array(), y = json::array();
    for (const auto& w : windows_of(results[i])) {
      if (w["warmup"].get<bool>()) continue;
      x.push_back(w["elapsedSeconds"]);
      y.push_back(w["publishLatencyMs"]["p99"]);
    }
    overlay.push_back({{"type", "scatter"},
                       {"mode", "lines+markers"},
                       {"name", out.header[i + 1]},
                       {"x", x},
                       {"y", y}});
    // Percentiles recomputed from the run's raw histogram, not read from its summary.
    json labels = json::array(), values = json::array();
    const auto& t = results[i]["telekern"];
    if (t.contains("histograms")) {
      auto histogram = histogram_from_json(t["histograms"]["publishLatency"]);
      if (histogram.ok()) {
        for (auto [q, label] : std::vector<std::pair<double, std::string>>{
                 {0.5, "p50"}, {0.95, "p95"}, {0.99, "p99"}, {0.999, "p99.9"}, {1.0, "max"}}) {
          labels.push_back(label);
          values.push_back(double(histogram->percentile(q)) / 1000.0);
        }
      }
    }
    bars.push_back({{"type", "bar"}, {"name", out.header[i + 1]}, {"x", labels}, {"y", values}});
  }
  json overlay_layout = base_layout("p99 publish latency per window, runs overlaid");
  overlay_layout["yaxis"] = {{"title", {{"text", "milliseconds"}}}};
  overlay_layout["xaxis"] = {{"title", {{"text", "seconds since start"}}}};
  out.p99_overlay = {{"data", overlay}, {"layout", overlay_layout}};
  json bars_layout = base_layout("Publish latency percentiles (from each run's histogram)");
  bars_layout["barmode"] = "group";
  bars_layout["yaxis"] = {{"title", {{"text", "milliseconds"}}}, {"type", "log"}};
  out.percentile_bars = {{"data", bars}, {"layout", bars_layout}};
  return out;
}

}  // namespace telekern::bench
