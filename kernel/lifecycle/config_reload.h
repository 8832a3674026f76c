// A module's config section as the module would check it, and which running
// modules a new config file changes (SIGHUP). Both run before anything stops.
#pragma once

#include <absl/status/statusor.h>
#include <yaml-cpp/yaml.h>

#include <string>
#include <vector>

#include "telekern/module.h"

namespace telekern::kernel {

// `info.name`'s section of `sections` (the "modules:" map of `config_file`),
// checked against the module's schema, then by its whole-section rules
// (info.validate), with TELEKERN_* overrides from the environment. Errors
// name file, line and key. Call it only while the module's library is loaded.
absl::StatusOr<Config> module_section_config(const ModuleInfo& info, const YAML::Node& sections,
                                             const std::string& config_file);

// A running module as the reload check sees it.
struct RunningConfig {
  std::string name;
  ConfigSchema schema;      // without validators: the module's code may be gone
  std::string config_yaml;  // the effective config it runs with
};

// The running modules whose effective config differs under `sections`. A
// section that no longer validates counts as changed: its reload is then
// refused by the full check, and the running instance keeps running.
std::vector<std::string> changed_modules(const std::vector<RunningConfig>& running,
                                         const YAML::Node& sections,
                                         const std::string& config_file);

}  // namespace telekern::kernel
