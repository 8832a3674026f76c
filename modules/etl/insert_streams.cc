#include "insert_streams.h"

namespace telekern::etl {

bool InsertStreams::fits(const std::string& table, const std::string& columns,
                         bool row_binary) const {
  auto open = open_.find(table);
  return open == open_.end() ||
         (open->second.row_binary == row_binary && open->second.columns == columns);
}

void InsertStreams::append(const std::string& table, const std::string& columns, bool row_binary,
                           std::string_view body, size_t rows) {
  if (open_.empty()) opened_at_ = std::chrono::steady_clock::now();
  auto [open, created] = open_.try_emplace(table);
  Open& insert = open->second;
  if (created) {
    insert.columns = columns;
    insert.row_binary = row_binary;
    auto stream = clickhouse_->open_insert(table, columns, row_binary);
    // A stream that cannot open leaves the body to be posted whole by close().
    if (stream.ok()) insert.stream = std::move(*stream);
  }
  insert.body.append(body);
  insert.rows += rows;
  rows_ += rows;
  bytes_ += body.size();
  if (insert.stream && !insert.stream->write(body)) insert.stream.reset();
}

bool InsertStreams::failed() const {
  for (const auto& [table, insert] : open_)
    if (!insert.stream || insert.stream->failed()) return true;
  return false;
}

absl::Status InsertStreams::close(
    const std::function<void(const std::string& table, size_t rows)>& written) {
  absl::Status first = absl::OkStatus();
  for (auto it = open_.begin(); it != open_.end();) {
    Open& insert = it->second;
    absl::Status status = absl::UnavailableError("stream failed");
    if (insert.stream) {
      status = insert.stream->finish().status();
      insert.stream.reset();
    }
    if (!status.ok())  // the stream broke or was refused: the whole body once more, plainly
      status = clickhouse_->insert(it->first, insert.columns, insert.row_binary, insert.body);
    if (!status.ok()) {
      if (first.ok()) first = status;
      ++it;
      continue;
    }
    written(it->first, insert.rows);
    rows_ -= insert.rows;
    bytes_ -= insert.body.size();
    it = open_.erase(it);
  }
  return first;
}

}  // namespace telekern::etl
