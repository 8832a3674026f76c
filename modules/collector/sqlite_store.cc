#include "sqlite_store.h"

#include <algorithm>
#include <map>
#include <tuple>

#include "telekern/retry.h"
#include "telekern/strings.h"

namespace telekern::collector {
namespace {

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS telemetry (
  series     TEXT    NOT NULL,
  time_ns    INTEGER NOT NULL,
  metric     TEXT    NOT NULL,
  gpu_id     TEXT    NOT NULL,
  device     TEXT    NOT NULL,
  uuid       TEXT    NOT NULL,
  model_name TEXT    NOT NULL,
  hostname   TEXT    NOT NULL,
  container  TEXT    NOT NULL,
  pod        TEXT    NOT NULL,
  namespace  TEXT    NOT NULL,
  value      REAL    NOT NULL,
  labels_raw TEXT    NOT NULL,
  PRIMARY KEY (series, time_ns)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS telemetry_by_uuid ON telemetry (uuid, time_ns);
CREATE INDEX IF NOT EXISTS telemetry_by_device ON telemetry (device, time_ns);
CREATE INDEX IF NOT EXISTS telemetry_by_host ON telemetry (hostname, uuid, device);
CREATE INDEX IF NOT EXISTS telemetry_by_namespace ON telemetry (namespace);
)sql";

constexpr const char* kColumns =
    "time_ns, metric, gpu_id, device, uuid, model_name, hostname, container, pod, namespace, "
    "value, labels_raw";

int64_t nanos(TimePoint time) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(time.time_since_epoch()).count();
}
TimePoint from_nanos(int64_t value) {
  return TimePoint(
      std::chrono::duration_cast<TimePoint::duration>(std::chrono::nanoseconds(value)));
}

// The tag set in InfluxDB's series order (keys sorted, empty tags left out).
std::string series_of(const TelemetryPoint& point) {
  std::string out;
  auto add = [&](const char* key, const std::string& value) {
    if (value.empty()) return;
    out += ',';
    out += key;
    out += '=';
    out += value;
  };
  add("container", point.container);
  add("device", point.device);
  add("gpu_id", point.gpu_id);
  add("hostname", point.hostname);
  add("metric", point.metric_name);
  add("model_name", point.model_name);
  add("namespace", point.namespace_name);
  add("pod", point.pod);
  add("uuid", point.uuid);
  return out;
}

TelemetryPoint point_of(const sqlite::Statement& row) {
  TelemetryPoint point;
  point.time = from_nanos(row.column_int64(0));
  point.metric_name = row.column_text(1);
  point.gpu_id = row.column_text(2);
  point.device = row.column_text(3);
  point.uuid = row.column_text(4);
  point.model_name = row.column_text(5);
  point.hostname = row.column_text(6);
  point.container = row.column_text(7);
  point.pod = row.column_text(8);
  point.namespace_name = row.column_text(9);
  point.value = row.column_double(10);
  point.labels_raw = row.column_text(11);
  return point;
}

}  // namespace

absl::StatusOr<std::unique_ptr<SqliteStore>> SqliteStore::open(const std::string& path) {
  auto database = sqlite::Database::open(path);
  if (!database.ok()) return database.status();
  auto schema = (*database)->exec(kSchema);
  if (!schema.ok()) return schema;
  return std::unique_ptr<SqliteStore>(new SqliteStore(std::move(*database)));
}

