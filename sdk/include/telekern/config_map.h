// Binds a component's config keys to the members of its options struct (the
// idea of Fluent Bit's config_map, with member pointers instead of offsetof).
// Each key is declared once, next to the member it fills; the schema (types,
// defaults, per-key checks, README table) and the filled struct both follow,
// and rules across keys run on the filled struct:
//
//   ConfigMap<BrokerOptions> map;
//   map.key("max_partitions", &BrokerOptions::max_partitions, "64", "Most partitions",
//   at_least(1)); map.rule("default_partitions", [](const BrokerOptions& o) { ... });
//   absl::StatusOr<BrokerOptions> options = map.bind(config);
#pragma once

#include <absl/status/status.h>
#include <absl/status/statusor.h>
#include <yaml-cpp/yaml.h>

#include <chrono>
#include <concepts>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "telekern/config.h"

namespace telekern {

// How one member type is read from YAML and which ConfigType declares it.
template <typename Field>
struct ConfigField;

template <>
struct ConfigField<std::string> {
  static constexpr ConfigType kType = ConfigType::kString;
  static absl::StatusOr<std::string> read(const YAML::Node& node) {
    return node.IsNull() ? std::string() : node.as<std::string>();
  }
};

template <>
struct ConfigField<bool> {
  static constexpr ConfigType kType = ConfigType::kBool;
  static absl::StatusOr<bool> read(const YAML::Node& node) { return node.as<bool>(); }
};

template <std::integral Field>
struct ConfigField<Field> {
  static constexpr ConfigType kType = ConfigType::kInt;
  static absl::StatusOr<Field> read(const YAML::Node& node) {
    auto value = node.as<int64_t>();
    using Limits = std::numeric_limits<Field>;
    if (value < 0 && (std::is_unsigned_v<Field> || value < static_cast<int64_t>(Limits::min())))
      return absl::InvalidArgumentError(std::to_string(value) + " is out of range");
    if (value > 0 && static_cast<uint64_t>(value) > static_cast<uint64_t>(Limits::max())) {
      return absl::InvalidArgumentError(std::to_string(value) + " is larger than " +
                                        std::to_string(Limits::max()));
    }
    return static_cast<Field>(value);
  }
};

template <>
struct ConfigField<double> {
  static constexpr ConfigType kType = ConfigType::kDouble;
  static absl::StatusOr<double> read(const YAML::Node& node) { return node.as<double>(); }
};

template <>
struct ConfigField<std::chrono::milliseconds> {
  static constexpr ConfigType kType = ConfigType::kDuration;
  static absl::StatusOr<std::chrono::milliseconds> read(const YAML::Node& node) {
    return parse_duration(node.as<std::string>());
  }
};

template <>
struct ConfigField<std::vector<std::string>> {
  static constexpr ConfigType kType = ConfigType::kStringList;
  static absl::StatusOr<std::vector<std::string>> read(const YAML::Node& node);
};

template <>
struct ConfigField<std::vector<std::chrono::milliseconds>> {
  static constexpr ConfigType kType = ConfigType::kStringList;
  static absl::StatusOr<std::vector<std::chrono::milliseconds>> read(const YAML::Node& node);
};

// A map of string settings (e.g. raw librdkafka properties), in YAML order.
template <>
struct ConfigField<std::vector<std::pair<std::string, std::string>>> {
  static constexpr ConfigType kType = ConfigType::kNode;
  static absl::StatusOr<std::vector<std::pair<std::string, std::string>>> read(
      const YAML::Node& node);
};

template <>
struct ConfigField<YAML::Node> {
  static constexpr ConfigType kType = ConfigType::kNode;
  static absl::StatusOr<YAML::Node> read(const YAML::Node& node) { return YAML::Clone(node); }
};

// A check of one key's value; return an error naming the fix.
template <typename Field>
using FieldCheck = std::function<absl::Status(const Field&)>;

// Common checks.
template <typename Number>
FieldCheck<Number> at_least(Number minimum) {
  return [minimum](const Number& value) {
    if (value >= minimum) return absl::OkStatus();
    return absl::InvalidArgumentError("must be at least " + std::to_string(minimum) + ", not " +
                                      std::to_string(value));
  };
}
template <typename Number>
FieldCheck<Number> between(Number minimum, Number maximum) {
  return [minimum, maximum](const Number& value) {
    if (value >= minimum && value <= maximum) return absl::OkStatus();
    return absl::InvalidArgumentError("must be " + std::to_string(minimum) + ".." +
                                      std::to_string(maximum) + ", not " + std::to_string(value));
  };
}
FieldCheck<std::string> one_of(std::vector<std::string> allowed);
FieldCheck<std::chrono::milliseconds> positive_duration();

// A section check: the whole validated section, rules across keys included.
using SectionCheck = std::function<absl::Status(const Config&)>;

template <typename Options>
class ConfigMap {
 public:
  // Declares key `name` (dotted for nested keys) and binds it to `member`.
  template <typename Field>
  ConfigMap& key(std::string name, Field Options::*member, std::string default_value,
                 std::string description, FieldCheck<Field> check = {}) {
    ConfigKey key{name, ConfigField<Field>::kType, std::move(default_value), std::move(description),
                  field_validator<Field>(check)};
    schema_.push_back(std::move(key));
    binders_.push_back([name, member](const Config& config, Options& out) -> absl::Status {
      auto value = ConfigField<Field>::read(config.get_node(name));
      if (!value.ok()) return config.error_at(name, std::string(value.status().message()));
      out.*member = std::move(*value);
      return absl::OkStatus();
    });
    return *this;
  }

