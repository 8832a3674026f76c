#include "telekern/config.h"

#include <algorithm>
#include <charconv>
#include <fstream>
#include <set>
#include <sstream>

#include "telekern/config_map.h"
#include "telekern/strings.h"

extern char** environ;

namespace telekern {
namespace {

std::vector<std::string> split_path(std::string_view dotted) {
  std::vector<std::string> parts;
  return split(dotted, '.');
}

std::string join_path(std::string_view prefix, std::string_view key) {
  if (prefix.empty()) return std::string(key);
  return str_cat(prefix, ".", key);
}

// The value at `parts` below `root`, nested (`kafka: {properties: ...}`) or
// spelled flat with dots at any level (`kafka.properties: ...`), as
// find_unknown() accepts both.
YAML::Node lookup(const YAML::Node& root, const std::vector<std::string>& parts, size_t first = 0) {
  if (first == parts.size()) return root;
  if (!root.IsMap()) return YAML::Node(YAML::NodeType::Undefined);
  std::string key;
  for (size_t end = first; end < parts.size(); ++end) {
    key = end == first ? parts[end] : str_cat(key, ".", parts[end]);
    YAML::Node next = root[key];
    if (!next.IsDefined()) continue;
    YAML::Node found = lookup(next, parts, end + 1);
    if (found.IsDefined()) return found;
  }
  return YAML::Node(YAML::NodeType::Undefined);
}

void set_path(YAML::Node root, const std::vector<std::string>& parts, const YAML::Node& value) {
  YAML::Node current;
  current.reset(root);
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    YAML::Node next = current[parts[i]];
    if (!next.IsMap()) next = YAML::Node(YAML::NodeType::Map);
    current.reset(next);
  }
  current[parts.back()] = value;
}

std::string where(const ConfigSource& source, const YAML::Node& node) {
  std::string file = source.file.empty() ? "<defaults>" : source.file;
  if (node.IsDefined() && node.Mark().line >= 0) {
    return str_cat(file, ":", node.Mark().line + 1);
  }
  return file;
}

const char* type_name(ConfigType type) {
  switch (type) {
    case ConfigType::kString:
      return "string";
    case ConfigType::kSecret:
      return "secret";
    case ConfigType::kInt:
      return "int";
    case ConfigType::kBool:
      return "bool";
    case ConfigType::kDouble:
      return "double";
    case ConfigType::kDuration:
      return "duration";
    case ConfigType::kStringList:
      return "list of strings";
    case ConfigType::kNode:
      return "yaml";
  }
  return "?";
}

// Checks that `node` holds a value of `type`; returns an empty string when it does.
std::string type_error(const YAML::Node& node, ConfigType type) {
  if (node.IsNull()) return "";
  try {
    switch (type) {
      case ConfigType::kString:
      case ConfigType::kSecret:
        if (!node.IsScalar()) return "expected a string";
        return "";
      case ConfigType::kInt:
        (void)node.as<int64_t>();
        return "";
      case ConfigType::kBool:
        (void)node.as<bool>();
        return "";
      case ConfigType::kDouble:
        (void)node.as<double>();
        return "";
      case ConfigType::kDuration: {
        if (!node.IsScalar()) return "expected a duration such as 30s";
        auto parsed = parse_duration(node.Scalar());
        if (!parsed.ok()) return std::string(parsed.status().message());
        return "";
      }
      case ConfigType::kStringList:
        if (!node.IsSequence()) return "expected a list of strings";
        for (const auto& item : node) {
          if (!item.IsScalar()) return "expected a list of strings";
        }
        return "";
      case ConfigType::kNode:
        return "";
    }
  } catch (const YAML::Exception&) {
    return str_cat("expected ", type_name(type), ", got '",
                   node.IsScalar() ? node.Scalar() : "a structure", "'");
  }
  return "";
}

YAML::Node from_environment(const std::string& text, ConfigType type) {
  if (type == ConfigType::kStringList) {
    YAML::Node list(YAML::NodeType::Sequence);
    for (const auto& item : split(text, ',')) {
      auto trimmed = trim(item);
      if (!trimmed.empty()) list.push_back(std::string(trimmed));
    }
    return list;
  }
  if (type == ConfigType::kNode) return YAML::Load(text);
  return YAML::Node(text);
}

YAML::Node default_node(const ConfigKey& key) {
  if (key.type == ConfigType::kString || key.type == ConfigType::kSecret ||
      key.type == ConfigType::kDuration) {
    return YAML::Node(key.default_value);
  }
  if (key.default_value.empty()) {
    if (key.type == ConfigType::kStringList) return YAML::Node(YAML::NodeType::Sequence);
    return YAML::Node(YAML::NodeType::Null);
  }
  return YAML::Load(key.default_value);
}

// A map key as text; a key that is itself a list or map (valid YAML, never a
// config key) is shown as written, so it is reported rather than thrown on.
std::string key_text(const YAML::Node& key) {
  if (key.IsScalar()) return key.Scalar();
  YAML::Emitter out;
  out << YAML::Flow << key;
  return out.c_str();
}

// Collects keys present in `node` that the schema does not declare.
void find_unknown(const YAML::Node& node, const std::string& path, const ConfigSchema& schema,
                  std::vector<std::pair<std::string, YAML::Node>>& unknown) {
  for (const auto& entry : node) {
    std::string name = key_text(entry.first);
    std::string full = join_path(path, name);
    bool is_key = false;
    bool is_prefix = false;
    for (const auto& key : schema) {
      if (key.name == full) is_key = true;
      if (key.name.rfind(full + ".", 0) == 0) is_prefix = true;
    }
    if (is_key) continue;
    if (is_prefix && entry.second.IsMap()) {
      find_unknown(entry.second, full, schema, unknown);
      continue;
    }
    unknown.emplace_back(full, entry.first);
  }
}

std::string closest_key(const std::string& unknown, const ConfigSchema& schema) {
  // Suggest a declared key sharing the longest common prefix, when it is close.
  std::string best;
  size_t best_score = 0;
  for (const auto& key : schema) {
    size_t common = 0;
    while (common < key.name.size() && common < unknown.size() &&
           key.name[common] == unknown[common]) {
      ++common;
    }
    if (common > best_score) {
      best_score = common;
      best = key.name;
    }
  }
  return best_score >= 3 ? best : "";
}

}  // namespace