absl::Status SqliteStore::write(const std::vector<TelemetryPoint>& points, std::stop_token stop) {
  if (points.empty()) return absl::OkStatus();
  Backoff backoff({std::chrono::milliseconds(50), std::chrono::seconds(2), 2.0, 0});
  return retry(
      [&]() -> absl::Status {
        std::lock_guard lock(mutex_);
        return database_->transaction([&]() -> absl::Status {
          auto insert = database_->prepare(
              str_cat("INSERT OR REPLACE INTO telemetry (series, ", kColumns,
                      ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"));
          if (!insert.ok()) return insert.status();
          for (const auto& point : points) {
            // Millisecond precision, as the InfluxDB store writes by default.
            int64_t stamp = (nanos(point.time) + 500'000) / 1'000'000 * 1'000'000;
            insert->bind(1, series_of(point))
                .bind(2, stamp)
                .bind(3, point.metric_name)
                .bind(4, point.gpu_id)
                .bind(5, point.device)
                .bind(6, point.uuid)
                .bind(7, point.model_name)
                .bind(8, point.hostname)
                .bind(9, point.container)
                .bind(10, point.pod)
                .bind(11, point.namespace_name)
                .bind(12, point.value)
                .bind(13, point.labels_raw);
            auto ran = insert->run();
            if (!ran.ok()) return ran;
            insert->reset();
          }
          return absl::OkStatus();
        });
      },
      backoff, stop, [&](int, const absl::Status&) { ++retries_; });
}

absl::StatusOr<std::vector<GpuInfo>> SqliteStore::list_gpus(const std::string& host) {
  std::lock_guard lock(mutex_);
  auto select = database_->prepare(
      "SELECT uuid, device, gpu_id, model_name, hostname, MAX(time_ns) FROM telemetry "
      "WHERE ?1 = '' OR hostname = ?1 GROUP BY uuid, device, gpu_id, model_name, hostname");
  if (!select.ok()) return select.status();
  select->bind(1, host);
  std::map<std::string, GpuInfo> gpus;
  while (true) {
    auto row = select->step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    TelemetryPoint tags;
    tags.uuid = select->column_text(0);
    tags.device = select->column_text(1);
    tags.gpu_id = select->column_text(2);
    tags.model_name = select->column_text(3);
    tags.hostname = select->column_text(4);
    TimePoint last = from_nanos(select->column_int64(5));
    std::string id = tags.gpu_identity();
    if (id.empty()) id = tags.hostname + "/" + tags.gpu_id;
    auto& gpu = gpus[id];
    if (last >= gpu.last_seen)
      gpu = {id, tags.gpu_id, tags.device, tags.uuid, tags.model_name, tags.hostname, last};
  }
  std::vector<GpuInfo> out;
  for (auto& [id, gpu] : gpus) out.push_back(std::move(gpu));
  std::sort(out.begin(), out.end(), [](const GpuInfo& a, const GpuInfo& b) {
    return std::tie(a.hostname, a.gpu_id, a.id) < std::tie(b.hostname, b.gpu_id, b.id);
  });
  return out;
}

absl::StatusOr<TelemetryPage> SqliteStore::query(const TelemetryQuery& query) {
  std::string where = "(uuid = ?1 OR device = ?1) AND time_ns >= ?2 AND time_ns <= ?3";
  if (!query.metrics.empty()) {
    std::vector<std::string> slots;
    for (size_t i = 0; i < query.metrics.size(); ++i) slots.push_back(str_cat("?", i + 4));
    where += " AND metric IN (" + join(slots, ", ") + ")";
  }
  std::string sql;
  if (!query.window) {
    sql = str_cat("SELECT ", kColumns, " FROM telemetry WHERE ", where,
                  " ORDER BY time_ns, series LIMIT ", query.limit + 1, " OFFSET ", query.offset);
  } else {
    int64_t window = query.window->count() * 1'000'000;
    sql = str_cat("SELECT (time_ns / ", window, ") * ", window,
                  " AS bucket, metric, gpu_id, device, uuid, model_name, hostname, '', '', '', ",
                  query.aggregate == Aggregate::kMax ? "MAX" : "AVG",
                  "(value), '' FROM telemetry WHERE ", where,
                  " GROUP BY bucket, metric, uuid, device, gpu_id, model_name, hostname "
                  "ORDER BY bucket, metric LIMIT ",
                  query.limit + 1, " OFFSET ", query.offset);
  }
  std::lock_guard lock(mutex_);
  auto select = database_->prepare(sql);
  if (!select.ok()) return select.status();
  select->bind(1, query.gpu).bind(2, nanos(query.start)).bind(3, nanos(query.end));
  for (size_t i = 0; i < query.metrics.size(); ++i)
    select->bind(static_cast<int>(i + 4), query.metrics[i]);
  TelemetryPage page;
  while (true) {
    auto row = select->step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    page.points.push_back(point_of(*select));
  }
  if (page.points.size() > query.limit) {
    page.points.resize(query.limit);
    page.more = true;
  }
  return page;
}

absl::StatusOr<std::vector<std::string>> SqliteStore::list_namespaces() {
  std::lock_guard lock(mutex_);
  auto select = database_->prepare(
      "SELECT DISTINCT namespace FROM telemetry WHERE namespace != '' ORDER BY namespace");
  if (!select.ok()) return select.status();
  std::vector<std::string> out;
  while (true) {
    auto row = select->step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    out.push_back(select->column_text(0));
  }
  return out;
}

}  // namespace telekern::collector
