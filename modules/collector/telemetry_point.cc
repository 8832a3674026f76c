#include "telemetry_point.h"

#include <absl/time/time.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>

#include "telekern/csv.h"
#include "telekern/strings.h"

namespace telekern::collector {
namespace {

enum Column {
  kTimestamp,
  kMetricName,
  kGpuId,
  kDevice,
  kUuid,
  kModelName,
  kHostname,
  kContainer,
  kPod,
  kNamespace,
  kValue,
  kLabelsRaw
};

constexpr const char* kColumnNames[] = {"timestamp", "metricname", "gpuid",    "device",
                                        "uuid",      "modelname",  "hostname", "container",
                                        "pod",       "namespace",  "value",    "labelsraw"};

std::string normalized(std::string_view name) {
  std::string out;
  for (char c : name) {
    if (c == '_' || c == ' ' || c == '"') continue;
    out.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  }
  return out;
}

std::string_view trimmed(std::string_view text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front())))
    text.remove_prefix(1);
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back())))
    text.remove_suffix(1);
  return text;
}

bool valid_metric_name(std::string_view name) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    bool ok = std::isalpha(static_cast<unsigned char>(c)) || c == '_' || c == ':' ||
              (i > 0 && (std::isdigit(static_cast<unsigned char>(c)) || c == '.' || c == '-'));
    if (!ok) return false;
  }
  return true;
}

}  // namespace

std::string TelemetryPoint::gpu_key() const {
  if (!uuid.empty()) return uuid;
  return hostname + "/" + (device.empty() ? gpu_id : device);
}

std::string TelemetryPoint::gpu_identity() const { return uuid.empty() ? device : uuid; }

absl::StatusOr<TimePoint> parse_time(std::string_view raw) {
  std::string_view text = trimmed(raw);
  if (text.empty()) return absl::InvalidArgumentError("timestamp is empty");
  bool numeric = std::all_of(text.begin(), text.end(), [](char c) {
    return std::isdigit(static_cast<unsigned char>(c)) || c == '.';
  });
  if (numeric && text.find('.') == std::string_view::npos) {
    int64_t integer = 0;
    auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), integer);
    if (error == std::errc() && end == text.data() + text.size()) {
      using std::chrono::nanoseconds;
      nanoseconds since = integer < 10'000'000'000LL       ? std::chrono::seconds(integer)
                          : integer < 10'000'000'000'000LL ? std::chrono::milliseconds(integer)
                          : integer < 10'000'000'000'000'000LL
                              ? nanoseconds(std::chrono::microseconds(integer))
                              : nanoseconds(integer);
      return TimePoint(std::chrono::duration_cast<TimePoint::duration>(since));
    }
  }
  if (numeric) {
    double number = 0;
    auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), number);
    if (error != std::errc() || end != text.data() + text.size())
      return absl::InvalidArgumentError(str_cat("timestamp '", text, "' is not a number"));
    // Seconds until ~2286, then milliseconds, microseconds, nanoseconds.
    double seconds = number < 1e10   ? number
                     : number < 1e13 ? number / 1e3
                     : number < 1e16 ? number / 1e6
                                     : number / 1e9;
    return TimePoint(
        std::chrono::duration_cast<TimePoint::duration>(std::chrono::duration<double>(seconds)));
  }
  absl::Time time;
  std::string error;
  std::string owned(text);
  if (owned.size() >= 11 && owned[10] == ' ') owned[10] = 'T';  // "2025-07-18 20:42:34Z"
  if (!absl::ParseTime(absl::RFC3339_full, owned, &time, &error))
    return absl::InvalidArgumentError(
        str_cat("timestamp '", text, "' is not RFC 3339 (e.g. 2025-07-18T20:42:34Z): ", error));
  return absl::ToChronoTime(time);
}

std::string format_time(TimePoint time) {
  return absl::FormatTime("%Y-%m-%d%ET%H:%M:%E*SZ", absl::FromChrono(time), absl::UTCTimeZone());
}

absl::Status validate(const TelemetryPoint& point) {
  if (!valid_metric_name(point.metric_name))
    return absl::InvalidArgumentError(
        point.metric_name.empty()
            ? std::string("metric_name is empty")
            : str_cat("metric_name '", point.metric_name,
                      "' is not a metric name (letters, digits, _ and :, e.g. "
                      "DCGM_FI_DEV_GPU_TEMP)"));
  if (point.gpu_id.empty() && point.uuid.empty() && point.device.empty())
    return absl::InvalidArgumentError("row names no GPU (gpu_id, device and uuid are empty)");
  if (!std::isfinite(point.value))
    return absl::InvalidArgumentError(str_cat("value of ", point.metric_name, " is not finite"));
  if (point.time.time_since_epoch().count() <= 0)
    return absl::InvalidArgumentError("timestamp is missing or before 1970");
  return absl::OkStatus();
}

