// One GPU telemetry point and its DCGM-exporter CSV form: the header's
// columns, parsing and validating a row, and the record a point travels as
// on the telemetry topic (one canonical CSV row, keyed by GPU).
#pragma once

#include <absl/status/statusor.h>

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

namespace telekern::collector {

using TimePoint = std::chrono::system_clock::time_point;

struct TelemetryPoint {
  TimePoint time{};
  std::string metric_name;
  std::string gpu_id;
  std::string device;
  std::string uuid;
  std::string model_name;
  std::string hostname;
  std::string container;
  std::string pod;
  std::string namespace_name;
  double value = 0;
  std::string labels_raw;

  // The partition key: one GPU's points stay in one partition, in order.
  std::string gpu_key() const;
  // The id the query API names a GPU by: uuid, or device when there is none.
  std::string gpu_identity() const;
};

// The canonical column order (DCGM exporter's CSV).
inline constexpr const char* kCsvHeader =
    "timestamp,metric_name,gpu_id,device,uuid,modelName,Hostname,container,pod,namespace,value,"
    "labels_raw";

// Maps a file's header onto the columns; names match without regard to case
// or underscores (modelName = model_name). INVALID_ARGUMENT names a missing
// required column (timestamp, metric_name, value, and gpu_id or uuid).
class CsvColumns {
 public:
  static absl::StatusOr<CsvColumns> from_header(std::string_view header_line);
  // A row of this file; INVALID_ARGUMENT says what is wrong with it.
  absl::StatusOr<TelemetryPoint> parse(std::string_view line) const;
  size_t width() const { return width_; }

 private:
  static constexpr int kFields = 12;
  int index_[kFields] = {-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1};
  size_t width_ = 0;
};

// Checks a point (metric name form, finite value, a GPU identity, a time).
absl::Status validate(const TelemetryPoint& point);

// RFC 3339 ("2025-07-18T20:42:34Z", fractions and offsets allowed) or epoch
// seconds/milliseconds/nanoseconds by magnitude.
absl::StatusOr<TimePoint> parse_time(std::string_view text);
std::string format_time(TimePoint time);

// The topic record value of a point (a canonical CSV row) and back.
std::string encode_record(const TelemetryPoint& point);
absl::StatusOr<TelemetryPoint> decode_record(std::string_view value);

}  // namespace telekern::collector
