#include <absl/time/time.h>
#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <set>

#include "outputs.h"
#include "telekern/strings.h"
#include "views.h"

namespace telekern::tracer {
namespace {

constexpr const char* kPalette[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};

std::string xml(std::string_view text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '&':
        out += "&amp;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        if (static_cast<unsigned char>(c) >= 0x20 || c == '\t') out += c;
    }
  }
  return out;
}

std::string fixed(double value) { return fmt::format("{:.1f}", value); }

// Topics in order of first appearance.
std::vector<std::string> topics_in_order(const std::vector<v1::Event>& events) {
  std::vector<std::string> topics;
  std::set<std::string> seen;
  for (const auto& event : events) {
    if (seen.insert(event.topic()).second) topics.push_back(event.topic());
  }
  return topics;
}

std::string color_of(const std::vector<std::string>& topics, const std::string& topic) {
  auto it = std::find(topics.begin(), topics.end(), topic);
  return kPalette[static_cast<size_t>(it - topics.begin()) % std::size(kPalette)];
}

std::string header(int width, int height, const std::string& title) {
  return str_cat(
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n",
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"", width, "\" height=\"", height,
      "\" viewBox=\"0 0 ", width, " ", height, "\" font-family=\"sans-serif\" font-size=\"11\">\n",
      "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n",
      "<text x=\"10\" y=\"18\" font-size=\"14\" font-weight=\"bold\">", xml(title), "</text>\n");
}

// Axis with time ticks at evenly spaced positions, and marks for compressed gaps.
std::string axis_marks(const TimeAxis& axis, double left, double right, double top, double bottom) {
  std::string out;
  out += str_cat("<line x1=\"", fixed(left), "\" y1=\"", fixed(bottom), "\" x2=\"", fixed(right),
                 "\" y2=\"", fixed(bottom), "\" stroke=\"#333\"/>\n");
  // Ticks at the times found at 6 evenly spaced positions (inverted by search).
  for (int i = 0; i <= 5; ++i) {
    double target = i / 5.0;
    int64_t lo = axis.first(), hi = axis.last();
    for (int step = 0; step < 60 && lo < hi; ++step) {
      int64_t mid = lo + (hi - lo) / 2;
      if (axis.position(mid) < target)
        lo = mid + 1;
      else
        hi = mid;
    }
    double x = left + axis.position(lo) * (right - left);
    out += str_cat("<line x1=\"", fixed(x), "\" y1=\"", fixed(bottom), "\" x2=\"", fixed(x),
                   "\" y2=\"", fixed(bottom + 5), "\" stroke=\"#333\"/>\n");
    out += str_cat("<text x=\"", fixed(x), "\" y=\"", fixed(bottom + 18),
                   "\" text-anchor=\"middle\">", xml(iso_millis(lo).substr(0, 19)), "</text>\n");
  }
  for (const auto& gap : axis.gaps()) {
    double x = left + gap.position * (right - left);
    out += str_cat("<line x1=\"", fixed(x), "\" y1=\"", fixed(top), "\" x2=\"", fixed(x),
                   "\" y2=\"", fixed(bottom), "\" stroke=\"#999\" stroke-dasharray=\"4 3\"/>\n");
    out += str_cat("<text x=\"", fixed(x), "\" y=\"", fixed(top - 3),
                   "\" text-anchor=\"middle\" fill=\"#666\">gap ",
                   xml(human_duration(gap.to_ms - gap.from_ms)), "</text>\n");
  }
  return out;
}

std::string dot(double x, double y, const std::string& color, const v1::Event& event) {
  return str_cat("<circle cx=\"", fixed(x), "\" cy=\"", fixed(y), "\" r=\"4\" fill=\"", color,
                 "\" fill-opacity=\"0.8\"><title>", xml(event.topic()), "[", event.partition(),
                 "]@", event.offset(), " ", xml(iso_time(event.timestamp())), " ",
                 xml(event.event_type()), "</title></circle>\n");
}

}  // namespace

int64_t millis_of(const v1::Event& event) {
  return event.timestamp().seconds() * 1000 + event.timestamp().nanos() / 1000000;
}

std::string iso_millis(int64_t milliseconds) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::FromUnixMillis(milliseconds),
                          absl::UTCTimeZone());
}

