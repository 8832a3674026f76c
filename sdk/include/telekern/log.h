// Logging: one line per event, text or JSON, the component's name on every line.
#pragma once

#include <absl/strings/string_view.h>
#include <spdlog/logger.h>

#include <memory>
#include <string>
#include <string_view>

namespace telekern {

enum class LogFormat { kText, kJson };

// Sets the format and level ("trace".."critical") every logger made afterwards
// uses, and applies them to loggers made before.
void configure_logging(LogFormat format, std::string_view level);

// A logger whose lines carry `component` (a module name, "kernel", ...).
// Loggers are not registered globally, so a reloaded module gets a fresh one.
std::shared_ptr<spdlog::logger> make_logger(std::string_view component);

}  // namespace telekern

// Lets log lines take status.message() (Debian's abseil has its own string_view).
template <>
struct fmt::formatter<absl::string_view> : fmt::formatter<std::string_view> {
  template <typename Context>
  auto format(absl::string_view value, Context& context) const {
    return fmt::formatter<std::string_view>::format(std::string_view(value.data(), value.size()),
                                                    context);
  }
};
