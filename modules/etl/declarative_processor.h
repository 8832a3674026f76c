// A processor defined wholly in YAML, so a new message type needs no C++:
//
//   - name: cpu_load
//     table: host_cpu                 # ClickHouse table (created if missing)
//     match: {has: [meta.host], equals: {meta.kind: cpu}}
//     unknown_fields: strict          # strict | skip | default (scope: values)
//     scope: [values]                 # objects whose every field must map to a column
//     order_by: [host, start_ts]
//     columns:
//       - {name: start_ts, path: start, type: "DateTime64(3, 'UTC')"}
//       - {name: host, path: meta.host, type: String}
//       - {name: load, path: values.load.val, type: Nullable(Float64), default: 0}
#pragma once

#include <yaml-cpp/yaml.h>

#include "processor.h"

namespace telekern::etl {

// INVALID_ARGUMENT names the entry and the key at fault.
absl::StatusOr<std::unique_ptr<Processor>> make_declarative_processor(const YAML::Node& node);

}  // namespace telekern::etl
