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

void MappedProcessor::prepare() {
  for (const auto& column : schema_.columns) info(column.name);
  mapped_columns_.clear();
  for (const auto& mapping : mappings_) mapped_columns_.push_back(&info(mapping.column));
}

const MappedProcessor::ColumnInfo& MappedProcessor::info(const std::string& column) const {
  if (auto hit = columns_.find(column); hit != columns_.end()) return hit->second;
  const ColumnDef* def = schema_.column(column);
  ColumnInfo made{ColumnType::parse(def ? def->type : "Nullable(String)"), std::string_view()};
  if (def) {
    made.name = def->name;
  } else {
    // Columns outside the schema (Redis hashes): the mapping owns the name.
    for (const auto& mapping : mappings_)
      if (mapping.column == column) made.name = mapping.column;
  }
  return columns_.emplace(column, std::move(made)).first->second;
}

const ColumnType& MappedProcessor::type_of(const std::string& column) const {
  return info(column).type;
}

void MappedProcessor::map(const std::string& column, const std::string& path, std::string missing) {
  // Not through info(): its cache points at mappings_, which grows until construction ends.
  const ColumnDef* def = schema_.column(column);
  Mapping mapping{column, to_pointer(path), std::move(missing),
                  ColumnType::parse(def ? def->type : "Nullable(String)")};
  if (!mapping.pointer.empty()) {
    known_.insert(mapping.pointer);
    size_t slash = mapping.pointer.rfind('/');
    if (mapping.pointer.find('~', slash) == std::string::npos) {
      mapping.parent = mapping.pointer.substr(0, slash);
      mapping.leaf = mapping.pointer.substr(slash + 1);
    }
  }
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
  row.cells.emplace_back(info(column).name, std::move(fragment));
}

absl::Status MappedProcessor::put(const element& value, const std::string& column,
                                  BuildContext& context, Row& row) const {
  return put_typed(value, info(column), context, row);
}

absl::Status MappedProcessor::put_typed(const element& value, const ColumnInfo& column,
                                        BuildContext& context, Row& row) const {
  const ColumnType& type = column.type;
  std::string fragment;
  auto status = encode_value(value, type, context.profile, fragment);
  if (!status.ok()) {
    switch (context.unknown) {
      case UnknownFields::kStrict:
        return absl::InvalidArgumentError(str_cat("column ", column.name, ": ", status.message()));
      case UnknownFields::kSkip:
        if (context.count) context.count("value_skipped");
        return absl::OkStatus();
      case UnknownFields::kDefault:
        if (context.count) context.count("value_defaulted");
        fragment = default_fragment(type);
        break;
    }
  }
  row.cells.emplace_back(column.name, std::move(fragment));
  return absl::OkStatus();
}

absl::Status MappedProcessor::fill(const element& document, BuildContext& context, Row& row) const {
  if (mapped_columns_.size() != mappings_.size()) {
    mapped_columns_.clear();
    for (const auto& mapping : mappings_) mapped_columns_.push_back(&info(mapping.column));
  }
  // Mappings come grouped by object (/meta/...): look each parent up once.
  const std::string* parent_pointer = nullptr;
  std::optional<element> parent;
  for (size_t i = 0; i < mappings_.size(); ++i) {
    const Mapping& mapping = mappings_[i];
    if (mapping.pointer.empty()) continue;
    std::optional<element> value;
    if (mapping.leaf.empty()) {
      value = find(document, mapping.pointer);
    } else {
      if (!parent_pointer || *parent_pointer != mapping.parent) {
        parent_pointer = &mapping.parent;
        parent = mapping.parent.empty() ? std::optional<element>(document)
                                        : find(document, mapping.parent);
      }
      if (parent && parent->type() == element_type::OBJECT) {
        auto child = parent->get_object().value_unsafe().at_key(mapping.leaf);
        if (!child.error() && child.value_unsafe().type() != element_type::NULL_VALUE)
          value = child.value_unsafe();
      } else if (parent && parent->type() == element_type::ARRAY) {
        value = find(document, mapping.pointer);
      }
    }
    const ColumnInfo& column = *mapped_columns_[i];
    if (!value) {
      if (!mapping.missing_fragment.empty())
        row.cells.emplace_back(column.name, mapping.missing_fragment);
      else if (mapping.type.nullable)
        row.cells.emplace_back(column.name, "null");
      continue;
    }
    if (auto status = put_typed(*value, column, context, row); !status.ok()) return status;
  }
  return absl::OkStatus();
}

}  // namespace telekern::etl
