#include "mapped_processor.h"

#include "telekern/strings.h"

namespace telekern::etl {

using simdjson::dom::element;
using simdjson::dom::element_type;

std::string to_pointer(std::string_view dotted) {
  if (dotted.empty() || dotted.front() == '/') return std::string(dotted);
  std::string out = "/";
  for (char c : dotted) out += c == '.' ? '/' : c;
  return out;
}

std::optional<element> find(const element& document, std::string_view pointer) {
  auto result = document.at_pointer(pointer);
  if (result.error()) return std::nullopt;
  element value = result.value_unsafe();
  if (value.type() == element_type::NULL_VALUE) return std::nullopt;
  return value;
}

const ColumnType& MappedProcessor::type_of(const std::string& column) const {
  for (const auto& [name, type] : types_)
    if (name == column) return type;
  const ColumnDef* def = schema_.column(column);
  types_.emplace_back(column, ColumnType::parse(def ? def->type : "Nullable(String)"));
  return types_.back().second;
}

void MappedProcessor::map(const std::string& column, const std::string& path, std::string missing) {
  Mapping mapping{column, to_pointer(path), std::move(missing), type_of(column)};
  if (!mapping.pointer.empty()) known_.insert(mapping.pointer);
  mappings_.push_back(std::move(mapping));
}

Row MappedProcessor::new_row() const {
  Row row;
  row.store = description_.store;
  row.table = description_.table;
  row.cells.reserve(mappings_.size() + 4);
  return row;
}

absl::Status MappedProcessor::check_required(const element& document) const {
  for (const auto& pointer : required_) {
    if (!find(document, pointer))
      return absl::FailedPreconditionError(str_cat("missing required field ", pointer));
  }
  return absl::OkStatus();
}

void MappedProcessor::walk(const element& value, std::string& pointer, BuildContext& context,
                           absl::Status& status) const {
  if (!status.ok()) return;
  // Known itself, or a known prefix of a mapped pointer: descend or accept.
  auto hit = known_.lower_bound(pointer);
  bool exact = hit != known_.end() && *hit == pointer;
  if (exact) return;
  bool prefix = hit != known_.end() && hit->compare(0, pointer.size(), pointer) == 0 &&
                hit->size() > pointer.size() && (*hit)[pointer.size()] == '/';
  if (prefix && value.type() == element_type::OBJECT) {
    for (auto [key, child] : object_of(value.get_object())) {
      size_t length = pointer.size();
      pointer += '/';
      pointer += key;
      walk(child, pointer, context, status);
      pointer.resize(length);
    }
    return;
  }
  if (context.unknown == UnknownFields::kStrict) {
    status = absl::InvalidArgumentError(str_cat("unknown field ", pointer));
    return;
  }
  if (context.count) context.count("unknown_field_skipped");
}

absl::Status MappedProcessor::check_unknown(const element& document, BuildContext& context) const {
  absl::Status status;
  for (const auto& scope : scopes_) {
    auto value = find(document, scope);
    if (!value || value->type() != element_type::OBJECT) continue;
    for (auto [key, child] : object_of(value->get_object())) {
      std::string pointer = str_cat(scope, "/", key);
      walk(child, pointer, context, status);
      if (!status.ok()) return status;
    }
  }
  return status;
}

void MappedProcessor::put_fragment(const std::string& column, std::string fragment,
                                   Row& row) const {
  const ColumnDef* def = schema_.column(column);
  std::string_view name = def ? std::string_view(def->name) : std::string_view();
  if (name.empty()) {
    // Columns outside the schema (Redis hashes): the mapping owns the name.
    for (const auto& mapping : mappings_)
      if (mapping.column == column) name = mapping.column;
  }
  row.cells.emplace_back(name, std::move(fragment));
}

absl::Status MappedProcessor::put(const element& value, const std::string& column,
                                  BuildContext& context, Row& row) const {
  const ColumnType& type = type_of(column);
  std::string fragment;
  auto status = encode_value(value, type, context.profile, fragment);
  if (!status.ok()) {
    switch (context.unknown) {
      case UnknownFields::kStrict:
        return absl::InvalidArgumentError(str_cat("column ", column, ": ", status.message()));
      case UnknownFields::kSkip:
        if (context.count) context.count("value_skipped");
        return absl::OkStatus();
      case UnknownFields::kDefault:
        if (context.count) context.count("value_defaulted");
        fragment = default_fragment(type);
        break;
    }
  }
  put_fragment(column, std::move(fragment), row);
  return absl::OkStatus();
}

absl::Status MappedProcessor::fill(const element& document, BuildContext& context, Row& row) const {
  for (const auto& mapping : mappings_) {
    if (mapping.pointer.empty()) continue;
    auto value = find(document, mapping.pointer);
    if (!value) {
      if (!mapping.missing_fragment.empty())
        put_fragment(mapping.column, mapping.missing_fragment, row);
      else if (mapping.type.nullable)
        put_fragment(mapping.column, "null", row);
      continue;
    }
    if (auto status = put(*value, mapping.column, context, row); !status.ok()) return status;
  }
  return absl::OkStatus();
}

}  // namespace telekern::etl
