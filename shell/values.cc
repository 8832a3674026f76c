#include "shell/values.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/timestamp.pb.h>
#include <google/protobuf/util/json_util.h>
#include <google/protobuf/util/time_util.h>

#include <cmath>
#include <cstdlib>

#include "telekern/strings.h"

namespace telekern::shell {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

absl::Status bad_value(const FieldDescriptor* field, const std::string& text,
                       std::string_view expected) {
  return absl::InvalidArgumentError(
      str_cat("--", field->name(), ": '", text, "' is not ", expected));
}

void set_seconds_nanos(Message& message, int64_t total_nanos) {
  const auto* type = message.GetDescriptor();
  const auto* reflection = message.GetReflection();
  int64_t seconds = total_nanos / 1'000'000'000;
  int64_t nanos = total_nanos % 1'000'000'000;
  if (is_timestamp(type) && nanos < 0) {  // Timestamp nanos are never negative
    seconds -= 1;
    nanos += 1'000'000'000;
  }
  reflection->SetInt64(&message, type->FindFieldByName("seconds"), seconds);
  reflection->SetInt32(&message, type->FindFieldByName("nanos"), static_cast<int32_t>(nanos));
}

bool is_wrapper(const Descriptor* type) {
  return type->file()->name() == "google/protobuf/wrappers.proto";
}

absl::Status set_scalar(Message& message, const FieldDescriptor* field, const std::string& text) {
  const auto* reflection = message.GetReflection();
  const bool repeated = field->is_repeated();
  auto parse_signed = [&]() -> std::optional<int64_t> { return parse_int(text); };
  auto parse_unsigned = [&]() -> std::optional<uint64_t> {
    if (text.empty() || text[0] == '-') return std::nullopt;
    uint64_t value = 0;
    auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (error != std::errc() || end != text.data() + text.size()) return std::nullopt;
    return value;
  };
  auto parse_double = [&]() -> std::optional<double> {
    char* end = nullptr;
    double value = std::strtod(text.c_str(), &end);
    if (text.empty() || end != text.c_str() + text.size()) return std::nullopt;
    return value;
  };
  switch (field->cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32: {
      auto value = parse_signed();
      if (!value || *value < INT32_MIN || *value > INT32_MAX)
        return bad_value(field, text, "a 32-bit integer");
      repeated ? reflection->AddInt32(&message, field, static_cast<int32_t>(*value))
               : reflection->SetInt32(&message, field, static_cast<int32_t>(*value));
      return absl::OkStatus();
    }
    case FieldDescriptor::CPPTYPE_INT64: {
      auto value = parse_signed();
      if (!value) return bad_value(field, text, "an integer");
      repeated ? reflection->AddInt64(&message, field, *value)
               : reflection->SetInt64(&message, field, *value);
      return absl::OkStatus();
    }
    case FieldDescriptor::CPPTYPE_UINT32: {
      auto value = parse_unsigned();
      if (!value || *value > UINT32_MAX)
        return bad_value(field, text, "an unsigned 32-bit integer");
      repeated ? reflection->AddUInt32(&message, field, static_cast<uint32_t>(*value))
               : reflection->SetUInt32(&message, field, static_cast<uint32_t>(*value));
      return absl::OkStatus();
    }
    case FieldDescriptor::CPPTYPE_UINT64: {
      auto value = parse_unsigned();
      if (!value) return bad_value(field, text, "an unsigned integer");
      repeated ? reflection->AddUInt64(&message, field, *value)
               : reflection->SetUInt64(&message, field, *value);
      return absl::OkStatus();
    }
    case FieldDescriptor::CPPTYPE_DOUBLE:
    case FieldDescriptor::CPPTYPE_FLOAT: {
      auto value = parse_double();
      if (!value) return bad_value(field, text, "a number");
      if (field->cpp_type() == FieldDescriptor::CPPTYPE_DOUBLE) {
        repeated ? reflection->AddDouble(&message, field, *value)
                 : reflection->SetDouble(&message, field, *value);
      } else {
        auto narrow = static_cast<float>(*value);
        repeated ? reflection->AddFloat(&message, field, narrow)
                 : reflection->SetFloat(&message, field, narrow);
      }
      return absl::OkStatus();
    }
    case FieldDescriptor::CPPTYPE_BOOL: {
      std::string lower = to_lower(text);
      bool value;
      if (lower == "true" || lower == "yes" || lower == "1" || lower == "on") {
        value = true;
      } else if (lower == "false" || lower == "no" || lower == "0" || lower == "off") {
        value = false;
      } else {
        return bad_value(field, text, "true or false");
      }
      repeated ? reflection->AddBool(&message, field, value)
               : reflection->SetBool(&message, field, value);
      return absl::OkStatus();
    }
    case FieldDescriptor::CPPTYPE_STRING:
      repeated ? reflection->AddString(&message, field, text)
               : reflection->SetString(&message, field, text);
      return absl::OkStatus();
    case FieldDescriptor::CPPTYPE_ENUM: {
      const auto* value = find_enum_value(field->enum_type(), text);
      if (value == nullptr) {
        std::vector<std::string> names;
        for (int i = 0; i < field->enum_type()->value_count(); ++i) {
          if (field->enum_type()->value(i)->number() != 0)
            names.push_back(short_enum_name(field->enum_type()->value(i)));
        }
        return bad_value(field, text, str_cat("one of ", join(names, ", ")));
      }
      repeated ? reflection->AddEnum(&message, field, value)
               : reflection->SetEnum(&message, field, value);
      return absl::OkStatus();
    }
    case FieldDescriptor::CPPTYPE_MESSAGE:
      break;
  }
  return absl::InternalError("not a scalar field");
}

absl::Status set_message_value(Message& target, const FieldDescriptor* field,
                               const std::string& text) {
  const auto* type = target.GetDescriptor();
  if (is_duration(type)) {
    auto duration = parse_duration(text);
    if (!duration.ok()) return bad_value(field, text, "a duration like 30s, 5m or 1h30m");
    set_seconds_nanos(target, duration->count());
    return absl::OkStatus();
  }
  if (is_timestamp(type)) {
    auto nanos = parse_timestamp(text);
    if (!nanos.ok())
      return bad_value(field, text, "a time (RFC 3339, 'now', or relative like -24h)");
    set_seconds_nanos(target, *nanos);
    return absl::OkStatus();
  }
  if (is_wrapper(type)) return set_scalar(target, type->FindFieldByName("value"), text);
  google::protobuf::util::JsonParseOptions options;
  auto status = google::protobuf::util::JsonStringToMessage(text, &target, options);
  if (!status.ok()) {
    return absl::InvalidArgumentError(str_cat("--", field->name(), ": expects JSON for ",
                                              type->full_name(), ": ", status.message()));
  }
  return absl::OkStatus();
}

}  // namespace

