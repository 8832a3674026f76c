#include "telekern/log.h"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>

#include <mutex>
#include <vector>

namespace telekern {
namespace {

// Writes the message as a JSON string body (without quotes).
class JsonMessageFlag final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& message, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    for (char c : message.payload) {
      switch (c) {
        case '"':
          dest.append(std::string_view("\\\""));
          break;
        case '\\':
          dest.append(std::string_view("\\\\"));
          break;
        case '\n':
          dest.append(std::string_view("\\n"));
          break;
        case '\t':
          dest.append(std::string_view("\\t"));
          break;
        case '\r':
          dest.append(std::string_view("\\r"));
          break;
        default:
          if (static_cast<unsigned char>(c) < 0x20) {
            char buffer[8];
            std::snprintf(buffer, sizeof buffer, "\\u%04x", c);
            dest.append(std::string_view(buffer));
          } else {
            dest.push_back(c);
          }
      }
    }
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<JsonMessageFlag>();
  }
};

struct LoggingState {
  std::mutex mutex;
  LogFormat format = LogFormat::kText;
  spdlog::level::level_enum level = spdlog::level::info;
  std::shared_ptr<spdlog::sinks::stderr_sink_mt> sink =
      std::make_shared<spdlog::sinks::stderr_sink_mt>();
  std::vector<std::weak_ptr<spdlog::logger>> loggers;
};

LoggingState& state() {
  static LoggingState instance;
  return instance;
}

std::unique_ptr<spdlog::formatter> make_formatter(LogFormat format) {
  if (format == LogFormat::kJson) {
    auto formatter = std::make_unique<spdlog::pattern_formatter>(spdlog::pattern_time_type::utc);
    formatter->add_flag<JsonMessageFlag>('*').set_pattern(
        R"({"ts":"%Y-%m-%dT%H:%M:%S.%fZ","level":"%l","module":"%n","msg":"%*"})");
    return formatter;
  }
  auto formatter = std::make_unique<spdlog::pattern_formatter>();
  { formatter->set_pattern("%Y-%m-%dT%H:%M:%S.%e %-5l [%n] %v"); }
  return formatter;
}

}  // namespace

void configure_logging(LogFormat format, std::string_view level) {
  auto& s = state();
  std::lock_guard lock(s.mutex);
  s.format = format;
  s.level = spdlog::level::from_str(std::string(level));
  s.sink->set_formatter(make_formatter(format));
  std::erase_if(s.loggers, [](const auto& weak) { return weak.expired(); });
  for (const auto& weak : s.loggers) {
    if (auto logger = weak.lock()) logger->set_level(s.level);
  }
}

std::shared_ptr<spdlog::logger> make_logger(std::string_view component) {
  auto& s = state();
  std::lock_guard lock(s.mutex);
  auto logger = std::make_shared<spdlog::logger>(std::string(component), s.sink);
  logger->set_level(s.level);
  logger->flush_on(spdlog::level::info);
  std::erase_if(s.loggers, [](const auto& weak) { return weak.expired(); });
  s.loggers.push_back(logger);
  return logger;
}

}  // namespace telekern
