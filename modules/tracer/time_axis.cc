#include "time_axis.h"

#include <algorithm>
#include <cmath>

#include "telekern/strings.h"

namespace telekern::tracer {

TimeAxis::TimeAxis(std::vector<int64_t> times_ms, bool nonlinear)
    : times_(std::move(times_ms)), nonlinear_(nonlinear) {
  std::sort(times_.begin(), times_.end());
  times_.erase(std::unique(times_.begin(), times_.end()), times_.end());
  if (times_.size() < 2) {
    positions_.assign(times_.size(), 0.5);
    return;
  }
  std::vector<double> widths;
  std::vector<int64_t> lengths;
  for (size_t i = 0; i + 1 < times_.size(); ++i) lengths.push_back(times_[i + 1] - times_[i]);
  std::vector<int64_t> sorted = lengths;
  std::nth_element(sorted.begin(), sorted.begin() + static_cast<std::ptrdiff_t>(sorted.size() / 2),
                   sorted.end());
  double unit = std::max<double>(1.0, static_cast<double>(sorted[sorted.size() / 2]));
  for (int64_t length : lengths) {
    widths.push_back(nonlinear_ ? std::log1p(static_cast<double>(length) / unit)
                                : static_cast<double>(length));
  }
  double total = 0;
  for (double width : widths) total += width;
  positions_.push_back(0);
  double at = 0;
  for (double width : widths) {
    at += width;
    positions_.push_back(total > 0 ? at / total : 0);
  }
  if (!nonlinear_) return;
  for (size_t i = 0; i < lengths.size(); ++i) {
    if (static_cast<double>(lengths[i]) > 20 * unit && lengths[i] > 60000)
      gaps_.push_back({times_[i], times_[i + 1], (positions_[i] + positions_[i + 1]) / 2});
  }
}

double TimeAxis::position(int64_t time_ms) const {
  if (times_.empty()) return 0.5;
  if (time_ms <= times_.front()) return positions_.front();
  if (time_ms >= times_.back()) return positions_.back();
  auto it = std::upper_bound(times_.begin(), times_.end(), time_ms);
  size_t i = static_cast<size_t>(it - times_.begin()) - 1;
  double fraction =
      static_cast<double>(time_ms - times_[i]) / static_cast<double>(times_[i + 1] - times_[i]);
  return positions_[i] + fraction * (positions_[i + 1] - positions_[i]);
}

std::string human_duration(int64_t ms) {
  if (ms < 1000) return str_cat(ms, "ms");
  int64_t s = ms / 1000;
  if (s < 60) return str_cat(s, "s");
  if (s < 3600) return str_cat(s / 60, "m ", s % 60, "s");
  if (s < 86400) return str_cat(s / 3600, "h ", (s % 3600) / 60, "m");
  return str_cat(s / 86400, "d ", (s % 86400) / 3600, "h");
}

}  // namespace telekern::tracer
