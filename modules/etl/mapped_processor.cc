#include "mapped_processor.h"

#include <algorithm>

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
  build_paths();
}

size_t MappedProcessor::watch(const std::string& path) {
  watched_.push_back(to_pointer(path));
  return watched_.size() - 1;
}

void MappedProcessor::build_paths() const {
  auto root = std::make_unique<PathNode>();
  escaped_slots_.clear();
  const size_t slots = mappings_.size() + watched_.size();
  for (size_t slot = 0; slot < slots; ++slot) {
    const std::string& pointer = pointer_of(slot);
    if (pointer.empty()) continue;
    if (pointer.find('~') != std::string::npos) {
      escaped_slots_.push_back(slot);
      continue;
    }
    PathNode* node = root.get();
    size_t at = 1;  // after the leading '/'
    while (true) {
      size_t end = pointer.find('/', at);
      std::string_view key =
          std::string_view(pointer).substr(at, end == std::string::npos ? end : end - at);
      auto hit = node->children.find(absl::string_view(key.data(), key.size()));
      if (hit == node->children.end())
        hit = node->children.emplace(std::string(key), std::make_unique<PathNode>()).first;
      node = hit->second.get();
      if (end == std::string::npos) break;
      at = end + 1;
    }
    node->slots.push_back(slot);
  }
  required_slots_.clear();
  for (const auto& pointer : required_) {
    ptrdiff_t slot = -1;
    for (size_t i = 0; i < mappings_.size(); ++i)
      if (mappings_[i].pointer == pointer) {
        slot = static_cast<ptrdiff_t>(i);
        break;
      }
    required_slots_.push_back(slot);
  }
  paths_ = std::move(root);
}

void MappedProcessor::gather_node(const element& value, const PathNode& node,
                                  const element& document, Found& found) const {
  if (value.type() == element_type::OBJECT) {
    for (auto [key, child] : object_of(value.get_object())) {
      auto hit = node.children.find(absl::string_view(key.data(), key.size()));
      if (hit == node.children.end()) continue;
      const PathNode& next = *hit->second;
      if (child.type() != element_type::NULL_VALUE) {
        for (size_t slot : next.slots)
          if (!found.values[slot]) found.values[slot] = child;  // the first of duplicate keys
      }
      if (!next.children.empty()) gather_node(child, next, document, found);
    }
    return;
  }
  if (value.type() == element_type::ARRAY) {
    // Array indices ("/sensor_id/0"): rare, looked up one by one.
    std::vector<const PathNode*> pending{&node};
    while (!pending.empty()) {
      const PathNode* current = pending.back();
      pending.pop_back();
      for (const auto& [key, child] : current->children) {
        for (size_t slot : child->slots)
          if (!found.values[slot]) found.values[slot] = find(document, pointer_of(slot));
        pending.push_back(child.get());
      }
    }
  }
}

MappedProcessor::Found MappedProcessor::gather(const element& document) const {
  if (!paths_) build_paths();
  Found found;
  found.values.resize(mappings_.size() + watched_.size());
  found.mapped = mappings_.size();
  gather_node(document, *paths_, document, found);
  for (size_t slot : escaped_slots_) found.values[slot] = find(document, pointer_of(slot));
  return found;
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
  if (!mapping.pointer.empty()) known_.insert(mapping.pointer);
  mappings_.push_back(std::move(mapping));
}

Row MappedProcessor::new_row() const {
  Row row;
  row.store = description_.store;
  row.table = description_.table;
  // Every column at most (mapped and code-filled): no reallocation while filling.
  row.cells.reserve(std::max(mappings_.size() + 4, schema_.columns.size()));
  return row;
}

absl::Status MappedProcessor::check_required(const element& document) const {
  for (const auto& pointer : required_) {
    if (!find(document, pointer))
      return absl::FailedPreconditionError(str_cat("missing required field ", pointer));
  }
  return absl::OkStatus();
}

absl::Status MappedProcessor::check_required(const element& document, const Found& found) const {
  for (size_t i = 0; i < required_.size(); ++i) {
    ptrdiff_t slot = i < required_slots_.size() ? required_slots_[i] : -1;
    bool present = slot >= 0 ? found[static_cast<size_t>(slot)].has_value()
                             : find(document, required_[i]).has_value();
    if (!present)
      return absl::FailedPreconditionError(str_cat("missing required field ", required_[i]));
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
    std::string pointer;
    for (auto [key, child] : object_of(value->get_object())) {
      pointer.assign(scope);
      pointer += '/';
      pointer += key;
      walk(child, pointer, context, status);
      if (!status.ok()) return status;
    }
  }
  return status;
}

void MappedProcessor::put_fragment(const std::string& column, std::string_view fragment,
                                   Row& row) const {
  row.add_json(info(column).name, fragment);
}

void MappedProcessor::put_string(const std::string& column, std::string_view text, Row& row) const {
  row.add_string(info(column).name, text);
}

void MappedProcessor::put_value(const std::string& column, const Value& value, Row& row) const {
  row.add(info(column).name, value);
}

absl::Status MappedProcessor::put(const element& value, const std::string& column,
                                  BuildContext& context, Row& row) const {
  return put_typed(value, info(column), context, row);
}

absl::Status MappedProcessor::put_typed(const element& value, const ColumnInfo& column,
                                        BuildContext& context, Row& row) const {
  const ColumnType& type = column.type;
  Value cell;
  auto status = convert_value(value, type, context.profile, row, cell);
  if (!status.ok()) {
    switch (context.unknown) {
      case UnknownFields::kStrict:
        return absl::InvalidArgumentError(str_cat("column ", column.name, ": ", status.message()));
      case UnknownFields::kSkip:
        if (context.count) context.count("value_skipped");
        return absl::OkStatus();
      case UnknownFields::kDefault:
        if (context.count) context.count("value_defaulted");
        cell = default_value(type);
        break;
    }
  }
  row.add(column.name, cell);
  return absl::OkStatus();
}

absl::Status MappedProcessor::fill(const element& document, BuildContext& context, Row& row) const {
  return fill(gather(document), context, row);
}

absl::Status MappedProcessor::fill(const Found& found, BuildContext& context, Row& row) const {
  if (mapped_columns_.size() != mappings_.size()) {
    mapped_columns_.clear();
    for (const auto& mapping : mappings_) mapped_columns_.push_back(&info(mapping.column));
  }
  for (size_t i = 0; i < mappings_.size(); ++i) {
    const Mapping& mapping = mappings_[i];
    if (mapping.pointer.empty()) continue;
    const ColumnInfo& column = *mapped_columns_[i];
    const auto& value = found[i];
    if (!value) {
      if (!mapping.missing_fragment.empty())
        row.add_json(column.name, mapping.missing_fragment);
      else if (mapping.type.nullable)
        row.add(column.name, Value::null());
      continue;
    }
    if (auto status = put_typed(*value, column, context, row); !status.ok()) return status;
  }
  return absl::OkStatus();
}

}  // namespace telekern::etl
