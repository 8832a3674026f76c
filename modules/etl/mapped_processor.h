// The mechanics shared by built-in and declarative processors: columns
// filled from JSON pointers with type conversion, required fields, and the
// unknown-field policy over the scopes a processor owns.
#pragma once

#include <absl/container/flat_hash_map.h>

#include <memory>
#include <set>
#include <unordered_map>

#include "processor.h"

namespace telekern::etl {

struct Mapping {
  std::string column;
  std::string pointer;           // "" = filled by code
  std::string missing_fragment;  // written when the input lacks it; "" = column default
  ColumnType type;
};

class MappedProcessor : public Processor {
 public:
  const ProcessorDescription& describe() const override { return description_; }
  const TableSchema* schema() const override {
    return description_.store == Store::kClickHouse ? &schema_ : nullptr;
  }
  // Fills the column caches for every schema column and mapping: build()
  // then only reads them (safe on several threads).
  void prepare() override;

 protected:
  // Adds a column filled from `pointer` (dotted or /pointer), typed from the schema.
  void map(const std::string& column, const std::string& path, std::string missing = "");
  void require(const std::string& path) { required_.push_back(to_pointer(path)); }
  // Children of `scope` (e.g. "values") must be known: mapped or listed in known().
  void own_scope(const std::string& path) { scopes_.push_back(to_pointer(path)); }
  void known(const std::string& path) { known_.insert(to_pointer(path)); }

  // Another pointer for gather() to find (a code-filled column's input);
  // returns its index for Found::watched(). Call in the constructor.
  size_t watch(const std::string& path);

  // The document's values at the mapped and watched pointers, found in one
  // walk over the document (a null value counts as absent).
  struct Found {
    std::vector<std::optional<simdjson::dom::element>> values;  // by mapping, then watched
    size_t mapped = 0;                                          // mappings (watched ones follow)
    const std::optional<simdjson::dom::element>& operator[](size_t slot) const {
      return values[slot];
    }
    const std::optional<simdjson::dom::element>& watched(size_t index) const {
      return values[mapped + index];
    }
  };
  Found gather(const simdjson::dom::element& document) const;

  // FAILED_PRECONDITION naming the first missing required field.
  absl::Status check_required(const simdjson::dom::element& document) const;
  absl::Status check_required(const simdjson::dom::element& document, const Found& found) const;
  // Applies the unknown-field policy to the owned scopes.
  absl::Status check_unknown(const simdjson::dom::element& document, BuildContext& context) const;
  // Fills every pointer mapping into `row`.
  absl::Status fill(const simdjson::dom::element& document, BuildContext& context, Row& row) const;
  absl::Status fill(const Found& found, BuildContext& context, Row& row) const;
  // One value into `row` for `column` (type from the schema), with the policy.
  absl::Status put(const simdjson::dom::element& value, const std::string& column,
                   BuildContext& context, Row& row) const;
  // A ready-made value (held by `row`), string or JSON fragment for `column`.
  void put_value(const std::string& column, const Value& value, Row& row) const;
  void put_string(const std::string& column, std::string_view text, Row& row) const;
  void put_fragment(const std::string& column, std::string_view fragment, Row& row) const;
  const ColumnType& type_of(const std::string& column) const;
  Row new_row() const;

  ProcessorDescription description_;
  TableSchema schema_;
  std::vector<Mapping> mappings_;
  std::vector<std::string> required_;

 private:
  // A column's parsed type and the name rows point at (the schema's, or the mapping's).
  struct ColumnInfo {
    ColumnType type;
    std::string_view name;
  };
  const ColumnInfo& info(const std::string& column) const;
  absl::Status put_typed(const simdjson::dom::element& value, const ColumnInfo& column,
                         BuildContext& context, Row& row) const;
  void walk(const simdjson::dom::element& value, std::string& pointer, BuildContext& context,
            absl::Status& status) const;
  // The mapped and watched pointers as a tree of object keys, so gather()
  // visits each key of the document once (built by prepare()).
  struct PathNode {
    std::vector<size_t> slots;  // pointers ending here
    absl::flat_hash_map<std::string, std::unique_ptr<PathNode>> children;
  };
  void build_paths() const;
  void gather_node(const simdjson::dom::element& value, const PathNode& node,
                   const simdjson::dom::element& document, Found& found) const;
  const std::string& pointer_of(size_t slot) const {
    return slot < mappings_.size() ? mappings_[slot].pointer : watched_[slot - mappings_.size()];
  }
  std::vector<std::string> watched_;
  mutable std::unique_ptr<PathNode> paths_;
  mutable std::vector<size_t> escaped_slots_;      // pointers with ~ escapes: looked up one by one
  mutable std::vector<ptrdiff_t> required_slots_;  // per required_: its mapping, or -1
  std::vector<std::string> scopes_;
  std::set<std::string, std::less<>> known_;
  // Filled by prepare() (or on first use per column; node-based: references
  // stay valid); hot path of every row, so no scan of the schema per value.
  // Not locked: after prepare(), builds only read them.
  mutable std::unordered_map<std::string, ColumnInfo> columns_;
  mutable std::vector<const ColumnInfo*> mapped_columns_;  // per mappings_ entry, on first fill
};

}  // namespace telekern::etl