bool is_duration(const Descriptor* type) {
  return type && type->full_name() == "google.protobuf.Duration";
}
bool is_timestamp(const Descriptor* type) {
  return type && type->full_name() == "google.protobuf.Timestamp";
}

absl::StatusOr<std::chrono::nanoseconds> parse_duration(std::string_view text) {
  std::string input(trim(text));
  if (input.empty()) return absl::InvalidArgumentError("empty duration");
  bool negative = false;
  size_t position = 0;
  if (input[0] == '-' || input[0] == '+') {
    negative = input[0] == '-';
    position = 1;
  }
  double total = 0;
  bool any = false;
  while (position < input.size()) {
    size_t start = position;
    while (position < input.size() &&
           (std::isdigit(static_cast<unsigned char>(input[position])) || input[position] == '.')) {
      ++position;
    }
    if (position == start) return absl::InvalidArgumentError(str_cat("bad duration '", input, "'"));
    double number = std::strtod(input.substr(start, position - start).c_str(), nullptr);
    size_t unit_start = position;
    while (position < input.size() && std::isalpha(static_cast<unsigned char>(input[position])))
      ++position;
    std::string unit = input.substr(unit_start, position - unit_start);
    double scale;
    if (unit == "ns") {
      scale = 1;
    } else if (unit == "us") {
      scale = 1e3;
    } else if (unit == "ms") {
      scale = 1e6;
    } else if (unit == "s" || (unit.empty() && !any && position == input.size())) {
      scale = 1e9;
    } else if (unit == "m") {
      scale = 60e9;
    } else if (unit == "h") {
      scale = 3600e9;
    } else if (unit == "d") {
      scale = 86400e9;
    } else {
      return absl::InvalidArgumentError(str_cat("bad duration unit '", unit, "' in '", input, "'"));
    }
    total += number * scale;
    any = true;
  }
  auto nanos = static_cast<int64_t>(std::llround(total));
  return std::chrono::nanoseconds(negative ? -nanos : nanos);
}