std::string timeline_svg(const std::vector<v1::Event>& events, const TimeAxis& axis) {
  const int width = 1200, height = 260;
  const double left = 40, right = width - 40, top = 60, bottom = 190;
  auto topics = topics_in_order(events);
  std::string out = header(width, height,
                           str_cat("Timeline: ", events.size(), " events",
                                   axis.nonlinear() ? " (non-linear time)" : ""));
  out += axis_marks(axis, left, right, top, bottom);
  // Stack events that land on the same pixel column.
  std::map<int, int> stacks;
  for (const auto& event : events) {
    double x = left + axis.position(millis_of(event)) * (right - left);
    int level = stacks[static_cast<int>(x)]++;
    double y = bottom - 12 - (level % 12) * 9;
    out += dot(x, y, color_of(topics, event.topic()), event);
  }
  double legend_x = 10;
  for (const auto& topic : topics) {
    out +=
        str_cat("<rect x=\"", fixed(legend_x), "\" y=\"", height - 22,
                "\" width=\"10\" height=\"10\" fill=\"", color_of(topics, topic), "\"/><text x=\"",
                fixed(legend_x + 14), "\" y=\"", height - 13, "\">", xml(topic), "</text>\n");
    legend_x += 24 + 7.0 * static_cast<double>(topic.size());
  }
  return out + "</svg>\n";
}

std::string swimlane_svg(const std::vector<v1::Event>& events, const TimeAxis& axis) {
  auto topics = topics_in_order(events);
  const int lane = 36, width = 1200;
  const double left = 220, right = width - 30, top = 50;
  const double bottom = top + lane * static_cast<double>(std::max<size_t>(topics.size(), 1));
  const int height = static_cast<int>(bottom) + 40;
  std::string out = header(
      width, height, str_cat("Swimlane: ", events.size(), " events in ", topics.size(), " topics"));
  for (size_t i = 0; i < topics.size(); ++i) {
    double y = top + lane * static_cast<double>(i);
    out +=
        str_cat("<rect x=\"", fixed(left), "\" y=\"", fixed(y), "\" width=\"", fixed(right - left),
                "\" height=\"", lane, "\" fill=\"", i % 2 ? "#f7f7f7" : "#ffffff", "\"/>\n");
    out += str_cat("<text x=\"", fixed(left - 8), "\" y=\"", fixed(y + lane / 2.0 + 4),
                   "\" text-anchor=\"end\">", xml(topics[i]), "</text>\n");
  }
  out += axis_marks(axis, left, right, top, bottom);
  for (const auto& event : events) {
    auto index = std::find(topics.begin(), topics.end(), event.topic()) - topics.begin();
    double x = left + axis.position(millis_of(event)) * (right - left);
    double y = top + lane * static_cast<double>(index) + lane / 2.0;
    out += dot(x, y, color_of(topics, event.topic()), event);
  }
  return out + "</svg>\n";
}

std::string flow_svg(const std::vector<v1::Event>& events) {
  auto topics = topics_in_order(events);
  std::map<std::pair<size_t, size_t>, int> transitions;
  for (size_t i = 1; i < events.size(); ++i) {
    if (events[i].topic() == events[i - 1].topic()) continue;
    size_t from = static_cast<size_t>(
        std::find(topics.begin(), topics.end(), events[i - 1].topic()) - topics.begin());
    size_t to = static_cast<size_t>(std::find(topics.begin(), topics.end(), events[i].topic()) -
                                    topics.begin());
    transitions[{from, to}]++;
  }
  const int row = 70, width = 900;
  const int height = 70 + row * static_cast<int>(std::max<size_t>(topics.size(), 1));
  std::string out = header(width, height,
                           str_cat("Flow: ", transitions.size(), " kinds of transition between ",
                                   topics.size(), " topics (in order of first event)"));
  out +=
      "<defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"7\" "
      "markerHeight=\"7\" orient=\"auto-start-reverse\"><path d=\"M 0 0 L 10 5 L 0 10 z\" "
      "fill=\"#555\"/></marker></defs>\n";
  auto center_y = [&](size_t i) { return 60.0 + row * static_cast<double>(i) + 20; };
  const double box_left = 300, box_width = 300;
  for (const auto& [edge, count] : transitions) {
    auto [from, to] = edge;
    double y1 = center_y(from), y2 = center_y(to);
    // Downward transitions arc on the right, upward ones on the left.
    bool down = to > from;
    double x = down ? box_left + box_width : box_left;
    double bend =
        (down ? 1 : -1) * (40 + 15 * std::abs(static_cast<double>(to) - static_cast<double>(from)));
    out += str_cat("<path d=\"M ", fixed(x), " ", fixed(y1), " C ", fixed(x + bend), " ", fixed(y1),
                   " ", fixed(x + bend), " ", fixed(y2), " ", fixed(x), " ", fixed(y2),
                   "\" fill=\"none\" stroke=\"#555\" stroke-width=\"",
                   fixed(1 + std::min(count, 8) * 0.5), "\" marker-end=\"url(#arrow)\"/>\n");
    out += str_cat("<text x=\"", fixed(x + bend * 0.8), "\" y=\"", fixed((y1 + y2) / 2),
                   "\" text-anchor=\"middle\" fill=\"#333\">", count, "</text>\n");
  }
  for (size_t i = 0; i < topics.size(); ++i) {
    int count = static_cast<int>(std::count_if(
        events.begin(), events.end(), [&](const auto& e) { return e.topic() == topics[i]; }));
    out +=
        str_cat("<rect x=\"", fixed(box_left), "\" y=\"", fixed(center_y(i) - 18), "\" width=\"",
                fixed(box_width), "\" height=\"36\" rx=\"6\" fill=\"", color_of(topics, topics[i]),
                "\" fill-opacity=\"0.25\" stroke=\"", color_of(topics, topics[i]), "\"/>\n");
    out += str_cat("<text x=\"", fixed(box_left + box_width / 2), "\" y=\"", fixed(center_y(i) + 4),
                   "\" text-anchor=\"middle\">", xml(topics[i]), " (", count, ")</text>\n");
  }
  return out + "</svg>\n";
}

