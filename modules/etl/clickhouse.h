// ClickHouse over its HTTP interface: queries, JSONEachRow and RowBinary inserts, the
// server's version (for the type fallbacks) and tables created from the
// built-in DDL when missing.
#pragma once

#include <absl/status/statusor.h>

#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>

#include "column_type.h"
#include "telekern/http_streamed_post.h"
#include "telekern/http_writer.h"

namespace telekern::etl {

struct ClickHouseOptions {
  std::string host = "localhost";
  int port = 8123;
  std::string database = "default";
  std::string username = "default";
  std::string password;
  bool secure = false;
  std::chrono::milliseconds timeout{30000};
};

class ClickHouse {
 public:
  explicit ClickHouse(ClickHouseOptions options);

  // Runs `sql`; returns the body (TabSeparated unless the query says FORMAT).
  absl::StatusOr<std::string> query(const std::string& sql);
  // INSERT INTO `table` FORMAT JSONEachRow with `rows` (one JSON object a line).
  absl::Status insert_json(const std::string& table, const std::string& rows);
  // INSERT INTO `table` (columns) FORMAT RowBinary with `rows` encoded for them.
  absl::Status insert_row_binary(const std::string& table, const std::string& columns,
                                 const std::string& rows);
  // INSERT INTO `table` with an encoded body: RowBinary for `columns` when
  // `row_binary`, else JSONEachRow (columns unused).
  absl::Status insert(const std::string& table, const std::string& columns, bool row_binary,
                      const std::string& body);
  // The same INSERT as one streamed request (chunked body): the server parses
  // rows as they arrive and writes them when the body ends.
  absl::StatusOr<std::unique_ptr<HttpStreamedPost>> open_insert(const std::string& table,
                                                                const std::string& columns,
                                                                bool row_binary);
  // The server's version and what it supports (asked once per connection success).
  absl::StatusOr<ServerProfile> profile();
  // CREATE TABLE IF NOT EXISTS, once per table and process lifetime of this object.
  absl::Status ensure_table(const TableSchema& schema);
  const ClickHouseOptions& options() const { return options_; }
  std::string url() const { return base_url_; }

 private:
  std::string params() const;
  std::string insert_path(const std::string& table, const std::string& columns,
                          bool row_binary) const;
  ClickHouseOptions options_;
  std::string base_url_;
  HttpWriterOptions http_;
  std::unique_ptr<HttpWriter> client_;  // null when the address is malformed
  std::mutex mutex_;
  std::optional<ServerProfile> profile_;
  std::set<std::string> ensured_;
};

}  // namespace telekern::etl