absl::StatusOr<int64_t> parse_timestamp(std::string_view text,
                                        std::chrono::system_clock::time_point now) {
  std::string input(trim(text));
  int64_t now_nanos =
      std::chrono::duration_cast<std::chrono::nanoseconds>(now.time_since_epoch()).count();
  if (input == "now") return now_nanos;
  if (!input.empty() && (input[0] == '-' || input[0] == '+')) {
    auto offset = parse_duration(input);
    if (!offset.ok()) return offset.status();
    return now_nanos + offset->count();
  }
  if (input.size() == 10 && input[4] == '-' && input[7] == '-') input += "T00:00:00Z";
  google::protobuf::Timestamp timestamp;
  if (!google::protobuf::util::TimeUtil::FromString(input, &timestamp)) {
    return absl::InvalidArgumentError(str_cat("bad time '", input, "'"));
  }
  return timestamp.seconds() * 1'000'000'000 + timestamp.nanos();
}

std::string format_duration(int64_t seconds, int32_t nanos) {
  bool negative = seconds < 0 || nanos < 0;
  int64_t total_ms = std::llabs(seconds) * 1000 + std::abs(nanos) / 1'000'000;
  std::string out = negative ? "-" : "";
  if (total_ms < 1000) return str_cat(out, total_ms, "ms");
  int64_t hours = total_ms / 3'600'000;
  int64_t minutes = total_ms / 60'000 % 60;
  int64_t whole_seconds = total_ms / 1000 % 60;
  int64_t millis = total_ms % 1000;
  if (hours > 0) str_append(out, hours, "h");
  if (minutes > 0) str_append(out, minutes, "m");
  if (whole_seconds > 0 || millis > 0 || (hours == 0 && minutes == 0)) {
    str_append(out, whole_seconds);
    if (millis > 0 && hours == 0) {
      char buffer[8];
      std::snprintf(buffer, sizeof buffer, ".%03d", static_cast<int>(millis));
      std::string fraction = buffer;
      while (fraction.back() == '0') fraction.pop_back();
      out += fraction;
    }
    out += "s";
  }
  return out;
}

std::string format_timestamp(int64_t seconds, int32_t nanos) {
  if (seconds == 0 && nanos == 0) return "";
  google::protobuf::Timestamp timestamp;
  timestamp.set_seconds(seconds);
  timestamp.set_nanos(nanos - nanos % 1'000'000);  // milliseconds are enough for people
  return google::protobuf::util::TimeUtil::ToString(timestamp);
}

const google::protobuf::EnumValueDescriptor* find_enum_value(
    const google::protobuf::EnumDescriptor* type, const std::string& text) {
  if (const auto* value = type->FindValueByName(text)) return value;
  std::string lower = to_lower(text);
  for (int i = 0; i < type->value_count(); ++i) {
    const auto* value = type->value(i);
    if (to_lower(value->name()) == lower || to_lower(short_enum_name(value)) == lower) return value;
  }
  if (auto number = parse_int(text)) return type->FindValueByNumber(static_cast<int>(*number));
  return nullptr;
}

