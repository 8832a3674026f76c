#include "kernel/http/transcoder.h"

#include <absl/strings/escaping.h>
#include <google/protobuf/dynamic_message.h>
#include <google/protobuf/util/json_util.h>

#include <nlohmann/json.hpp>

#include "telekern/strings.h"

namespace telekern::kernel::http {

namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using nlohmann::json;

const FieldDescriptor* find_field(const Descriptor& type, std::string_view name) {
  std::string key(name);
  if (const auto* field = type.FindFieldByName(key)) return field;
  for (int i = 0; i < type.field_count(); ++i) {
    if (type.field(i)->json_name() == key) return type.field(i);
  }
  return nullptr;
}

std::string field_list(const Descriptor& type) {
  std::vector<std::string> names;
  for (int i = 0; i < type.field_count(); ++i) names.push_back(type.field(i)->name());
  return names.empty() ? "none" : join(names, ", ");
}

// Well-known types have their own JSON forms (strings, numbers, anything).
bool has_special_json(const Descriptor& type) {
  return type.file()->package() == "google.protobuf";
}

// Rejects object keys that are no field of `type`, recursively, naming the
// path: protobuf's own parser says only "Cannot find field".
absl::Status check_known_fields(const Descriptor& type, const json& value, const std::string& at) {
  if (!value.is_object()) return absl::OkStatus();
  for (const auto& [key, child] : value.items()) {
    const auto* field = find_field(type, key);
    std::string path = at.empty() ? key : str_cat(at, ".", key);
    if (field == nullptr) {
      return absl::InvalidArgumentError(str_cat("unknown field '", path, "' in ", type.full_name(),
                                                "; its fields: ", field_list(type)));
    }
    if (field->type() != FieldDescriptor::TYPE_MESSAGE || field->is_map() ||
        has_special_json(*field->message_type()) || child.is_null()) {
      continue;
    }
    if (field->is_repeated()) {
      if (!child.is_array()) continue;  // protobuf reports the wrong type
      for (size_t i = 0; i < child.size(); ++i) {
        if (auto status = check_known_fields(*field->message_type(), child[i],
                                             str_cat(path, "[", std::to_string(i), "]"));
            !status.ok()) {
          return status;
        }
      }
    } else if (auto status = check_known_fields(*field->message_type(), child, path);
               !status.ok()) {
      return status;
    }
  }
  return absl::OkStatus();
}

// The field a dotted path names, walking nested messages.
absl::StatusOr<const FieldDescriptor*> resolve(const Descriptor& type, std::string_view path,
                                               std::string_view what) {
  const Descriptor* current = &type;
  const FieldDescriptor* field = nullptr;
  for (auto part : split(path, '.')) {
    if (current == nullptr) {
      return absl::InvalidArgumentError(
          str_cat(what, " '", path, "': '", field->name(), "' is not a message"));
    }
    field = find_field(*current, part);
    if (field == nullptr) {
      return absl::InvalidArgumentError(str_cat(what, " '", path, "' is not a field of ",
                                                current->full_name(),
                                                "; its fields: ", field_list(*current)));
    }
    current = field->type() == FieldDescriptor::TYPE_MESSAGE && !field->is_map()
                  ? field->message_type()
                  : nullptr;
  }
  if (field == nullptr) {
    // "." or "..": no name at all (found by the transcoder fuzz target).
    return absl::InvalidArgumentError(str_cat(what, " '", path, "' names no field of ",
                                              type.full_name(),
                                              "; its fields: ", field_list(type)));
  }
  return field;
}

// A path or query value as the JSON the field's type takes.
absl::StatusOr<json> scalar_json(const FieldDescriptor& field, const std::string& value,
                                 std::string_view what) {
  if (field.type() == FieldDescriptor::TYPE_BOOL) {
    if (value == "true" || value == "1" || value.empty()) return json(true);
    if (value == "false" || value == "0") return json(false);
    return absl::InvalidArgumentError(
        str_cat(what, " '", field.name(), "': '", value, "' is not true or false"));
  }
  if (field.type() == FieldDescriptor::TYPE_MESSAGE && !has_special_json(*field.message_type())) {
    return absl::InvalidArgumentError(str_cat(what, " '", field.name(), "' is a message (",
                                              field.message_type()->full_name(),
                                              "); send it in the JSON body"));
  }
  // Numbers, enums (by name or number), Duration "5s", Timestamp: the
  // protobuf JSON parser takes them as strings.
  return json(value);
}

// Sets `value` at the dotted `path` (proto names) in `target`.
void set_at(json& target, std::string_view path, json value, bool append) {
  json* node = &target;
  auto parts = split(path, '.');
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    json& child = (*node)[std::string(parts[i])];
    if (!child.is_object()) child = json::object();
    node = &child;
  }
  json& slot = (*node)[std::string(parts.back())];
  if (append) {
    if (!slot.is_array()) slot = json::array();
    slot.push_back(std::move(value));
  } else {
    slot = std::move(value);
  }
}