Config::Config(ConfigSchema schema, YAML::Node values)
    : schema_(std::move(schema)), values_(std::move(values)) {
  // Validators may live in a module's library, which can be unloaded while
  // this Config is still around: a validated Config keeps no code pointers.
  for (auto& key : schema_) key.validate = nullptr;
}

const ConfigKey* Config::find(std::string_view key) const {
  for (const auto& declared : schema_) {
    if (declared.name == key) return &declared;
  }
  return nullptr;
}

YAML::Node Config::get_node(std::string_view key) const { return lookup(values_, split_path(key)); }

std::string Config::get_string(std::string_view key) const {
  auto node = get_node(key);
  return node.IsDefined() && node.IsScalar() ? node.Scalar() : "";
}

int64_t Config::get_int(std::string_view key) const {
  auto node = get_node(key);
  return node.IsDefined() && !node.IsNull() ? node.as<int64_t>() : 0;
}

bool Config::get_bool(std::string_view key) const {
  auto node = get_node(key);
  return node.IsDefined() && !node.IsNull() && node.as<bool>();
}

double Config::get_double(std::string_view key) const {
  auto node = get_node(key);
  return node.IsDefined() && !node.IsNull() ? node.as<double>() : 0.0;
}

std::chrono::milliseconds Config::get_duration(std::string_view key) const {
  auto parsed = parse_duration(get_string(key));
  return parsed.ok() ? *parsed : std::chrono::milliseconds(0);
}

std::vector<std::string> Config::get_string_list(std::string_view key) const {
  std::vector<std::string> items;
  auto node = get_node(key);
  if (!node.IsDefined() || !node.IsSequence()) return items;
  for (const auto& item : node) items.push_back(item.as<std::string>());
  return items;
}

absl::Status Config::error_at(std::string_view key, std::string_view message) const {
  auto origin = origins_.find(std::string(key));
  return absl::InvalidArgumentError(str_cat(origin == origins_.end() ? "config" : origin->second,
                                            ": key '", join_path(section_path_, key),
                                            "': ", message));
}

std::string Config::origin(std::string_view key) const {
  auto it = origins_.find(std::string(key));
  return it == origins_.end() ? "default" : it->second;
}

Config Config::subsection(std::string_view prefix) const {
  Config scoped;
  std::string_view path = prefix;
  if (path.ends_with('.')) path.remove_suffix(1);
  scoped.section_path_ = join_path(section_path_, path);
  scoped.values_.reset(YAML::Clone(get_node(path)));
  for (const auto& key : schema_) {
    if (!key.name.starts_with(prefix)) continue;
    auto name = key.name.substr(prefix.size());
    ConfigKey inner = key;
    inner.name = name;
    scoped.schema_.push_back(std::move(inner));
    if (auto origin = origins_.find(key.name); origin != origins_.end())
      scoped.origins_.emplace(name, origin->second);
  }
  return scoped;
}

