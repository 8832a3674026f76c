// results/<exp-id>/report/index.html (with metrics.csv and metrics.json
// beside it), rendered from the stored run alone, and the side-by-side
// comparison of several runs (the seed's ReportGenerator).
#pragma once

#include <absl/status/statusor.h>

#include <filesystem>
#include <string>
#include <vector>

#include "charts.h"
#include "run_store.h"

namespace telekern::bench {

// Writes the run's report directory; returns the index.html path.
absl::StatusOr<std::filesystem::path> render_run_report(const RunStore& store,
                                                        const std::string& id);

struct ComparisonReport {
  std::filesystem::path path;
  Comparison comparison;
};
// Writes results/compare-<id1>-vs-<id2>.../index.html.
absl::StatusOr<ComparisonReport> render_comparison(const RunStore& store,
                                                   const std::vector<std::string>& ids,
                                                   double threshold);

}  // namespace telekern::bench
