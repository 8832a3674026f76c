#include "metric_catalog.h"

#include <absl/strings/ascii.h>
#include <absl/strings/str_join.h>

#include <map>
#include "telekern/strings.h"

namespace telekern::monitor {

const std::vector<MetricInfo>& metric_catalog() {
  using S = v1::MetricSample;
  static const std::vector<MetricInfo> catalog = {
      {"cpu", "percent", "telekern_node_cpu_percent", "CPU busy, all cores (%)",
       [](const S& s) { return s.cpu_percent(); }},
      {"memory", "percent", "telekern_node_memory_percent", "Memory in use (%)",
       [](const S& s) { return s.memory_percent(); }},
      {"disk_io", "MB/s", "telekern_node_disk_io_mbytes_per_second",
       "Disk read + write (MB/s)", [](const S& s) { return s.disk_io_mbps(); }},
      {"disk_read", "MB/s", "telekern_node_disk_read_mbytes_per_second", "Disk read (MB/s)",
       [](const S& s) { return s.disk_read_mbps(); }},
      {"disk_write", "MB/s", "telekern_node_disk_write_mbytes_per_second", "Disk write (MB/s)",
       [](const S& s) { return s.disk_write_mbps(); }},
      {"network", "Mbit/s", "telekern_node_network_mbits_per_second",
       "Network receive + transmit (Mbit/s)", [](const S& s) { return s.network_mbps(); }},
      {"network_rx", "Mbit/s", "telekern_node_network_rx_mbits_per_second",
       "Network receive (Mbit/s)", [](const S& s) { return s.network_rx_mbps(); }},
      {"network_tx", "Mbit/s", "telekern_node_network_tx_mbits_per_second",
       "Network transmit (Mbit/s)", [](const S& s) { return s.network_tx_mbps(); }},
      {"load1", "", "telekern_node_load1", "Load average over 1 minute",
       [](const S& s) { return s.load1(); }},
      {"load5", "", "telekern_node_load5", "Load average over 5 minutes",
       [](const S& s) { return s.load5(); }},
      {"load15", "", "telekern_node_load15", "Load average over 15 minutes",
       [](const S& s) { return s.load15(); }},
  };
  return catalog;
}

absl::StatusOr<std::string> canonical_metric(std::string_view name) {
  static const std::map<std::string, std::string> aliases = {
      {"cpu_percent", "cpu"},       {"cpu_usage", "cpu"},         {"mem", "memory"},
      {"memory_percent", "memory"}, {"memory_usage", "memory"},   {"disk", "disk_io"},
      {"disk_io_mbps", "disk_io"},  {"net", "network"},           {"network_mbps", "network"},
      {"network_io", "network"},    {"load", "load1"},            {"disk_read_mbps", "disk_read"},
      {"disk_write_mbps", "disk_write"}, {"network_rx_mbps", "network_rx"},
      {"network_tx_mbps", "network_tx"}};
  std::string lower = to_lower(name);
  if (auto alias = aliases.find(lower); alias != aliases.end()) return alias->second;
  std::vector<std::string> names;
  for (const auto& metric : metric_catalog()) {
    if (metric.name == lower) return lower;
    names.emplace_back(metric.name);
  }
  return absl::InvalidArgumentError("unknown metric '" + std::string(name) +
                                    "'; use one of: " + join(names, ", "));
}

std::optional<double> metric_value(const v1::MetricSample& sample, std::string_view metric) {
  for (const auto& info : metric_catalog()) {
    if (info.name == metric) return info.read(sample);
  }
  return std::nullopt;
}

void fill_derived(v1::MetricSample& sample) {
  sample.set_disk_io_mbps(sample.disk_read_mbps() + sample.disk_write_mbps());
  sample.set_network_mbps(sample.network_rx_mbps() + sample.network_tx_mbps());
}

}  // namespace telekern::monitor
