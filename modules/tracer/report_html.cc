// report_{device}.html through the SDK's HtmlReport: summary, Plotly charts
// (swimlane on the trace's time mapping, events per topic, events over
// linear time), per-topic statistics, coverage, the events (filterable by
// text, time range, topic, partition, offset, type), JSON/CSV exports.
#include <map>
#include <nlohmann/json.hpp>

#include "outputs.h"
#include "telekern/report/html_report.h"
#include "telekern/strings.h"
#include "views.h"

namespace telekern::tracer {
namespace {

constexpr size_t kMaxTableEvents = 5000;

std::string printable_text(const std::string& bytes) {
  std::string out;
  for (char c : bytes) out += (static_cast<unsigned char>(c) < 0x20 && c != '\t') ? '.' : c;
  if (out.size() > 300) out = out.substr(0, 300) + "...";
  return out;
}

nlohmann::json swimlane_figure(const std::vector<v1::Event>& events, const TimeAxis& axis) {
  std::map<std::string, nlohmann::json> by_topic;
  for (const auto& event : events) {
    auto& trace = by_topic[event.topic()];
    if (trace.is_null()) {
      trace = {{"type", "scatter"},
               {"mode", "markers"},
               {"name", event.topic()},
               {"x", nlohmann::json::array()},
               {"y", nlohmann::json::array()},
               {"text", nlohmann::json::array()},
               {"hoverinfo", "text"},
               {"marker", {{"size", 9}, {"opacity", 0.8}}}};
    }
    trace["x"].push_back(axis.position(millis_of(event)) * 1000.0);
    trace["y"].push_back(event.topic());
    trace["text"].push_back(
        str_cat(event.topic(), "[", event.partition(), "] @", event.offset(), "<br>",
                iso_time(event.timestamp()),
                event.event_type().empty() ? "" : "<br>type: " + event.event_type()));
  }
  nlohmann::json data = nlohmann::json::array();
  for (auto& [topic, trace] : by_topic) data.push_back(std::move(trace));
  // Ticks at real times; the axis itself is the (possibly non-linear) mapping.
  nlohmann::json tick_values = nlohmann::json::array(), tick_text = nlohmann::json::array();
  if (!events.empty()) {
    size_t step = std::max<size_t>(1, events.size() / 8);
    for (size_t i = 0; i < events.size(); i += step) {
      tick_values.push_back(axis.position(millis_of(events[i])) * 1000.0);
      tick_text.push_back(iso_time(events[i].timestamp()).substr(0, 16));
    }
  }
  nlohmann::json shapes = nlohmann::json::array(), annotations = nlohmann::json::array();
  for (const auto& gap : axis.gaps()) {
    shapes.push_back({{"type", "line"},
                      {"xref", "x"},
                      {"yref", "paper"},
                      {"x0", gap.position * 1000},
                      {"x1", gap.position * 1000},
                      {"y0", 0},
                      {"y1", 1},
                      {"line", {{"dash", "dot"}, {"color", "#999"}}}});
    annotations.push_back({{"x", gap.position * 1000},
                           {"y", 1},
                           {"xref", "x"},
                           {"yref", "paper"},
                           {"text", "gap " + human_duration(gap.to_ms - gap.from_ms)},
                           {"showarrow", false},
                           {"font", {{"size", 10}}}});
  }
  return {{"data", data},
          {"layout",
           {{"xaxis",
             {{"title", axis.nonlinear() ? "time (non-linear: long gaps compressed)" : "time"},
              {"tickvals", tick_values},
              {"ticktext", tick_text}}},
            {"yaxis", {{"type", "category"}, {"automargin", true}}},
            {"shapes", shapes},
            {"annotations", annotations},
            {"hovermode", "closest"},
            {"height", 200 + 40 * static_cast<int>(data.size())}}}};
}

nlohmann::json per_topic_figure(const v1::Summary& summary) {
  nlohmann::json x = nlohmann::json::array(), matched = nlohmann::json::array();
  for (const auto& topic : summary.topics()) {
    x.push_back(topic.topic());
    matched.push_back(topic.matched());
  }
  return {{"data", {{{"type", "bar"}, {"x", x}, {"y", matched}, {"name", "matched"}}}},
          {"layout", {{"yaxis", {{"title", "events"}}}}}};
}

nlohmann::json over_time_figure(const std::vector<v1::Event>& events) {
  nlohmann::json x = nlohmann::json::array();
  for (const auto& event : events) x.push_back(iso_time(event.timestamp()));
  return {{"data", {{{"type", "histogram"}, {"x", x}, {"nbinsx", 60}, {"name", "events"}}}},
          {"layout",
           {{"xaxis", {{"type", "date"}, {"title", "time (linear)"}}},
            {"yaxis", {{"title", "events"}}},
            {"bargap", 0.05}}}};
}

}  // namespace

std::string report_html(const v1::Summary& summary, const std::vector<v1::Event>& events,
                        const TimeAxis& axis) {
  report::HtmlReport page("Trace of device " + summary.device_id());
  page.subtitle(
      str_cat("trace ", summary.trace_id(), ", ", summary.complete() ? "complete" : "INCOMPLETE"));
  page.key_values(
      {{"device", summary.device_id()},
       {"events", std::to_string(events.size())},
       {"records scanned", std::to_string(summary.scanned())},
       {"topics", std::to_string(summary.topics_size())},
       {"partitions", std::to_string(summary.partitions_size())},
       {"complete", summary.complete() ? "yes: every partition read to its end" : "no"},
       {"first seen", iso_time(summary.first_seen())},
       {"last seen", iso_time(summary.last_seen())},
       {"since (max_age)", summary.has_since() ? iso_time(summary.since()) : "all history"},
       {"elapsed",
        str_cat(summary.elapsed().seconds() * 1000 + summary.elapsed().nanos() / 1000000, " ms")}});
  if (!summary.complete()) {
    page.heading("Why the trace is incomplete");
    std::vector<std::vector<std::string>> rows;
    for (const auto& reason : summary.incomplete_reasons()) rows.push_back({reason});
    page.table({"reason"}, rows);
  }
  if (!events.empty()) {
    page.chart("Swimlane: events per topic over time", swimlane_figure(events, axis));
    page.chart("Events per topic", per_topic_figure(summary));
    page.chart("Events over time", over_time_figure(events));
  }
  page.heading("Topics");
  std::vector<std::vector<std::string>> topic_rows;
  for (const auto& topic : summary.topics()) {
    topic_rows.push_back({topic.topic(), std::to_string(topic.scanned()),
                          std::to_string(topic.matched()), iso_time(topic.first_seen()),
                          iso_time(topic.last_seen()), topic.error()});
  }
  page.table({"topic", "scanned", "matched", "first seen", "last seen", "error"}, topic_rows);
  page.heading("Coverage per partition");
  std::vector<std::vector<std::string>> coverage_rows;
  for (const auto& p : summary.partitions()) {
    coverage_rows.push_back({p.topic(), std::to_string(p.partition()),
                             p.start_offset() > p.low_watermark() && p.low_watermark() >= 0
                                 ? str_cat(p.low_watermark(), "..", p.start_offset())
                                 : "",
                             str_cat(p.start_offset(), "..", p.end_offset()),
                             p.stop_offset() >= 0 ? std::to_string(p.stop_offset()) : "unknown",
                             p.reached_end() ? "yes" : "no", std::to_string(p.scanned()),
                             std::to_string(p.matched()), p.error()});
  }
  page.table({"topic", "partition", "skipped (max_age)", "scanned range", "stop at", "reached",
              "scanned", "matched", "error"},
             coverage_rows);
  page.heading(events.size() > kMaxTableEvents ? str_cat("Events (first ", kMaxTableEvents, " of ",
                                                         events.size(), "; all in the JSON export)")
                                               : "Events");
  std::vector<std::vector<std::string>> event_rows;
  for (size_t i = 0; i < events.size() && i < kMaxTableEvents; ++i) {
    const auto& e = events[i];
    event_rows.push_back({iso_time(e.timestamp()), e.topic(), std::to_string(e.partition()),
                          std::to_string(e.offset()), e.event_type(), printable_text(e.key()),
                          printable_text(e.value())});
  }
  using report::ColumnFilter;
  page.filterable_table(
      {"time", "topic", "partition", "offset", "type", "key", "value"}, std::move(event_rows),
      {.id = "events",
       .columns = {ColumnFilter::kRange, ColumnFilter::kChoice, ColumnFilter::kChoice,
                   ColumnFilter::kRange, ColumnFilter::kChoice, ColumnFilter::kText,
                   ColumnFilter::kText}});
  page.heading("Exports");
  std::string csv = "timestamp,topic,partition,offset,event_type\n";
  for (const auto& e : events)
    csv +=
        str_cat(report::csv_field(iso_time(e.timestamp())), ",", report::csv_field(e.topic()), ",",
                e.partition(), ",", e.offset(), ",", report::csv_field(e.event_type()), "\n");
  page.attachment("events_" + file_safe(summary.device_id()) + ".csv", "text/csv", csv);
  return page.render();
}

}  // namespace telekern::tracer
