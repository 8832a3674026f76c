// What processors produce and writers consume: one row for a ClickHouse
// table, or one hash for Redis, with its values already encoded as JSON
// fragments for the column types (so a JSONEachRow insert is a join).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace telekern::etl {

enum class Store { kClickHouse, kRedis };

struct Row {
  Store store = Store::kClickHouse;
  // ClickHouse table, or Redis hash prefix (key = "<table>:<key>").
  std::string table;
  // Redis only: the hash key and its expiry (0 = none).
  std::string key;
  int64_t expires_seconds = 0;
  // Column name (owned by the processor's schema) -> JSON fragment; a
  // column left out takes the table's default.
  std::vector<std::pair<std::string_view, std::string>> cells;

  // The row as one JSON object: {"col":value,...}.
  std::string json() const;
  void append_json(std::string& out) const;
};

// A message as a consumer hands it to processors.
struct Message {
  std::string topic;
  int32_t partition = -1;
  int64_t offset = -1;
  std::string key;
  std::string value;
  std::chrono::system_clock::time_point timestamp{};
};

}  // namespace telekern::etl
