// The mechanics shared by built-in and declarative processors: columns
// filled from JSON pointers with type conversion, required fields, and the
// unknown-field policy over the scopes a processor owns.
#pragma once

#include <set>
#include <unordered_map>

#include "processor.h"

namespace telekern::etl {

struct Mapping {
  std::string column;
  std::string pointer;           // "" = filled by code
  std::string missing_fragment;  // written when the input lacks it; "" = column default
  ColumnType type;
  // The pointer split at its last '/', so neighbouring columns share one
  // lookup of their parent object; leaf empty when it needs unescaping.
  std::string parent;
  std::string leaf;
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

  // FAILED_PRECONDITION naming the first missing required field.
  absl::Status check_required(const simdjson::dom::element& document) const;
  // Applies the unknown-field policy to the owned scopes.
  absl::Status check_unknown(const simdjson::dom::element& document, BuildContext& context) const;
  // Fills every pointer mapping into `row`.
  absl::Status fill(const simdjson::dom::element& document, BuildContext& context, Row& row) const;
  // One value into `row` for `column` (type from the schema), with the policy.
  absl::Status put(const simdjson::dom::element& value, const std::string& column,
                   BuildContext& context, Row& row) const;
  // A ready-made fragment for `column`.
  void put_fragment(const std::string& column, std::string fragment, Row& row) const;
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
  std::vector<std::string> scopes_;
  std::set<std::string, std::less<>> known_;
  // Filled by prepare() (or on first use per column; node-based: references
  // stay valid); hot path of every row, so no scan of the schema per value.
  // Not locked: after prepare(), builds only read them.
  mutable std::unordered_map<std::string, ColumnInfo> columns_;
  mutable std::vector<const ColumnInfo*> mapped_columns_;  // per mappings_ entry, on first fill
};

}  // namespace telekern::etl
