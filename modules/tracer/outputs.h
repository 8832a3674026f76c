// The files a trace leaves in its output dir, named as KomniTrace names
// them: events_{device}.json and .csv, timeline/swimlane/flow/compact SVGs,
// report_{device}.html (self-contained, Plotly embedded) and trace.log.
#pragma once

#include <absl/status/statusor.h>

#include <filesystem>
#include <string>
#include <vector>

#include "telekern/tracer/v1/tracer.pb.h"

namespace telekern::tracer {

struct OutputOptions {
  bool no_graphs = false;
  v1::View view = v1::VIEW_ALL;
  v1::TimeMapping time_mapping = v1::TIME_MAPPING_NONLINEAR;
  std::string log;  // trace.log content; not written when empty
};

// Writes the outputs; returns the paths written. `events` are time-sorted.
absl::StatusOr<std::vector<std::string>> write_outputs(const v1::Summary& summary,
                                                       const std::vector<v1::Event>& events,
                                                       const std::filesystem::path& dir,
                                                       const OutputOptions& options);

// A device id made safe for a file name.
std::string file_safe(std::string_view text);

}  // namespace telekern::tracer
