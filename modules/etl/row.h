// What processors produce and writers consume: one row for a ClickHouse
// table, or one hash for Redis, with its values already converted for the
// column types. Values are typed (numbers, strings, times, arrays), so the
// RowBinary encoder writes them without parsing text again; the same values
// render as the JSON a JSONEachRow insert, a json pipeline or DryRun shows.
// A row keeps its strings and array items in two buffers of its own, so a
// cell is 32 bytes with nothing to free.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace telekern::etl {

enum class Store { kClickHouse, kRedis };

// One cell's value as a processor converted it for its column. Strings,
// JSON fragments and array items live in the row that holds the value.
struct Value {
  enum class Kind : uint8_t {
    kNull,
    kInt,       // integer
    kUInt,      // integer, unsigned (its bits in integer)
    kDouble,    // real
    kBool,      // integer 0/1
    kString,    // size bytes at offset in the row's text
    kDateTime,  // real = epoch seconds (UTC); millis: shown with milliseconds
    kArray,     // size items at offset in the row's items (scalars)
    kJson,      // a ready-made JSON fragment (text, as kString)
  };
  Kind kind = Kind::kNull;
  bool millis = false;
  uint32_t size = 0;
  union {
    int64_t integer = 0;
    double real;
    uint64_t offset;
  };

  static Value null() { return {}; }
  static Value signed_integer(int64_t value) {
    Value out;
    out.kind = Kind::kInt;
    out.integer = value;
    return out;
  }
  static Value unsigned_integer(uint64_t value) {
    Value out;
    out.kind = Kind::kUInt;
    out.integer = static_cast<int64_t>(value);
    return out;
  }
  static Value number(double value) {
    Value out;
    out.kind = Kind::kDouble;
    out.real = value;
    return out;
  }
  static Value boolean(bool value) {
    Value out;
    out.kind = Kind::kBool;
    out.integer = value ? 1 : 0;
    return out;
  }
  static Value datetime(double epoch_seconds, bool millis) {
    Value out;
    out.kind = Kind::kDateTime;
    out.real = epoch_seconds;
    out.millis = millis;
    return out;
  }
  uint64_t unsigned_value() const { return static_cast<uint64_t>(integer); }
};

struct Cell {
  std::string_view name;  // owned by the processor's schema
  Value value;
};

struct Row {
  Store store = Store::kClickHouse;
  // ClickHouse table, or Redis hash prefix (key = "<table>:<key>").
  std::string table;
  // Redis only: the hash key and its expiry (0 = none).
  std::string key;
  int64_t expires_seconds = 0;
  // A column left out takes the table's default.
  std::vector<Cell> cells;
  // The bytes of string values and the items of array values.
  std::string text;
  std::vector<Value> items;

  // Values that keep their data in this row.
  Value string(std::string_view value);
  // "null" and "[]" become typed values; other fragments are kept as text.
  Value json_fragment(std::string_view fragment);
  // An array: begin_array(), push_item() its scalars, end_array().
  size_t begin_array() const { return items.size(); }
  void push_item(const Value& item) { items.push_back(item); }
  Value end_array(size_t begin) const;

  void add(std::string_view column, const Value& value) { cells.push_back({column, value}); }
  void add_string(std::string_view column, std::string_view value) {
    cells.push_back({column, string(value)});
  }
  void add_json(std::string_view column, std::string_view fragment) {
    cells.push_back({column, json_fragment(fragment)});
  }

  std::string_view text_of(const Value& value) const {
    return std::string_view(text).substr(value.offset, value.size);
  }
  const Value* items_of(const Value& value) const { return items.data() + value.offset; }

  // The row as one JSON object: {"col":value,...}.
  std::string json() const;
  void append_json(std::string& out) const;
  // One value as JSON ("abc" quoted, 1.5, [1,2], null, "2024-12-01 10:00:00.123").
  void append_json(const Value& value, std::string& out) const;
  std::string json(const Value& value) const;
  // Strings as their text, the rest as JSON (Redis hash fields).
  std::string plain_text(const Value& value) const;
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