absl::StatusOr<CsvColumns> CsvColumns::from_header(std::string_view header_line) {
  auto fields = csv::split_line(header_line);
  if (!fields.ok())
    return absl::InvalidArgumentError(str_cat("header: ", fields.status().message()));
  CsvColumns columns;
  columns.width_ = fields->size();
  for (size_t i = 0; i < fields->size(); ++i) {
    auto name = normalized(trimmed((*fields)[i]));
    if (i == 0 && name.rfind("\xef\xbb\xbf", 0) == 0) name = name.substr(3);  // BOM
    for (int c = 0; c < kFields; ++c) {
      if (name == kColumnNames[c] && columns.index_[c] < 0) columns.index_[c] = static_cast<int>(i);
    }
  }
  std::vector<std::string> missing;
  if (columns.index_[kTimestamp] < 0) missing.push_back("timestamp");
  if (columns.index_[kMetricName] < 0) missing.push_back("metric_name");
  if (columns.index_[kValue] < 0) missing.push_back("value");
  if (columns.index_[kGpuId] < 0 && columns.index_[kUuid] < 0) missing.push_back("gpu_id or uuid");
  if (!missing.empty())
    return absl::InvalidArgumentError(
        str_cat("header lacks column(s) ", join(missing, ", "), "; expected ", kCsvHeader));
  return columns;
}

absl::StatusOr<TelemetryPoint> CsvColumns::parse(std::string_view line) const {
  auto split = csv::split_line(line);
  if (!split.ok()) return split.status();
  auto& fields = *split;
  if (fields.size() != width_)
    return absl::InvalidArgumentError(
        str_cat("row has ", fields.size(), " columns, the header ", width_));
  // Fields are moved out of the split line (trimmed in place when needed):
  // this runs for every row ingested and every record a collector reads.
  auto view = [&](int column) -> std::string_view {
    int index = index_[column];
    return index < 0 ? std::string_view() : trimmed(fields[static_cast<size_t>(index)]);
  };
  auto take = [&](int column) -> std::string {
    int index = index_[column];
    if (index < 0) return std::string();
    std::string& field = fields[static_cast<size_t>(index)];
    std::string_view kept = trimmed(field);
    if (kept.size() == field.size()) return std::move(field);
    return std::string(kept);
  };
  TelemetryPoint point;
  auto time = parse_time(view(kTimestamp));
  if (!time.ok()) return time.status();
  point.time = *time;
  point.metric_name = take(kMetricName);
  point.gpu_id = take(kGpuId);
  point.device = take(kDevice);
  point.uuid = take(kUuid);
  point.model_name = take(kModelName);
  point.hostname = take(kHostname);
  point.container = take(kContainer);
  point.pod = take(kPod);
  point.namespace_name = take(kNamespace);
  point.labels_raw = index_[kLabelsRaw] < 0
                         ? std::string()
                         : std::move(fields[static_cast<size_t>(index_[kLabelsRaw])]);
  std::string_view value_text = view(kValue);
  if (value_text.empty()) return absl::InvalidArgumentError("value is empty");
  double value = 0;
  auto [end, error] =
      std::from_chars(value_text.data(), value_text.data() + value_text.size(), value);
  if (error != std::errc() || end != value_text.data() + value_text.size())
    return absl::InvalidArgumentError(str_cat("value '", value_text, "' is not a number"));
  point.value = value;
  auto valid = validate(point);
  if (!valid.ok()) return valid;
  return point;
}

std::string encode_record(const TelemetryPoint& point) {
  auto nanos =
      std::chrono::duration_cast<std::chrono::nanoseconds>(point.time.time_since_epoch()).count();
  char value[32];
  auto [end, error] = std::to_chars(value, value + sizeof value, point.value);
  (void)error;
  // Field by field into one string (this runs for every ingested row).
  std::string line = std::to_string(nanos);
  line.reserve(96 + point.metric_name.size() + point.uuid.size() + point.hostname.size() +
               point.labels_raw.size());
  for (std::string_view field :
       {std::string_view(point.metric_name), std::string_view(point.gpu_id),
        std::string_view(point.device), std::string_view(point.uuid),
        std::string_view(point.model_name), std::string_view(point.hostname),
        std::string_view(point.container), std::string_view(point.pod),
        std::string_view(point.namespace_name), std::string_view(value, end - value),
        std::string_view(point.labels_raw)}) {
    line.push_back(',');
    csv::append_field(line, field);
  }
  return line;
}

absl::StatusOr<TelemetryPoint> decode_record(std::string_view value) {
  static const CsvColumns columns = *CsvColumns::from_header(kCsvHeader);
  return columns.parse(value);
}

}  // namespace telekern::collector