// Canonical proto-name path for a dotted path given by name or JSON name.
std::string canonical_path(const Descriptor& type, std::string_view path) {
  std::vector<std::string> names;
  const Descriptor* current = &type;
  for (auto part : split(path, '.')) {
    const auto* field = current ? find_field(*current, part) : nullptr;
    if (field == nullptr) return std::string(path);
    names.push_back(field->name());
    current = field->type() == FieldDescriptor::TYPE_MESSAGE ? field->message_type() : nullptr;
  }
  return join(names, ".");
}

absl::StatusOr<json> parse_json_body(std::string_view body, std::string_view what) {
  json parsed = json::parse(body.begin(), body.end(), nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) {
    // Parse again for the position; exceptions stay in this function.
    try {
      json discarded = json::parse(body.begin(), body.end());
      (void)discarded;
    } catch (const json::exception& error) {
      return absl::InvalidArgumentError(str_cat(what, " is not valid JSON: ", error.what()));
    }
    return absl::InvalidArgumentError(str_cat(what, " is not valid JSON"));
  }
  return parsed;
}

absl::StatusOr<std::unique_ptr<google::protobuf::Message>> from_json(const Descriptor& type,
                                                                     const json& value) {
  if (auto status = check_known_fields(type, value, ""); !status.ok()) return status;
  std::string text;
  try {
    text = value.dump(-1, ' ', false, json::error_handler_t::strict);
  } catch (const json::exception&) {
    return absl::InvalidArgumentError(
        "request holds a string that is not valid UTF-8; send UTF-8 (bytes fields take base64)");
  }
  const auto* prototype =
      google::protobuf::MessageFactory::generated_factory()->GetPrototype(&type);
  if (prototype == nullptr) {
    return absl::InternalError(str_cat("no message class for ", type.full_name()));
  }
  std::unique_ptr<google::protobuf::Message> message(prototype->New());
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = false;
  auto status = google::protobuf::util::JsonStringToMessage(text, message.get(), options);
  if (!status.ok()) {
    return absl::InvalidArgumentError(
        str_cat("request does not fit ", type.full_name(), ": ", status.message()));
  }
  return message;
}

bool is_json_content(std::string_view content_type) {
  auto lower = to_lower(content_type);
  return lower.empty() || lower.find("json") != std::string::npos;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string url_decode(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '+') {
      out += ' ';
    } else if (text[i] == '%' && i + 2 < text.size() && hex_value(text[i + 1]) >= 0 &&
               hex_value(text[i + 2]) >= 0) {
      out += static_cast<char>(hex_value(text[i + 1]) * 16 + hex_value(text[i + 2]));
      i += 2;
    } else {
      out += text[i];
    }
  }
  return out;
}

}  // namespace

std::multimap<std::string, std::string> parse_query(std::string_view target) {
  std::multimap<std::string, std::string> query;
  size_t question = target.find('?');
  if (question == std::string_view::npos) return query;
  std::string_view text = target.substr(question + 1);
  size_t hash = text.find('#');
  if (hash != std::string_view::npos) text = text.substr(0, hash);
  for (const auto& pair : split(text, '&')) {
    size_t equals = pair.find('=');
    std::string name = url_decode(std::string_view(pair).substr(0, equals));
    if (name.empty()) continue;
    query.emplace(std::move(name), equals == std::string::npos
                                       ? std::string()
                                       : url_decode(std::string_view(pair).substr(equals + 1)));
  }
  return query;
}

