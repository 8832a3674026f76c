// The metric names thresholds, history, CSV and Prometheus share, and how
// each is read from a sample. Names are short ("cpu", "memory", "disk_io");
// a few aliases from the seed's forms are accepted.
#pragma once

#include <absl/status/statusor.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "telekern/monitor/v1/monitor.pb.h"

namespace telekern::monitor {

struct MetricInfo {
  std::string_view name;        // "cpu"
  std::string_view unit;        // "percent"
  std::string_view prometheus;  // "telekern_node_cpu_percent"
  std::string_view help;
  double (*read)(const v1::MetricSample&);
};

// Every metric, in CSV column order.
const std::vector<MetricInfo>& metric_catalog();

// The canonical name of `name` (case-insensitive; "cpu_percent", "cpu_usage",
// "mem", "disk", "net" are accepted) or INVALID_ARGUMENT listing the names.
absl::StatusOr<std::string> canonical_metric(std::string_view name);

// The metric's value in the sample; nullopt for an unknown name.
std::optional<double> metric_value(const v1::MetricSample& sample, std::string_view metric);

// Fills the derived totals (disk_io_mbps, network_mbps).
void fill_derived(v1::MetricSample& sample);

// The metric name used for node liveness alerts.
inline constexpr std::string_view kNodeStatusMetric = "node_status";

}  // namespace telekern::monitor
