#include "declarative_processor.h"

#include "mapped_processor.h"
#include "telekern/strings.h"

namespace telekern::etl {
namespace {

using simdjson::dom::element;

class DeclarativeProcessor final : public MappedProcessor {
 public:
  absl::Status load(const YAML::Node& node) {
    std::string name = node["name"].as<std::string>("");
    if (name.empty()) return absl::InvalidArgumentError("processor definition needs a name");
    schema_.name = node["table"].as<std::string>("");
    if (schema_.name.empty())
      return absl::InvalidArgumentError(str_cat("processor ", name, ": needs a table"));
    auto columns = node["columns"];
    if (!columns || !columns.IsSequence() || columns.size() == 0)
      return absl::InvalidArgumentError(str_cat("processor ", name, ": needs columns: [...]"));
    for (const auto& column : columns) {
      ColumnDef def{column["name"].as<std::string>(""), column["type"].as<std::string>("String"),
                    column["default_expr"].as<std::string>(""), ""};
      if (def.name.empty())
        return absl::InvalidArgumentError(str_cat("processor ", name, ": a column has no name"));
      schema_.columns.push_back(def);
    }
    for (const auto& column : columns) {
      std::string missing;
      if (column["default"]) {
        auto type = ColumnType::parse(column["type"].as<std::string>("String"));
        std::string text = column["default"].as<std::string>();
        if (type.base == BaseType::kString || type.base == BaseType::kDateTime ||
            type.base == BaseType::kIPv4 || type.base == BaseType::kIPv6) {
          append_json_string(missing, text);
        } else {
          missing = text;
        }
      }
      std::string path = column["path"].as<std::string>("");
      if (path.empty())
        return absl::InvalidArgumentError(str_cat("processor ", name, ": column ",
                                                  column["name"].as<std::string>(),
                                                  " needs a path (e.g. meta.id)"));
      map(column["name"].as<std::string>(), path, missing);
      if (column["required"].as<bool>(false)) require(path);
    }
    std::string order;
    for (const auto& key : node["order_by"])
      order += (order.empty() ? "" : ", ") + str_cat("`", key.as<std::string>(), "`");
    schema_.order_by = order.empty() ? "tuple()" : "(" + order + ")";
    for (const auto& scope : node["scope"]) own_scope(scope.as<std::string>());
    auto match = node["match"];
    std::string words;
    for (const auto& path : match["has"]) {
      has_.push_back(to_pointer(path.as<std::string>()));
      words += (words.empty() ? "" : " and ") + str_cat("has ", path.as<std::string>());
    }
    for (const auto& pair : match["equals"]) {
      equals_.emplace_back(to_pointer(pair.first.as<std::string>()), pair.second.as<std::string>());
      words += (words.empty() ? "" : " and ") +
               str_cat(pair.first.as<std::string>(), " == ", pair.second.as<std::string>());
    }
    description_ = {name, node["description"].as<std::string>("declarative processor (YAML)"),
                    words.empty() ? "every message" : words, schema_.name, Store::kClickHouse};
    return absl::OkStatus();
  }

  bool match(const element& document) const override {
    for (const auto& pointer : has_)
      if (!find(document, pointer)) return false;
    for (const auto& [pointer, expected] : equals_) {
      auto value = find(document, pointer);
      if (!value) return false;
      std::string text = value->is_string() ? std::string(value->get_string().value_unsafe())
                                            : simdjson::minify(*value);
      if (text != expected) return false;
    }
    return true;
  }

  absl::Status build(const element& document, const Message&, BuildContext& context,
                     std::vector<Row>& out) const override {
    if (auto status = check_required(document); !status.ok()) return status;
    if (auto status = check_unknown(document, context); !status.ok()) return status;
    Row row = new_row();
    if (auto status = fill(document, context, row); !status.ok()) return status;
    out.push_back(std::move(row));
    return absl::OkStatus();
  }

 private:
  std::vector<std::string> has_;
  std::vector<std::pair<std::string, std::string>> equals_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Processor>> make_declarative_processor(const YAML::Node& node) {
  auto processor = std::make_unique<DeclarativeProcessor>();
  try {
    if (auto status = processor->load(node); !status.ok()) return status;
  } catch (const YAML::Exception& error) {
    return absl::InvalidArgumentError(str_cat("processor definition: ", error.what()));
  }
  return processor;
}

}  // namespace telekern::etl
