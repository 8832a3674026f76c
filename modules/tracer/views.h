// The charts of a trace: SVG timeline, swimlane (a lane per topic), flow
// (transitions between topics in event order) and compact (events per topic
// and time bucket), plus the HTML report. Pure functions of the summary and
// the time-sorted events.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "telekern/tracer/v1/tracer.pb.h"
#include "time_axis.h"

namespace telekern::tracer {

// File name and content of each rendered view (report_{device}.html included
// for VIEW_ALL).
std::vector<std::pair<std::string, std::string>> render_views(const v1::Summary& summary,
                                                              const std::vector<v1::Event>& events,
                                                              v1::View view,
                                                              v1::TimeMapping time_mapping);

std::string timeline_svg(const std::vector<v1::Event>& events, const TimeAxis& axis);
std::string swimlane_svg(const std::vector<v1::Event>& events, const TimeAxis& axis);
std::string flow_svg(const std::vector<v1::Event>& events);
std::string compact_svg(const std::vector<v1::Event>& events, const TimeAxis& axis);
std::string report_html(const v1::Summary& summary, const std::vector<v1::Event>& events,
                        const TimeAxis& axis);

int64_t millis_of(const v1::Event& event);
std::string iso_time(const google::protobuf::Timestamp& timestamp);
std::string iso_millis(int64_t milliseconds);

}  // namespace telekern::tracer
