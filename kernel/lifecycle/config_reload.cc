#include "kernel/lifecycle/config_reload.h"

#include "telekern/strings.h"

namespace telekern::kernel {
namespace {

ConfigSource source_for(const std::string& name, const std::string& config_file) {
  return {config_file, str_cat("modules.", name), telekern_environment()};
}

}  // namespace

absl::StatusOr<Config> module_section_config(const ModuleInfo& info, const YAML::Node& sections,
                                             const std::string& config_file) {
  auto config = validate_config(info.config, child_or_undefined(sections, info.name),
                                source_for(info.name, config_file));
  if (!config.ok()) return config.status();
  if (info.validate) {
    if (auto status = info.validate(*config); !status.ok()) return status;
  }
  return config;
}

std::vector<std::string> changed_modules(const std::vector<RunningConfig>& running,
                                         const YAML::Node& sections,
                                         const std::string& config_file) {
  std::vector<std::string> changed;
  for (const auto& module : running) {
    auto fresh = validate_config(module.schema, child_or_undefined(sections, module.name),
                                 source_for(module.name, config_file));
    if (fresh.ok() && fresh->to_yaml() == module.config_yaml) continue;
    changed.push_back(module.name);
  }
  return changed;
}

}  // namespace telekern::kernel
