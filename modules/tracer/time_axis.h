// Maps event times to positions on a chart axis. Non-linear by default:
// each gap between consecutive distinct times gets a width growing with the
// logarithm of its length, so days without events shrink, dense bursts
// spread out, and the shrunken gaps are reported so charts can mark them.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace telekern::tracer {

class TimeAxis {
 public:
  struct Gap {
    int64_t from_ms = 0;
    int64_t to_ms = 0;
    double position = 0;  // middle of the gap on the axis, 0..1
  };

  // `times_ms` in any order.
  TimeAxis(std::vector<int64_t> times_ms, bool nonlinear);

  // 0..1 for times within the range (clamped outside it).
  double position(int64_t time_ms) const;
  // Long empty gaps (over 20x the median gap and a minute; nonlinear only).
  const std::vector<Gap>& gaps() const { return gaps_; }
  bool nonlinear() const { return nonlinear_; }
  int64_t first() const { return times_.empty() ? 0 : times_.front(); }
  int64_t last() const { return times_.empty() ? 0 : times_.back(); }

 private:
  std::vector<int64_t> times_;     // distinct, sorted
  std::vector<double> positions_;  // one per time, 0..1
  std::vector<Gap> gaps_;
  bool nonlinear_;
};

// "3d 4h", "12m 5s", "450ms".
std::string human_duration(int64_t milliseconds);

}  // namespace telekern::tracer
