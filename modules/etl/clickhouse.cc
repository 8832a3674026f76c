#include "clickhouse.h"

#include "telekern/strings.h"

namespace telekern::etl {
namespace {

std::string url_encode(const std::string& value) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : value) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

}  // namespace

ClickHouse::ClickHouse(ClickHouseOptions options)
    : options_(options),
      base_url_(str_cat(options.secure ? "https://" : "http://", options.host, ":", options.port)) {
  http_.base_url = base_url_;
  http_.request_timeout = options.timeout;
  http_.basic_auth_user = options.username;
  http_.basic_auth_password = options.password;
  auto client = HttpWriter::create(http_);
  if (client.ok()) client_ = std::move(*client);
}

std::string ClickHouse::params() const {
  return str_cat("database=", url_encode(options_.database));
}

absl::StatusOr<std::string> ClickHouse::query(const std::string& sql) {
  if (!client_) return absl::InvalidArgumentError(str_cat("bad ClickHouse address ", base_url_));
  auto response = client_->post("/?" + params(), sql, "text/plain");
  if (!response.ok()) return response.status();
  return std::move(response->body);
}

std::string ClickHouse::insert_path(const std::string& table, const std::string& columns,
                                    bool row_binary) const {
  std::string query = row_binary
                          ? str_cat("INSERT INTO `", table, "` (", columns, ") FORMAT RowBinary")
                          : str_cat("INSERT INTO `", table, "` FORMAT JSONEachRow");
  return str_cat("/?", params(), "&query=", url_encode(query));
}

absl::Status ClickHouse::insert_json(const std::string& table, const std::string& rows) {
  return insert(table, "", false, rows);
}

absl::Status ClickHouse::insert_row_binary(const std::string& table, const std::string& columns,
                                           const std::string& rows) {
  return insert(table, columns, true, rows);
}

absl::Status ClickHouse::insert(const std::string& table, const std::string& columns,
                                bool row_binary, const std::string& body) {
  if (!client_) return absl::InvalidArgumentError(str_cat("bad ClickHouse address ", base_url_));
  return client_
      ->post(insert_path(table, columns, row_binary), body,
             row_binary ? "application/octet-stream" : "application/x-ndjson")
      .status();
}

absl::StatusOr<std::unique_ptr<HttpStreamedPost>> ClickHouse::open_insert(
    const std::string& table, const std::string& columns, bool row_binary) {
  if (!client_) return absl::InvalidArgumentError(str_cat("bad ClickHouse address ", base_url_));
  return HttpStreamedPost::open(http_, insert_path(table, columns, row_binary),
                                row_binary ? "application/octet-stream" : "application/x-ndjson");
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
