#include "influx_store.h"

#include <algorithm>
#include <charconv>
#include <condition_variable>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>

#include "telekern/retry.h"
#include "telekern/sleep.h"
#include "telekern/strings.h"

namespace telekern::collector {
namespace {

using nlohmann::json;

// Line protocol escapes: measurement (comma, space), tag key/value (comma, equals, space).
void append_escaped(std::string& out, std::string_view text, bool escape_equals) {
  for (char c : text) {
    if (c == ',' || c == ' ' || (escape_equals && c == '=')) out.push_back('\\');
    if (c == '\n' || c == '\r') {
      out.push_back(' ');
      continue;
    }
    out.push_back(c);
  }
}

void append_field_string(std::string& out, std::string_view text) {
  out.push_back('"');
  for (char c : text) {
    if (c == '"' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  out.push_back('"');
}

std::string url_encode(std::string_view text) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

// An InfluxQL string literal.
std::string literal(std::string_view text) {
  std::string out = "'";
  for (char c : text) {
    if (c == '\'' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  out.push_back('\'');
  return out;
}

std::string identifier(std::string_view text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  out.push_back('"');
  return out;
}

int64_t nanos(TimePoint time) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(time.time_since_epoch()).count();
}

TimePoint from_nanos(int64_t value) {
  return TimePoint(
      std::chrono::duration_cast<TimePoint::duration>(std::chrono::nanoseconds(value)));
}

std::string text_of(const json& value) {
  if (value.is_string()) return value.get<std::string>();
  if (value.is_null()) return {};
  return value.dump();
}

// Tags in sorted key order (what InfluxDB prefers), empty ones left out.
struct Tag {
  const char* key;
  std::string TelemetryPoint::*member;
};
constexpr Tag kTags[] = {{"container", &TelemetryPoint::container},
                         {"device", &TelemetryPoint::device},
                         {"gpu_id", &TelemetryPoint::gpu_id},
                         {"hostname", &TelemetryPoint::hostname},
                         {"metric", &TelemetryPoint::metric_name},
                         {"model_name", &TelemetryPoint::model_name},
                         {"namespace", &TelemetryPoint::namespace_name},
                         {"pod", &TelemetryPoint::pod},
                         {"uuid", &TelemetryPoint::uuid}};

void set_tag(TelemetryPoint& point, const std::string& key, const std::string& value) {
  for (const auto& tag : kTags) {
    if (key == tag.key) point.*tag.member = value;
  }
}

}  // namespace

absl::StatusOr<std::unique_ptr<InfluxStore>> InfluxStore::create(InfluxOptions options) {
  static const std::vector<std::string> kPrecisions = {"ns", "u", "ms", "s"};
  if (std::find(kPrecisions.begin(), kPrecisions.end(), options.precision) == kPrecisions.end())
    return absl::InvalidArgumentError(
        str_cat("influxdb precision '", options.precision, "' is not one of ns, u, ms, s"));
  options.http.base_url = options.url;
  while (!options.http.base_url.empty() && options.http.base_url.back() == '/')
    options.http.base_url.pop_back();
  if (!options.token.empty()) {
    auto colon = options.token.find(':');
    if (colon == std::string::npos) {
      options.http.headers.emplace_back("Authorization", "Token " + options.token);
    } else {
      options.http.basic_auth_user = options.token.substr(0, colon);
      options.http.basic_auth_password = options.token.substr(colon + 1);
    }
  }
  auto http = HttpWriter::create(options.http);
  if (!http.ok()) return http.status();
  return std::unique_ptr<InfluxStore>(new InfluxStore(std::move(options), std::move(*http)));
}

InfluxStore::InfluxStore(InfluxOptions options, std::unique_ptr<HttpWriter> http)
    : options_(std::move(options)), http_(std::move(http)) {
  auto slash = options_.bucket.find('/');
  database_ = options_.bucket.substr(0, slash);
  if (slash != std::string::npos) retention_policy_ = options_.bucket.substr(slash + 1);
}

std::string InfluxStore::describe() const {
  return str_cat("influxdb ", options_.url, " db=", database_,
                 retention_policy_.empty() ? "" : " rp=" + retention_policy_,
                 " measurement=", options_.measurement);
}

int InfluxStore::breaker_state() const {
  switch (http_->breaker_state()) {
    case CircuitBreaker::State::kClosed:
      return 0;
    case CircuitBreaker::State::kOpen:
      return 1;
    case CircuitBreaker::State::kHalfOpen:
      return 2;
  }
  return 0;
}

absl::Status InfluxStore::prepare() {
  auto ping = http_->get("/ping");
  if (!ping.ok()) return ping.status();
  if (!options_.create_database) return absl::OkStatus();
  auto created = run_query("CREATE DATABASE " + identifier(database_), /*post=*/true);
  return created.status();
}

std::string InfluxStore::write_path() const {
  std::string path = "/write?db=" + url_encode(database_) + "&precision=" + options_.precision;
  if (!retention_policy_.empty()) path += "&rp=" + url_encode(retention_policy_);
  return path;
}

std::string InfluxStore::line_protocol(const std::vector<TelemetryPoint>& points) const {
  int64_t divisor = options_.precision == "ns"   ? 1
                    : options_.precision == "u"  ? 1000
                    : options_.precision == "ms" ? 1000000
                                                 : 1000000000;
  std::string out;
  out.reserve(points.size() * 256);
  char number[32];
  for (const auto& point : points) {
    append_escaped(out, options_.measurement, false);
    for (const auto& tag : kTags) {
      const std::string& value = point.*tag.member;
      if (value.empty()) continue;
      out.push_back(',');
      out += tag.key;
      out.push_back('=');
      append_escaped(out, value, true);
    }
    out += " value=";
    auto [end, error] = std::to_chars(number, number + sizeof number, point.value);
    (void)error;
    out.append(number, end);
    if (std::string_view(number, end).find_first_of(".en") == std::string_view::npos) out += ".0";
    if (!point.labels_raw.empty()) {
      out += ",labels_raw=";
      append_field_string(out, point.labels_raw);
    }
    out.push_back(' ');
    int64_t stamp = nanos(point.time);
    // Round to the precision so a replayed row lands on the same timestamp.
    out += std::to_string((stamp + divisor / 2) / divisor);
    out.push_back('\n');
  }
  return out;
}

absl::Status InfluxStore::write(const std::vector<TelemetryPoint>& points, std::stop_token stop) {
  if (points.empty()) return absl::OkStatus();
  const std::string body = line_protocol(points);
  Backoff backoff(options_.http.backoff);
  for (int attempt = 1;; ++attempt) {
    auto reply = http_->post_with_retry(write_path(), body, "text/plain", stop);
    if (reply.ok() || stop.stop_requested()) return reply.status();
    // A missing database is not bad data: InfluxDB answers 404 "database not
    // found" to a write that came before prepare()'s CREATE DATABASE (a
    // fresh server: collectors start with the store check) or after the
    // database was dropped. Refusing would drop the batch; create it (when
    // allowed) or hold the batch until someone does.
    if (reply.status().message().find("database not found") == std::string_view::npos)
      return reply.status();
    if (options_.create_database && attempt == 1 &&
        run_query("CREATE DATABASE " + identifier(database_), /*post=*/true).ok())
      continue;
    if (!sleep_for(backoff.delay(attempt), stop)) return reply.status();
  }
}

absl::StatusOr<std::string> InfluxStore::run_query(const std::string& influxql, bool post) {
  std::string path = "/query?epoch=ns&db=" + url_encode(database_) + "&q=" + url_encode(influxql);
  auto reply = post ? http_->post(path, "", "application/x-www-form-urlencoded") : http_->get(path);
  if (!reply.ok()) return reply.status();
  json parsed = json::parse(reply->body, nullptr, false);
  if (parsed.is_discarded())
    return absl::InternalError(
        str_cat("influxdb answered a query with non-JSON: ", reply->body.substr(0, 200)));
  if (parsed.contains("error"))
    return absl::InvalidArgumentError(str_cat("influxdb: ", text_of(parsed["error"])));
  if (parsed.contains("results") && parsed["results"].is_array() && !parsed["results"].empty()) {
    const json& first = parsed["results"][0];
    if (first.contains("error")) {
      std::string message = text_of(first["error"]);
      if (message.find("database not found") != std::string::npos)
        return std::string("[]");  // nothing written yet
      return absl::InvalidArgumentError(str_cat("influxdb: ", message, " (query: ", influxql, ")"));
    }
    if (first.contains("series")) return first["series"].dump();
  }
  return std::string("[]");
}

absl::StatusOr<std::vector<GpuInfo>> InfluxStore::list_gpus(const std::string& host) {
  std::string where = host.empty() ? "" : " WHERE \"hostname\" = " + literal(host);
  auto series =
      run_query(str_cat("SELECT last(\"value\") FROM ", identifier(options_.measurement), where,
                        " GROUP BY \"uuid\",\"device\",\"gpu_id\",\"model_name\","
                        "\"hostname\""));
  if (!series.ok()) return series.status();
  std::map<std::string, GpuInfo> gpus;
  for (const auto& one : json::parse(*series)) {
    TelemetryPoint tags;
    if (one.contains("tags"))
      for (const auto& [key, value] : one["tags"].items()) set_tag(tags, key, text_of(value));
    TimePoint last{};
    for (const auto& row : one.value("values", json::array()))
      if (row.is_array() && !row.empty() && row[0].is_number_integer())
        last = std::max(last, from_nanos(row[0].get<int64_t>()));
    std::string id = tags.gpu_identity();
    if (id.empty()) id = tags.hostname + "/" + tags.gpu_id;
    auto& gpu = gpus[id];
    if (last >= gpu.last_seen) {
      gpu = {id, tags.gpu_id, tags.device, tags.uuid, tags.model_name, tags.hostname, last};
    }
  }
  std::vector<GpuInfo> out;
  for (auto& [id, gpu] : gpus) out.push_back(std::move(gpu));
  std::sort(out.begin(), out.end(), [](const GpuInfo& a, const GpuInfo& b) {
    return std::tie(a.hostname, a.gpu_id, a.id) < std::tie(b.hostname, b.gpu_id, b.id);
  });
  return out;
}

absl::StatusOr<TelemetryPage> InfluxStore::query(const TelemetryQuery& query) {
  std::string where =
      str_cat("(\"uuid\" = ", literal(query.gpu), " OR \"device\" = ", literal(query.gpu),
              ") AND time >= ", nanos(query.start), " AND time <= ", nanos(query.end));
  if (!query.metrics.empty()) {
    std::vector<std::string> any;
    for (const auto& metric : query.metrics) any.push_back("\"metric\" = " + literal(metric));
    where += " AND (" + join(any, " OR ") + ")";
  }
  std::string measurement = identifier(options_.measurement);
  TelemetryPage page;
  if (!query.window) {
    auto series = run_query(str_cat(
        "SELECT \"value\",\"labels_raw\",\"metric\",\"gpu_id\",\"device\",\"uuid\",\"model_name\","
        "\"hostname\",\"container\",\"pod\",\"namespace\" FROM ",
        measurement, " WHERE ", where, " ORDER BY time ASC LIMIT ", query.limit + 1, " OFFSET ",
        query.offset));
    if (!series.ok()) return series.status();
    for (const auto& one : json::parse(*series)) {
      std::vector<std::string> columns = one.value("columns", std::vector<std::string>{});
      for (const auto& row : one.value("values", json::array())) {
        TelemetryPoint point;
        for (size_t i = 0; i < columns.size() && i < row.size(); ++i) {
          const auto& column = columns[i];
          if (column == "time") {
            point.time = from_nanos(row[i].get<int64_t>());
          } else if (column == "value") {
            point.value = row[i].is_number() ? row[i].get<double>() : 0;
          } else if (column == "labels_raw") {
            point.labels_raw = text_of(row[i]);
          } else {
            set_tag(point, column, text_of(row[i]));
          }
        }
        page.points.push_back(std::move(point));
      }
    }
  } else {
    auto series = run_query(str_cat(
        "SELECT ", query.aggregate == Aggregate::kMax ? "max" : "mean", "(\"value\") FROM ",
        measurement, " WHERE ", where, " GROUP BY time(", query.window->count(),
        "ms),\"metric\",\"uuid\",\"device\",\"gpu_id\",\"model_name\",\"hostname\" fill(none)"));
    if (!series.ok()) return series.status();
    for (const auto& one : json::parse(*series)) {
      TelemetryPoint tags;
      if (one.contains("tags"))
        for (const auto& [key, value] : one["tags"].items()) set_tag(tags, key, text_of(value));
      for (const auto& row : one.value("values", json::array())) {
        if (!row.is_array() || row.size() < 2 || !row[1].is_number()) continue;
        TelemetryPoint point = tags;
        point.time = from_nanos(row[0].get<int64_t>());
        point.value = row[1].get<double>();
        page.points.push_back(std::move(point));
      }
    }
    std::stable_sort(page.points.begin(), page.points.end(),
                     [](const TelemetryPoint& a, const TelemetryPoint& b) {
                       return std::tie(a.time, a.metric_name) < std::tie(b.time, b.metric_name);
                     });
    auto begin = std::min(query.offset, page.points.size());
    page.points.erase(page.points.begin(), page.points.begin() + static_cast<long>(begin));
  }
  if (page.points.size() > query.limit) {
    page.points.resize(query.limit);
    page.more = true;
  }
  return page;
}

absl::StatusOr<std::vector<std::string>> InfluxStore::list_namespaces() {
  auto series = run_query(str_cat("SHOW TAG VALUES FROM ", identifier(options_.measurement),
                                  " WITH KEY = \"namespace\""));
  if (!series.ok()) return series.status();
  std::vector<std::string> out;
  for (const auto& one : json::parse(*series))
    for (const auto& row : one.value("values", json::array()))
      if (row.is_array() && row.size() >= 2) out.push_back(text_of(row[1]));
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

}  // namespace telekern::collector