std::string compact_svg(const std::vector<v1::Event>& events, const TimeAxis& axis) {
  auto topics = topics_in_order(events);
  const int buckets = 60, cell = 14, width = 220 + buckets * cell + 20;
  const int height = 60 + cell * static_cast<int>(std::max<size_t>(topics.size(), 1)) + 40;
  std::vector<std::vector<int>> counts(topics.size(), std::vector<int>(buckets, 0));
  int most = 1;
  for (const auto& event : events) {
    size_t t = static_cast<size_t>(std::find(topics.begin(), topics.end(), event.topic()) -
                                   topics.begin());
    int b = std::min(buckets - 1, static_cast<int>(axis.position(millis_of(event)) * buckets));
    most = std::max(most, ++counts[t][static_cast<size_t>(b)]);
  }
  std::string out = header(width, height, "Compact: events per topic and time bucket");
  for (size_t t = 0; t < topics.size(); ++t) {
    double y = 40 + cell * static_cast<double>(t);
    out += str_cat("<text x=\"212\" y=\"", fixed(y + 11), "\" text-anchor=\"end\">", xml(topics[t]),
                   "</text>\n");
    for (int b = 0; b < buckets; ++b) {
      int count = counts[t][static_cast<size_t>(b)];
      if (count == 0) continue;
      out += str_cat("<rect x=\"", 220 + b * cell, "\" y=\"", fixed(y), "\" width=\"", cell - 1,
                     "\" height=\"", cell - 1, "\" fill=\"", color_of(topics, topics[t]),
                     "\" fill-opacity=\"", fixed(0.2 + 0.8 * count / most), "\"><title>", count,
                     " events</title></rect>\n");
    }
  }
  return out + "</svg>\n";
}

std::vector<std::pair<std::string, std::string>> render_views(const v1::Summary& summary,
                                                              const std::vector<v1::Event>& events,
                                                              v1::View view,
                                                              v1::TimeMapping time_mapping) {
  std::vector<int64_t> times;
  for (const auto& event : events) times.push_back(millis_of(event));
  TimeAxis axis(times, time_mapping != v1::TIME_MAPPING_LINEAR);
  std::string device = file_safe(summary.device_id());
  std::vector<std::pair<std::string, std::string>> out;
  bool all = view == v1::VIEW_ALL || view == v1::VIEW_UNSPECIFIED;
  if (all || view == v1::VIEW_TIMELINE)
    out.emplace_back("timeline_" + device + ".svg", timeline_svg(events, axis));
  if (all || view == v1::VIEW_SWIMLANE)
    out.emplace_back("swimlane_" + device + ".svg", swimlane_svg(events, axis));
  if (all || view == v1::VIEW_FLOW) out.emplace_back("flow_" + device + ".svg", flow_svg(events));
  if (all || view == v1::VIEW_COMPACT)
    out.emplace_back("compact_" + device + ".svg", compact_svg(events, axis));
  out.emplace_back("report_" + device + ".html", report_html(summary, events, axis));
  return out;
}

}  // namespace telekern::tracer