absl::StatusOr<std::unique_ptr<google::protobuf::Message>> transcode_request(
    const Descriptor& type, const HttpRequestParts& parts, const BodyRule& rule) {
  if (rule.body == "*" && rule.request_defaults.empty() && parts.path_bindings.empty() &&
      parts.query.empty() && trim(parts.body).starts_with("{")) {
    // The common case (POST /rpc/...): protobuf parses the body alone; only a
    // body it refuses takes the slow path below, which names the problem.
    const auto* prototype =
        google::protobuf::MessageFactory::generated_factory()->GetPrototype(&type);
    if (prototype != nullptr) {
      std::unique_ptr<google::protobuf::Message> message(prototype->New());
      google::protobuf::util::JsonParseOptions options;
      auto body = trim(parts.body);
      if (google::protobuf::util::JsonStringToMessage(
              google::protobuf::StringPiece(body.data(), body.size()), message.get(), options)
              .ok()) {
        return message;
      }
    }
  }
  json request = json::object();
  if (!rule.request_defaults.empty()) {
    auto defaults = parse_json_body(rule.request_defaults, "the route's request_defaults");
    if (!defaults.ok()) return absl::InternalError(defaults.status().message());
    if (defaults->is_object()) request = std::move(*defaults);
  }
  bool has_body = !trim(parts.body).empty();
  if (rule.body == "*") {
    if (has_body) {
      auto parsed = parse_json_body(parts.body, "request body");
      if (!parsed.ok()) return parsed.status();
      if (!parsed->is_object()) {
        return absl::InvalidArgumentError(str_cat("request body must be a JSON object (",
                                                  type.full_name(), "), not ",
                                                  parsed->type_name()));
      }
      request.update(*parsed);
    }
  } else if (!rule.body.empty()) {
    auto field = resolve(type, rule.body, "body field");
    if (!field.ok()) return field.status();
    std::string path = canonical_path(type, rule.body);
    bool raw = ((*field)->type() == FieldDescriptor::TYPE_STRING ||
                (*field)->type() == FieldDescriptor::TYPE_BYTES) &&
               !(*field)->is_repeated() && !is_json_content(parts.content_type);
    if (raw) {
      // A text or binary body goes into the field as sent.
      if ((*field)->type() == FieldDescriptor::TYPE_BYTES) {
        set_at(request, path,
               json(absl::Base64Escape(absl::string_view(parts.body.data(), parts.body.size()))),
               false);
      } else {
        set_at(request, path, json(std::string(parts.body)), false);
      }
    } else if (has_body) {
      auto parsed = parse_json_body(parts.body, str_cat("request body (field ", rule.body, ")"));
      if (!parsed.ok()) return parsed.status();
      set_at(request, path, std::move(*parsed), false);
    }
  } else if (has_body) {
    return absl::InvalidArgumentError(str_cat("this route takes no body; send the fields of ",
                                              type.full_name(), " as query parameters"));
  }

  for (const auto& [path, value] : parts.path_bindings) {
    auto field = resolve(type, path, "path parameter");
    if (!field.ok()) return field.status();
    auto converted = scalar_json(**field, value, "path parameter");
    if (!converted.ok()) return converted.status();
    set_at(request, canonical_path(type, path), std::move(*converted), false);
  }
  for (const auto& [name, value] : parts.query) {
    if (std::find(rule.ignored_query_parameters.begin(), rule.ignored_query_parameters.end(),
                  name) != rule.ignored_query_parameters.end()) {
      continue;
    }
    auto field = resolve(type, name, "query parameter");
    if (!field.ok()) return field.status();
    auto converted = scalar_json(**field, value, "query parameter");
    if (!converted.ok()) return converted.status();
    set_at(request, canonical_path(type, name), std::move(*converted), (*field)->is_repeated());
  }
  return from_json(type, request);
}

absl::StatusOr<std::vector<std::unique_ptr<google::protobuf::Message>>> transcode_ndjson(
    const Descriptor& type, const HttpRequestParts& parts) {
  std::vector<std::unique_ptr<google::protobuf::Message>> messages;
  size_t line_number = 0;
  for (const auto& line : split(parts.body, '\n', /*skip_empty=*/false)) {
    ++line_number;
    if (trim(line).empty()) continue;
    auto parsed = parse_json_body(line, str_cat("body line ", std::to_string(line_number)));
    if (!parsed.ok()) return parsed.status();
    auto message = from_json(type, *parsed);
    if (!message.ok()) {
      return absl::InvalidArgumentError(
          str_cat("body line ", std::to_string(line_number), ": ", message.status().message()));
    }
    messages.push_back(std::move(*message));
  }
  return messages;
}

std::string message_to_json(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.always_print_primitive_fields = true;
  std::string out;
  auto status = google::protobuf::util::MessageToJsonString(message, &out, options);
  if (!status.ok()) return "{}";
  return out;
}

}  // namespace telekern::kernel::http