namespace {
// Masks values under keys that name secrets inside free-form (kNode) sections,
// e.g. auth.users[].password_hash and auth.api_keys[].sha256 (a key's hash
// lets anyone test guesses offline, so it is as secret as the key).
YAML::Node mask_nested_secrets(const YAML::Node& node) {
  if (node.IsMap()) {
    YAML::Node out(YAML::NodeType::Map);
    for (const auto& entry : node) {
      std::string key = key_text(entry.first);
      std::string lower = to_lower(key);
      bool secret = false;
      for (const char* word : {"password", "secret", "token", "hash", "sha256", "api_key"}) {
        secret = secret || lower.find(word) != std::string::npos;
      }
      out[key] =
          secret && entry.second.IsScalar() ? YAML::Node("***") : mask_nested_secrets(entry.second);
    }
    return out;
  }
  if (node.IsSequence()) {
    YAML::Node out(YAML::NodeType::Sequence);
    for (const auto& item : node) out.push_back(mask_nested_secrets(item));
    return out;
  }
  return node;
}
}  // namespace

std::string Config::to_yaml(bool mask_secrets) const {
  YAML::Node out(YAML::NodeType::Map);
  for (const auto& key : schema_) {
    YAML::Node value = YAML::Clone(get_node(key.name));
    if (mask_secrets && key.type == ConfigType::kSecret && value.IsScalar() &&
        !value.Scalar().empty()) {
      value.reset(YAML::Node("***"));
    }
    if (mask_secrets && key.type == ConfigType::kNode) value.reset(mask_nested_secrets(value));
    set_path(out, split_path(key.name), value);
  }
  YAML::Emitter emitter;
  emitter << out;
  return emitter.c_str();
}

absl::StatusOr<Config> validate_config(const ConfigSchema& schema, const YAML::Node& section,
                                       const ConfigSource& source) {
  if (section.IsDefined() && !section.IsNull() && !section.IsMap()) {
    return absl::InvalidArgumentError(str_cat(where(source, section), ": section '",
                                              source.section_path,
                                              "' must be a map of key: value"));
  }
  if (section.IsDefined() && section.IsMap()) {
    std::vector<std::pair<std::string, YAML::Node>> unknown;
    find_unknown(section, "", schema, unknown);
    if (!unknown.empty()) {
      const auto& [name, node] = unknown.front();
      std::string hint = closest_key(name, schema);
      return absl::InvalidArgumentError(
          str_cat(where(source, node), ": unknown key '", join_path(source.section_path, name), "'",
                  hint.empty() ? "" : str_cat(" (did you mean '", hint, "'?)")));
    }
  }
  YAML::Node values(YAML::NodeType::Map);
  std::map<std::string, std::string> origins;
  for (const auto& key : schema) {
    auto parts = split_path(key.name);
    std::string full = join_path(source.section_path, key.name);
    YAML::Node value(YAML::NodeType::Undefined);
    if (section.IsDefined()) value.reset(lookup(section, parts));
    std::string origin;
    if (value.IsDefined()) {
      origin = where(source, value);
    } else {
      value.reset(default_node(key));
      origin = "default";
    }
    auto variable = environment_variable_for(full);
    if (auto it = source.environment.find(variable); it != source.environment.end()) {
      try {
        value.reset(from_environment(it->second, key.type));
      } catch (const YAML::Exception& error) {
        return absl::InvalidArgumentError(
            str_cat("environment ", variable, ": not valid YAML: ", error.what()));
      }
      origin = str_cat("environment ", variable);
    }
    if (auto error = type_error(value, key.type); !error.empty()) {
      return absl::InvalidArgumentError(str_cat(origin, ": key '", full, "': ", error));
    }
    if (key.validate) {
      if (auto status = key.validate(value); !status.ok()) {
        return absl::InvalidArgumentError(
            str_cat(origin, ": key '", full, "': ", status.message()));
      }
    }
    set_path(values, parts, value);
    origins.emplace(key.name, origin);
  }
  Config config(schema, values);
  config.section_path_ = source.section_path;
  config.origins_ = std::move(origins);
  return config;
}

std::string environment_variable_for(std::string_view dotted_path) {
  std::string name = "TELEKERN_";
  for (char c : dotted_path) {
    if (c == '.' || c == '-') {
      name += '_';
    } else {
      name += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    }
  }
  return name;
}

