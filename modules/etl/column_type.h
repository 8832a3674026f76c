// ClickHouse column types as the MetrANOVA DDL declares them, what an older
// server gets instead (by its reported version), and how a JSON input value
// becomes a JSONEachRow value of that type.
#pragma once

#include <absl/status/statusor.h>
#include <simdjson.h>

#include <string>
#include <vector>

#include "row.h"

namespace telekern::etl {

// What the connected server supports; the fallbacks are documented in README.
struct ServerProfile {
  std::string version = "modern";
  bool datetime64 = true;       // 20.1: else DateTime (second precision)
  bool ip_types = true;         // 19.3: IPv4/IPv6, else String
  bool low_cardinality = true;  // 19.1 stable: else the plain type
  bool decimal = true;          // 19.1 without experimental flag: else Float64
  bool bool_type = true;        // 21.12: else UInt8
  bool codecs = true;           // 19.10 (Delta): else no CODEC clause
  bool ttl = true;              // 19.6: else no TTL clause
  bool now64 = true;            // 20.1: else now()

  // "18.16.1" -> the profile of that version; unparsable -> modern.
  static ServerProfile for_version(const std::string& version);
  static ServerProfile modern() { return {}; }
};

enum class BaseType { kString, kUInt, kInt, kFloat, kDecimal, kDateTime, kIPv4, kIPv6, kBool };

struct ColumnType {
  std::string declared;  // as MetrANOVA declares it, e.g. "LowCardinality(Nullable(String))"
  BaseType base = BaseType::kString;
  int bits = 64;  // integers
  bool nullable = false;
  bool array = false;
  bool element_nullable = false;
  bool subsecond = false;  // DateTime64: milliseconds where the server has the type

  static ColumnType parse(const std::string& declared);
  // The type to create on a server with `profile`.
  std::string render(const ServerProfile& profile) const;
};

struct ColumnDef {
  std::string name;
  std::string type;          // declared (modern) type
  std::string default_expr;  // e.g. "now64()"; empty = none
  std::string codec;         // e.g. "Delta,ZSTD"; empty = none
};

struct TableSchema {
  std::string name;
  std::vector<ColumnDef> columns;
  std::string order_by;      // e.g. "(`id`, `start_ts`)"
  std::string partition_by;  // empty = none
  std::string ttl;           // e.g. "start_ts + INTERVAL 7 DAY"; empty = none
  std::string engine = "MergeTree";

  // CREATE TABLE IF NOT EXISTS for `database` on a server with `profile`.
  std::string ddl(const std::string& database, const ServerProfile& profile) const;
  const ColumnDef* column(std::string_view name) const;
};

// The object or array out of a simdjson result, by value: ranging over
// `result.value_unsafe()` directly would keep a reference into a destroyed temporary.
inline simdjson::dom::object object_of(simdjson::simdjson_result<simdjson::dom::object> result) {
  return result.value_unsafe();
}
inline simdjson::dom::array array_of(simdjson::simdjson_result<simdjson::dom::array> result) {
  return result.value_unsafe();
}

// Converts `value` (a JSON input value) for `type` on `profile` into `out`,
// its strings and array items kept in `row`. Errors name the expected type.
absl::Status convert_value(const simdjson::dom::element& value, const ColumnType& type,
                           const ServerProfile& profile, Row& row, Value& out);
// The same, appended to `out` as a JSON fragment.
absl::Status encode_value(const simdjson::dom::element& value, const ColumnType& type,
                          const ServerProfile& profile, std::string& out);
// The column's default (0, "", [], null, the epoch); needs no row.
Value default_value(const ColumnType& type);
// A JSON string literal.
void append_json_string(std::string& out, std::string_view text);
// Epoch seconds (with fraction) -> "YYYY-MM-DD hh:mm:ss[.mmm]" in UTC.
std::string format_datetime(double epoch_seconds, bool millis);

}  // namespace telekern::etl
