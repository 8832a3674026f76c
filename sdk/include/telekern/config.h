// Declarative configuration: a component declares its keys once (name, type,
// default, description, validator); validation, env overrides, --print-config
// and README tables all follow from that declaration.
#pragma once

#include <absl/status/status.h>
#include <absl/status/statusor.h>
#include <yaml-cpp/yaml.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace telekern {

enum class ConfigType {
  kString,
  kSecret,  // a string masked as "***" whenever config is shown
  kInt,
  kBool,
  kDouble,
  kDuration,    // "250ms", "30s", "5m", "1h", "2d"
  kStringList,  // YAML sequence of strings, or a comma-separated string from env
  kNode,        // any YAML subtree, checked only by its validator
};

struct ConfigKey {
  std::string name;  // dotted path inside the section, e.g. "retention.bytes"
  ConfigType type = ConfigType::kString;
  std::string default_value;  // as it would be written in YAML; "" = empty/none
  std::string description;
  // Optional extra check of the final value; return an error naming the fix.
  std::function<absl::Status(const YAML::Node&)> validate;
};

using ConfigSchema = std::vector<ConfigKey>;

// Where a section comes from, for messages like "telekernd.yaml:12: ...".
struct ConfigSource {
  std::string file;          // "" when built from defaults only
  std::string section_path;  // dotted path of the section in the file, "" for the root
  // Environment variables (name -> value) to apply as overrides; the name of a
  // key is TELEKERN_ + upper-snake of section_path + key path.
  std::map<std::string, std::string> environment;
};

// A validated section: every declared key present, typed accessors.
class Config {
 public:
  Config() = default;
  Config(ConfigSchema schema, YAML::Node values);

  std::string get_string(std::string_view key) const;
  int64_t get_int(std::string_view key) const;
  bool get_bool(std::string_view key) const;
  double get_double(std::string_view key) const;
  std::chrono::milliseconds get_duration(std::string_view key) const;
  std::vector<std::string> get_string_list(std::string_view key) const;
  YAML::Node get_node(std::string_view key) const;

  // The effective values as YAML, secrets masked.
  std::string to_yaml(bool mask_secrets = true) const;
  const ConfigSchema& schema() const { return schema_; }

  // INVALID_ARGUMENT "<where key's value came from>: key '<section.key>': <message>",
  // e.g. "telekernd.yaml:12: key 'modules.broker.default_partitions': ...".
  absl::Status error_at(std::string_view key, std::string_view message) const;
  // Where `key`'s value came from: "file:line", "default" or "environment NAME".
  std::string origin(std::string_view key) const;
  // The keys under `prefix` ("stream."), with the prefix taken off their names.
  Config subsection(std::string_view prefix) const;

 private:
  friend absl::StatusOr<Config> validate_config(const ConfigSchema&, const YAML::Node&,
                                                const ConfigSource&);
  const ConfigKey* find(std::string_view key) const;
  ConfigSchema schema_;
  YAML::Node values_;
  std::string section_path_;                    // dotted path of the section, for messages
  std::map<std::string, std::string> origins_;  // key -> "file:line", "default", "environment X"
};

// Validates `section` against `schema`: applies defaults, then environment
// overrides, rejects unknown keys and values of the wrong type with a message
// naming file, line and key.
absl::StatusOr<Config> validate_config(const ConfigSchema& schema, const YAML::Node& section,
                                       const ConfigSource& source);

// TELEKERN_<UPPER_SNAKE> for a dotted path, e.g. "modules.broker.max_partitions".
std::string environment_variable_for(std::string_view dotted_path);

// Parses "250ms", "30s", "5m", "1h", "2d" (a bare number means seconds).
absl::StatusOr<std::chrono::milliseconds> parse_duration(std::string_view text);

// Loads YAML from a file, naming file and line on syntax errors.
absl::StatusOr<YAML::Node> load_yaml_file(const std::string& path);

// The current process environment entries that start with TELEKERN_.
std::map<std::string, std::string> telekern_environment();

// Markdown table of a schema (key, type, default, description) for READMEs.
std::string schema_to_markdown(const ConfigSchema& schema);

}  // namespace telekern

namespace telekern {
// The child `key` of map `parent`, or an undefined node when absent. (yaml-cpp's
// const operator[] returns an "invalid" node that throws when assigned.)
inline YAML::Node child_or_undefined(const YAML::Node& parent, const std::string& key) {
  if (!parent.IsDefined() || !parent.IsMap()) return YAML::Node(YAML::NodeType::Undefined);
  for (const auto& entry : parent) {
    if (entry.first.IsScalar() && entry.first.Scalar() == key) return entry.second;
  }
  return YAML::Node(YAML::NodeType::Undefined);
}
}  // namespace telekern
