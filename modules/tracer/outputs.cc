#include "outputs.h"

#include <absl/time/time.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "telekern/proto_time.h"
#include "telekern/strings.h"
#include "views.h"

namespace telekern::tracer {
namespace {

absl::Status write_file(const std::filesystem::path& file, const std::string& content) {
  auto temp = file;
  temp += ".tmp";
  {
    std::ofstream out(temp, std::ios::binary | std::ios::trunc);
    out.write(content.data(), static_cast<std::streamsize>(content.size()));
    if (!out) return absl::InternalError(str_cat("cannot write ", temp.string()));
  }
  std::error_code error;
  std::filesystem::rename(temp, file, error);
  if (error)
    return absl::InternalError(str_cat("cannot write ", file.string(), ": ", error.message()));
  return absl::OkStatus();
}

// Text when it is UTF-8, else "base64:<...>" so the JSON stays valid.
std::string printable(std::string_view bytes) {
  if (is_valid_utf8(bytes)) return std::string(bytes);
  static const char* kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out = "base64:";
  size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    uint32_t n = (uint8_t(bytes[i]) << 16) | (uint8_t(bytes[i + 1]) << 8) | uint8_t(bytes[i + 2]);
    for (int s = 18; s >= 0; s -= 6) out += kAlphabet[(n >> s) & 63];
  }
  if (i < bytes.size()) {
    uint32_t n = uint8_t(bytes[i]) << 16;
    if (i + 1 < bytes.size()) n |= uint8_t(bytes[i + 1]) << 8;
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += i + 1 < bytes.size() ? kAlphabet[(n >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

std::string csv_field(std::string_view field) {
  if (field.find_first_of(",\"\r\n") == std::string_view::npos) return std::string(field);
  std::string out = "\"";
  for (char c : field) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

}  // namespace

std::string file_safe(std::string_view text) {
  std::string out;
  for (char c : text)
    out +=
        (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.') ? c : '_';
  if (out.empty() || out.front() == '.') out.insert(out.begin(), '_');
  return out;
}

std::string iso_time(const google::protobuf::Timestamp& timestamp) {
  if (timestamp.seconds() == 0 && timestamp.nanos() == 0) return "";
  absl::Time time = absl::FromUnixMillis(timestamp.seconds() * 1000 + timestamp.nanos() / 1000000);
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", time, absl::UTCTimeZone());
}

nlohmann::json event_json(const v1::Event& event) {
  nlohmann::json out;
  out["topic"] = event.topic();
  out["partition"] = event.partition();
  out["offset"] = event.offset();
  out["timestamp"] = iso_time(event.timestamp());
  out["timestamp_ms"] = event.timestamp().seconds() * 1000 + event.timestamp().nanos() / 1000000;
  out["key"] = printable(event.key());
  nlohmann::json headers = nlohmann::json::object();
  for (const auto& header : event.headers()) headers[header.key()] = printable(header.value());
  out["headers"] = headers;
  auto parsed = nlohmann::json::parse(event.value(), nullptr, false);
  if (!parsed.is_discarded() && (parsed.is_object() || parsed.is_array())) {
    out["value"] = parsed;
  } else {
    out["value"] = printable(event.value());
  }
  if (!event.event_type().empty()) out["event_type"] = event.event_type();
  return out;
}

absl::StatusOr<std::vector<std::string>> write_outputs(const v1::Summary& summary,
                                                       const std::vector<v1::Event>& events,
                                                       const std::filesystem::path& dir,
                                                       const OutputOptions& options) {
  std::error_code error;
  std::filesystem::create_directories(dir, error);
  if (error)
    return absl::InternalError(str_cat("cannot create ", dir.string(), ": ", error.message()));
  std::string device = file_safe(summary.device_id());
  std::vector<std::string> files;
  auto put = [&](const std::string& name, const std::string& content) -> absl::Status {
    auto path = dir / name;
    if (auto status = write_file(path, content); !status.ok()) return status;
    files.push_back(path.string());
    return absl::OkStatus();
  };

  nlohmann::json all = nlohmann::json::array();
  for (const auto& event : events) all.push_back(event_json(event));
  nlohmann::json document = {{"device_id", summary.device_id()},
                             {"trace_id", summary.trace_id()},
                             {"complete", summary.complete()},
                             {"event_count", events.size()},
                             {"events", all}};
  if (auto status = put("events_" + device + ".json", document.dump(2)); !status.ok())
    return status;

  std::string csv = "timestamp,topic,partition,offset,event_type,key,value\n";
  for (const auto& event : events) {
    csv +=
        str_cat(csv_field(iso_time(event.timestamp())), ",", csv_field(event.topic()), ",",
                event.partition(), ",", event.offset(), ",", csv_field(event.event_type()), ",",
                csv_field(printable(event.key())), ",", csv_field(printable(event.value())), "\n");
  }
  if (auto status = put("events_" + device + ".csv", csv); !status.ok()) return status;

  if (!options.no_graphs) {
    auto views = render_views(summary, events, options.view, options.time_mapping);
    for (const auto& [name, content] : views) {
      if (auto status = put(name, content); !status.ok()) return status;
    }
  }
  if (!options.log.empty()) {
    if (auto status = put("trace.log", options.log); !status.ok()) return status;
  }
  return files;
}

}  // namespace telekern::tracer
