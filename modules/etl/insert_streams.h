// The ClickHouse inserts a pipeline's writer keeps open across batches: one
// streamed INSERT per table (a chunked HTTP body the server parses as it
// arrives), so the server's fixed cost per insert (a MergeTree part of a few
// hundred files for the flow table) is paid once for many batches. Each
// insert's body is also kept until the server accepted it: a stream that
// broke is sent again whole as a plain insert, so nothing is lost.
#pragma once

#include <absl/status/status.h>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "clickhouse.h"

namespace telekern::etl {

class InsertStreams {
 public:
  explicit InsertStreams(ClickHouse* clickhouse) : clickhouse_(clickhouse) {}

  // True when `table` has no open insert or one for the same format and
  // columns (else close() first: one INSERT has one column list).
  bool fits(const std::string& table, const std::string& columns, bool row_binary) const;
  // Adds `rows` encoded rows for `table` to its open insert, opening one.
  void append(const std::string& table, const std::string& columns, bool row_binary,
              std::string_view body, size_t rows);

  bool empty() const { return open_.empty(); }
  size_t rows() const { return rows_; }
  size_t bytes() const { return bytes_; }
  // When the oldest open insert was opened.
  std::chrono::steady_clock::time_point opened_at() const { return opened_at_; }
  // A stream broke (server gone, request refused): better closed now than written on.
  bool failed() const;

  // Ends every open insert and waits for the server's answer; an insert whose
  // stream failed is posted again whole. Each insert that succeeded is
  // reported to `written` (table, rows) and dropped; the first error is
  // returned and the failed inserts stay for the next close().
  absl::Status close(const std::function<void(const std::string& table, size_t rows)>& written);

 private:
  struct Open {
    std::string columns;
    bool row_binary = true;
    std::string body;  // everything sent, for a second attempt
    size_t rows = 0;
    std::unique_ptr<HttpStreamedPost> stream;  // null once failed: post `body` instead
  };
  ClickHouse* clickhouse_;
  std::map<std::string, Open> open_;
  size_t rows_ = 0;
  size_t bytes_ = 0;
  std::chrono::steady_clock::time_point opened_at_{};
};

}  // namespace telekern::etl
