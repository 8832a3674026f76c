// Text <-> protobuf values for the command line: durations ("30s", "1h30m"),
// timestamps (RFC 3339 or relative to now, "-24h"), enums by name, scalars.
#pragma once

#include <absl/status/status.h>
#include <absl/status/statusor.h>
#include <google/protobuf/message.h>

#include <chrono>
#include <string>

namespace telekern::shell {

// "1h30m", "250ms", "1.5s", "2d", "-5m"; a bare number is seconds.
absl::StatusOr<std::chrono::nanoseconds> parse_duration(std::string_view text);
// RFC 3339 ("2024-05-01T12:00:00Z"), a date ("2024-05-01"), "now", or
// relative to now ("-24h", "+30m"). Returns nanoseconds since the epoch.
absl::StatusOr<int64_t> parse_timestamp(
    std::string_view text,
    std::chrono::system_clock::time_point now = std::chrono::system_clock::now());

std::string format_duration(int64_t seconds, int32_t nanos);
std::string format_timestamp(int64_t seconds, int32_t nanos);

bool is_duration(const google::protobuf::Descriptor* type);
bool is_timestamp(const google::protobuf::Descriptor* type);

// Sets (or appends to, when repeated) `field` of `message` from its text form.
// Message fields take JSON, durations, timestamps and wrapper values; map
// fields take key=value.
absl::Status set_field_from_text(google::protobuf::Message& message,
                                 const google::protobuf::FieldDescriptor* field,
                                 const std::string& text);

// An enum value by full name, by name without the type's prefix
// (RUNNING for MODULE_STATE_RUNNING), case-insensitively, or by number.
const google::protobuf::EnumValueDescriptor* find_enum_value(
    const google::protobuf::EnumDescriptor* type, const std::string& text);
// The value name without the type's prefix: MODULE_STATE_RUNNING -> RUNNING.
std::string short_enum_name(const google::protobuf::EnumValueDescriptor* value);

// One value (index for repeated fields) as text for tables and key/value output.
std::string format_field(const google::protobuf::Message& message,
                         const google::protobuf::FieldDescriptor* field, int index = -1);

}  // namespace telekern::shell
