// The mechanics shared by built-in and declarative processors: columns
// filled from JSON pointers with type conversion, required fields, and the
// unknown-field policy over the scopes a processor owns.
#pragma once

#include <set>

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
  void walk(const simdjson::dom::element& value, std::string& pointer, BuildContext& context,
            absl::Status& status) const;
  std::vector<std::string> scopes_;
  std::set<std::string, std::less<>> known_;
  mutable std::vector<std::pair<std::string, ColumnType>> types_;
};

}  // namespace telekern::etl
