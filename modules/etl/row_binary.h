// ClickHouse RowBinary for the rows processors make (typed values per
// column, written without parsing text; a ready-made JSON fragment is parsed):
// the insert body is a quarter of JSONEachRow's size and the server skips
// JSON parsing. Types follow the table as created on the connected
// server (the 18.16 fallbacks included); a type without an encoding here
// makes the table fall back to JSONEachRow.
#pragma once

#include <absl/status/statusor.h>

#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "column_type.h"
#include "row.h"

namespace telekern::etl {

// A column type as RowBinary lays it out (wrappers resolved).
struct BinaryType {
  enum class Kind {
    kUInt,
    kInt,
    kFloat32,
    kFloat64,
    kDecimal,
    kString,
    kDate,
    kDateTime,
    kDateTime64,
    kIPv4,
    kIPv6,
    kBool,
    kArray,
  };
  Kind kind = Kind::kString;
  bool nullable = false;
  int bytes = 8;                        // integers and decimals: 1, 2, 4, 8 (16 for wide decimals)
  int scale = 0;                        // decimals and DateTime64
  std::unique_ptr<BinaryType> element;  // arrays

  // "LowCardinality(Nullable(String))", "Array(Nullable(UInt32))", "Decimal(9, 6)", ...
  // UNIMPLEMENTED names a type this encoder does not write.
  static absl::StatusOr<BinaryType> parse(std::string_view type);
};

class RowBinaryEncoder {
 public:
  // The encoder for `schema` as created on a server with `profile`.
  static absl::StatusOr<RowBinaryEncoder> create(const TableSchema& schema,
                                                 const ServerProfile& profile);

  // Appends `rows` to `out` and returns the INSERT's column list: every
  // column, except ones with a DEFAULT expression that no row fills (the
  // server computes them). A cell missing from a row gets its type's default,
  // as JSONEachRow gives it. FAILED_PRECONDITION when some rows fill a
  // DEFAULT column and others do not (JSONEachRow can say that, RowBinary
  // cannot); INVALID_ARGUMENT names a value that does not fit its column.
  absl::StatusOr<std::string> encode(const std::vector<const Row*>& rows, std::string& out) const;

 private:
  struct Column {
    std::string name;
    BinaryType type;
    bool has_default_expr = false;
  };
  struct NameHash {
    using is_transparent = void;
    size_t operator()(std::string_view name) const { return std::hash<std::string_view>{}(name); }
  };
  std::vector<Column> columns_;
  std::unordered_map<std::string, size_t, NameHash, std::equal_to<>> index_;  // -> columns_
  // Rows name their cells with views of the processor's schema: the same few
  // addresses every row, so the name is looked up by address (checked) first.
  // Not thread-safe: one encoder per writer thread.
  mutable std::unordered_map<const char*, size_t> by_address_;
  size_t position(std::string_view name) const;
};

}  // namespace telekern::etl