std::string short_enum_name(const google::protobuf::EnumValueDescriptor* value) {
  // MODULE_STATE_RUNNING of enum ModuleState: strip "MODULE_STATE_".
  std::string prefix;
  for (char c : value->type()->name()) {
    if (std::isupper(static_cast<unsigned char>(c)) && !prefix.empty()) prefix += '_';
    prefix += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  prefix += '_';
  const std::string& name = value->name();
  if (name.size() > prefix.size() && name.compare(0, prefix.size(), prefix) == 0)
    return name.substr(prefix.size());
  return name;
}

absl::Status set_field_from_text(Message& message, const FieldDescriptor* field,
                                 const std::string& text) {
  const auto* reflection = message.GetReflection();
  if (field->is_map()) {
    auto equals = text.find('=');
    if (equals == std::string::npos) return bad_value(field, text, "key=value");
    Message* entry = reflection->AddMessage(&message, field);
    const auto* type = entry->GetDescriptor();
    auto status = set_field_from_text(*entry, type->FindFieldByName("key"), text.substr(0, equals));
    if (!status.ok()) return status;
    return set_field_from_text(*entry, type->FindFieldByName("value"), text.substr(equals + 1));
  }
  if (field->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
    Message* target = field->is_repeated() ? reflection->AddMessage(&message, field)
                                           : reflection->MutableMessage(&message, field);
    return set_message_value(*target, field, text);
  }
  return set_scalar(message, field, text);
}

std::string format_field(const Message& message, const FieldDescriptor* field, int index) {
  const auto* reflection = message.GetReflection();
  if (field->is_repeated() && index < 0) {
    std::vector<std::string> parts;
    int size = reflection->FieldSize(message, field);
    for (int i = 0; i < size; ++i) parts.push_back(format_field(message, field, i));
    return join(parts, ",");
  }
  const bool repeated = field->is_repeated();
  switch (field->cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32:
      return std::to_string(repeated ? reflection->GetRepeatedInt32(message, field, index)
                                     : reflection->GetInt32(message, field));
    case FieldDescriptor::CPPTYPE_INT64:
      return std::to_string(repeated ? reflection->GetRepeatedInt64(message, field, index)
                                     : reflection->GetInt64(message, field));
    case FieldDescriptor::CPPTYPE_UINT32:
      return std::to_string(repeated ? reflection->GetRepeatedUInt32(message, field, index)
                                     : reflection->GetUInt32(message, field));
    case FieldDescriptor::CPPTYPE_UINT64:
      return std::to_string(repeated ? reflection->GetRepeatedUInt64(message, field, index)
                                     : reflection->GetUInt64(message, field));
    case FieldDescriptor::CPPTYPE_DOUBLE:
    case FieldDescriptor::CPPTYPE_FLOAT: {
      double value = field->cpp_type() == FieldDescriptor::CPPTYPE_DOUBLE
                         ? (repeated ? reflection->GetRepeatedDouble(message, field, index)
                                     : reflection->GetDouble(message, field))
                         : (repeated ? reflection->GetRepeatedFloat(message, field, index)
                                     : reflection->GetFloat(message, field));
      char buffer[64];
      std::snprintf(buffer, sizeof buffer, "%g", value);
      return buffer;
    }
    case FieldDescriptor::CPPTYPE_BOOL:
      return (repeated ? reflection->GetRepeatedBool(message, field, index)
                       : reflection->GetBool(message, field))
                 ? "true"
                 : "false";
    case FieldDescriptor::CPPTYPE_STRING:
      return repeated ? reflection->GetRepeatedString(message, field, index)
                      : reflection->GetString(message, field);
    case FieldDescriptor::CPPTYPE_ENUM:
      return short_enum_name(repeated ? reflection->GetRepeatedEnum(message, field, index)
                                      : reflection->GetEnum(message, field));
    case FieldDescriptor::CPPTYPE_MESSAGE: {
      if (!repeated && !reflection->HasField(message, field)) return "";
      const Message& value = repeated ? reflection->GetRepeatedMessage(message, field, index)
                                      : reflection->GetMessage(message, field);
      const auto* type = value.GetDescriptor();
      if (is_duration(type) || is_timestamp(type)) {
        const auto* value_reflection = value.GetReflection();
        int64_t seconds = value_reflection->GetInt64(value, type->FindFieldByName("seconds"));
        int32_t nanos = value_reflection->GetInt32(value, type->FindFieldByName("nanos"));
        return is_duration(type) ? format_duration(seconds, nanos)
                                 : format_timestamp(seconds, nanos);
      }
      if (is_wrapper(type)) return format_field(value, type->FindFieldByName("value"));
      std::string json;
      google::protobuf::util::JsonPrintOptions options;
      options.preserve_proto_field_names = true;
      (void)google::protobuf::util::MessageToJsonString(value, &json, options);
      return json;
    }
  }
  return "";
}

}  // namespace telekern::shell
