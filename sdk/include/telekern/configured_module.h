// Base for a module whose config binds to an options struct: it declares its
// keys once in a ConfigMap and receives the filled struct at start(); info()
// and the kernel's whole-section check follow from the map.
//
//   class EchoModule final : public ConfiguredModule<EchoOptions> {
//    public:
//     EchoModule() : ConfiguredModule({"echo", "1.0.0", "says things back"}, echo_config()) {}
//     absl::Status start(ModuleContext& context, EchoOptions options) override;
//     ...
//   };
#pragma once

#include "telekern/config_map.h"
#include "telekern/module.h"

namespace telekern {

template <typename Options>
class ConfiguredModule : public Module {
 public:
  // `about`: name, version and description; its config fields are filled from `config`.
  ConfiguredModule(ModuleInfo about, ConfigMap<Options> config)
      : about_(std::move(about)), config_(std::move(config)) {}

  ModuleInfo info() const final {
    ModuleInfo info = about_;
    info.config = config_.schema();
    info.validate = config_.section_check();
    return info;
  }

  absl::Status start(ModuleContext& context) final {
    auto options = config_.bind(context.config());
    if (!options.ok()) return options.status();
    return start(context, std::move(*options));
  }

 protected:
  // Called with the module's section bound to Options (every rule checked).
  virtual absl::Status start(ModuleContext& context, Options options) = 0;
  const ConfigMap<Options>& config_map() const { return config_; }

 private:
  ModuleInfo about_;
  ConfigMap<Options> config_;
};

}  // namespace telekern
