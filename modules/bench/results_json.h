// A run's results as JSON: OMB's TestResult (field names and units as OMB's
// result tooling reads them) plus telekern's additions in the same object
// (validity, notes, raw histograms and run metadata), so percentiles can be
// recomputed and runs overlaid from the file alone.
#pragma once

#include <absl/status/statusor.h>

#include <nlohmann/json.hpp>

#include "runner.h"
#include "telekern/hdr_histogram.h"

namespace telekern::bench {

// OMB's TestResult fields: publishRate, consumeRate, backlog,
// publishLatency50pct..., aggregatedPublishLatency99pct,
// aggregatedEndToEndLatency99pct, ... (latencies in ms, publish delay in µs).
nlohmann::json omb_result(const RunResult& result);

// omb_result plus "telekern": {runId, valid, invalidReasons, notes, started,
// finished, windows (every window, warm-up flagged), histograms (raw buckets,
// microseconds), workload (YAML), driver}.
nlohmann::json full_result(const RunResult& result, const std::string& run_id);

nlohmann::json histogram_json(const HdrHistogram& histogram);
absl::StatusOr<HdrHistogram> histogram_from_json(const nlohmann::json& json);

}  // namespace telekern::bench