absl::StatusOr<std::chrono::milliseconds> parse_duration(std::string_view text) {
  std::string trimmed(trim(text));
  if (trimmed.empty()) return std::chrono::milliseconds(0);
  size_t digits = 0;
  while (digits < trimmed.size() &&
         (std::isdigit(static_cast<unsigned char>(trimmed[digits])) || trimmed[digits] == '.')) {
    ++digits;
  }
  if (digits == 0) {
    return absl::InvalidArgumentError(
        str_cat("'", trimmed, "' is not a duration; write e.g. 250ms, 30s, 5m, 1h, 2d"));
  }
  double amount = 0;
  auto [end, error] = std::from_chars(trimmed.data(), trimmed.data() + digits, amount);
  if (error != std::errc() || end != trimmed.data() + digits) {
    return absl::InvalidArgumentError(
        str_cat("'", trimmed, "' is not a duration; write e.g. 250ms, 30s, 5m, 1h, 2d"));
  }
  std::string unit = trimmed.substr(digits);
  double millis_per_unit = 0;
  if (unit.empty() || unit == "s") {
    millis_per_unit = 1000;
  } else if (unit == "ms") {
    millis_per_unit = 1;
  } else if (unit == "m") {
    millis_per_unit = 60'000;
  } else if (unit == "h") {
    millis_per_unit = 3'600'000;
  } else if (unit == "d") {
    millis_per_unit = 86'400'000;
  } else {
    return absl::InvalidArgumentError(
        str_cat("'", trimmed, "' has unknown unit '", unit, "'; use ms, s, m, h or d"));
  }
  // A century is more than any timeout or retention needs, and fits int64 milliseconds.
  constexpr double kLimit = 100.0 * 365 * 86'400'000;
  if (amount * millis_per_unit > kLimit) {
    return absl::InvalidArgumentError(str_cat("'", trimmed, "' is longer than 100 years"));
  }
  return std::chrono::milliseconds(static_cast<int64_t>(amount * millis_per_unit));
}

absl::StatusOr<YAML::Node> load_yaml_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(str_cat(path, ": cannot open config file"));
  try {
    return YAML::Load(in);
  } catch (const YAML::ParserException& error) {
    return absl::InvalidArgumentError(
        str_cat(path, ":", error.mark.line + 1, ": YAML syntax error: ", error.msg));
  }
}

std::map<std::string, std::string> telekern_environment() {
  std::map<std::string, std::string> result;
  for (char** entry = environ; entry && *entry; ++entry) {
    std::string_view text(*entry);
    if (text.rfind("TELEKERN_", 0) != 0) continue;
    auto equals = text.find('=');
    if (equals == std::string_view::npos) continue;
    result.emplace(std::string(text.substr(0, equals)), std::string(text.substr(equals + 1)));
  }
  return result;
}

FieldCheck<std::string> one_of(std::vector<std::string> allowed) {
  return [allowed](const std::string& value) {
    if (std::find(allowed.begin(), allowed.end(), value) != allowed.end()) return absl::OkStatus();
    return absl::InvalidArgumentError(
        str_cat("'", value, "' is not one of: ", join(allowed, ", ")));
  };
}

FieldCheck<std::chrono::milliseconds> positive_duration() {
  return [](const std::chrono::milliseconds& value) {
    if (value.count() > 0) return absl::OkStatus();
    return absl::InvalidArgumentError("must be longer than 0 (e.g. 500ms, 5s)");
  };
}

absl::StatusOr<std::vector<std::string>> ConfigField<std::vector<std::string>>::read(
    const YAML::Node& node) {
  std::vector<std::string> items;
  if (node.IsNull()) return items;
  if (!node.IsSequence()) return absl::InvalidArgumentError("expected a list of strings");
  for (const auto& item : node) items.push_back(item.as<std::string>());
  return items;
}

absl::StatusOr<std::vector<std::chrono::milliseconds>>
ConfigField<std::vector<std::chrono::milliseconds>>::read(const YAML::Node& node) {
  auto texts = ConfigField<std::vector<std::string>>::read(node);
  if (!texts.ok()) return texts.status();
  std::vector<std::chrono::milliseconds> durations;
  for (const auto& text : *texts) {
    auto duration = parse_duration(trim(text));
    if (!duration.ok()) return duration.status();
    durations.push_back(*duration);
  }
  return durations;
}

absl::StatusOr<std::vector<std::pair<std::string, std::string>>>
ConfigField<std::vector<std::pair<std::string, std::string>>>::read(const YAML::Node& node) {
  std::vector<std::pair<std::string, std::string>> entries;
  if (!node.IsDefined() || node.IsNull()) return entries;
  if (!node.IsMap()) return absl::InvalidArgumentError("expected a map of name: value");
  for (const auto& entry : node) {
    if (!entry.second.IsScalar())
      return absl::InvalidArgumentError(
          str_cat("'", key_text(entry.first), "' needs a plain value"));
    entries.emplace_back(key_text(entry.first), entry.second.Scalar());
  }
  return entries;
}

std::string schema_to_markdown(const ConfigSchema& schema) {
  std::ostringstream out;
  out << "| key | type | default | description |\n|---|---|---|---|\n";
  for (const auto& key : schema) {
    out << "| `" << key.name << "` | " << type_name(key.type) << " | "
        << (key.default_value.empty() ? "" : "`" + key.default_value + "`") << " | "
        << key.description << " |\n";
  }
  return out.str();
}

}  // namespace telekern