  // A string key shown as "***" whenever config is printed.
  ConfigMap& secret(std::string name, std::string Options::*member, std::string description) {
    key(name, member, "", std::move(description));
    schema_.back().type = ConfigType::kSecret;
    return *this;
  }

  // A key whose YAML spelling maps onto an enum: choice("durability", &O::d, "fsync", "...",
  // {{"none", Durability::kNone}, {"fsync", Durability::kFsync}}).
  template <typename Enum>
  ConfigMap& choice(std::string name, Enum Options::*member, std::string default_value,
                    std::string description, std::vector<std::pair<std::string, Enum>> names) {
    std::vector<std::string> spellings;
    for (const auto& [spelling, _] : names) spellings.push_back(spelling);
    auto check = one_of(spellings);
    schema_.push_back({name, ConfigType::kString, std::move(default_value), std::move(description),
                       field_validator<std::string>(check)});
    binders_.push_back([name, member, names](const Config& config, Options& out) -> absl::Status {
      auto spelling = config.get_string(name);
      for (const auto& [candidate, value] : names) {
        if (candidate == spelling) {
          out.*member = value;
          return absl::OkStatus();
        }
      }
      return config.error_at(name, "'" + spelling + "' is not an accepted value");
    });
    return *this;
  }

  // Keys declared by another map for a member struct (e.g. stream settings
  // under "stream."): they are declared here with `prefix` and fill `member`.
  template <typename Nested>
  ConfigMap& nest(const std::string& prefix, Nested Options::*member,
                  const ConfigMap<Nested>& nested) {
    for (auto key : nested.schema()) {
      key.name = prefix + key.name;
      schema_.push_back(std::move(key));
    }
    binders_.push_back([prefix, member, nested](const Config& config, Options& out) {
      auto value = nested.bind(config, prefix);
      if (!value.ok()) return value.status();
      out.*member = std::move(*value);
      return absl::OkStatus();
    });
    return *this;
  }

  // A rule across `keys`, checked on the filled struct; its error is
  // reported at the first of them set outside the defaults (file, line,
  // key), e.g. rule({"default_partitions", "max_partitions"}, ...).
  ConfigMap& rule(std::vector<std::string> keys,
                  std::function<absl::Status(const Options&)> check) {
    rules_.push_back({std::move(keys), std::move(check)});
    return *this;
  }

  // Every declared key with its type, default, description and per-key check.
  const ConfigSchema& schema() const { return schema_; }

  // Fills an Options from a section validated against schema() (defaults
  // applied, types checked), then checks the rules. `prefix` is the dotted
  // path of these keys inside the section when the map is nested.
  absl::StatusOr<Options> bind(const Config& config, const std::string& prefix = "") const {
    Options options;
    Config scoped = prefix.empty() ? config : config.subsection(prefix);
    for (const auto& binder : binders_) {
      if (auto status = binder(scoped, options); !status.ok()) return status;
    }
    for (const auto& [keys, check] : rules_) {
      auto status = check(options);
      if (status.ok()) continue;
      std::string at = keys.front();
      for (const auto& key : keys) {
        if (scoped.origin(key) != "default") {
          at = key;
          break;
        }
      }
      return scoped.error_at(at, std::string(status.message()));
    }
    return options;
  }

  // The whole-section check a module hands the kernel (ModuleInfo::validate):
  // the kernel runs it with the per-key checks before it stops anything.
  SectionCheck section_check() const {
    return [map = *this](const Config& config) { return map.bind(config).status(); };
  }

 private:
  template <typename Field>
  static std::function<absl::Status(const YAML::Node&)> field_validator(FieldCheck<Field> check) {
    return [check](const YAML::Node& node) -> absl::Status {
      absl::StatusOr<Field> value;
      try {
        value = ConfigField<Field>::read(node);
      } catch (const YAML::Exception& error) {
        return absl::InvalidArgumentError(error.what());
      }
      if (!value.ok()) return value.status();
      return check ? check(*value) : absl::OkStatus();
    };
  }

  ConfigSchema schema_;
  std::vector<std::function<absl::Status(const Config&, Options&)>> binders_;
  std::vector<std::pair<std::vector<std::string>, std::function<absl::Status(const Options&)>>>
      rules_;
};

}  // namespace telekern
