#include "clickhouse.h"

#include "telekern/strings.h"

namespace telekern::etl {

ClickHouse::ClickHouse(ClickHouseOptions options)
    : options_(options),
      client_(http::ClientOptions{options.host, options.port, options.secure, options.username,
                                  options.password, std::chrono::milliseconds(2000),
                                  options.timeout}) {}

std::string ClickHouse::params() const {
  return str_cat("database=", http::url_encode(options_.database));
}

absl::StatusOr<std::string> ClickHouse::query(const std::string& sql) {
  auto response = client_.post("/?" + params(), sql);
  if (!response.ok()) return response.status();
  return std::move(response->body);
}

absl::Status ClickHouse::insert_json(const std::string& table, const std::string& rows) {
  std::string path =
      str_cat("/?", params(),
              "&query=", http::url_encode(str_cat("INSERT INTO `", table, "` FORMAT JSONEachRow")));
  return client_.post(path, rows, "application/x-ndjson").status();
}

absl::StatusOr<ServerProfile> ClickHouse::profile() {
  {
    std::lock_guard lock(mutex_);
    if (profile_) return *profile_;
  }
  auto version = query("SELECT version()");
  if (!version.ok()) return version.status();
  std::string text = *version;
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  std::lock_guard lock(mutex_);
  profile_ = ServerProfile::for_version(text);
  return *profile_;
}

absl::Status ClickHouse::ensure_table(const TableSchema& schema) {
  {
    std::lock_guard lock(mutex_);
    if (ensured_.count(schema.name)) return absl::OkStatus();
  }
  auto profile = this->profile();
  if (!profile.ok()) return profile.status();
  auto created = query(schema.ddl(options_.database, *profile));
  if (!created.ok())
    return absl::Status(created.status().code(),
                        str_cat("creating table ", schema.name, ": ", created.status().message()));
  std::lock_guard lock(mutex_);
  ensured_.insert(schema.name);
  return absl::OkStatus();
}

}  // namespace telekern::etl
