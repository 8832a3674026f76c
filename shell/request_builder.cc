#include "shell/request_builder.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/util/json_util.h>

#include <fstream>

#include "shell/values.h"
#include "telekern/strings.h"

namespace telekern::shell {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;

const FieldDescriptor* find_field(const Descriptor* type, const std::string& name) {
  if (const auto* field = type->FindFieldByName(name)) return field;
  std::string underscored = name;
  for (auto& c : underscored) {
    if (c == '-') c = '_';
  }
  if (const auto* field = type->FindFieldByName(underscored)) return field;
  if (const auto* field = type->FindFieldByCamelcaseName(name)) return field;
  return type->FindFieldByLowercaseName(to_lower(underscored));
}

absl::Status merge_json(const std::string& json, Message& message) {
  // JsonStringToMessage replaces the message; merge so flags and JSON combine.
  std::unique_ptr<Message> parsed(message.New());
  google::protobuf::util::JsonParseOptions options;
  auto status = google::protobuf::util::JsonStringToMessage(json, parsed.get(), options);
  if (!status.ok()) {
    return absl::InvalidArgumentError(
        str_cat("--json: not a ", message.GetDescriptor()->full_name(), ": ", status.message()));
  }
  message.MergeFrom(*parsed);
  return absl::OkStatus();
}

void collect_flags(const Descriptor* type, const std::string& prefix, int depth,
                   std::vector<std::string>& out) {
  for (int i = 0; i < type->field_count(); ++i) {
    const auto* field = type->field(i);
    std::string name = prefix + field->name();
    out.push_back(name);
    if (field->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE && !field->is_repeated() &&
        depth < 3 && !is_duration(field->message_type()) && !is_timestamp(field->message_type()) &&
        field->message_type()->file()->package() != "google.protobuf") {
      collect_flags(field->message_type(), name + ".", depth + 1, out);
    }
  }
}

}  // namespace

const FieldDescriptor* find_flag_field(const Descriptor* type, const std::string& flag) {
  auto parts = split(flag, '.');
  const FieldDescriptor* field = nullptr;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (type == nullptr) return nullptr;
    field = find_field(type, parts[i]);
    if (field == nullptr) return nullptr;
    type = field->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE ? field->message_type() : nullptr;
    if (i + 1 < parts.size() && field->is_repeated()) return nullptr;
  }
  return field;
}

absl::StatusOr<std::pair<Message*, const FieldDescriptor*>> resolve_flag(Message& root,
                                                                         const std::string& flag) {
  auto parts = split(flag, '.');
  if (parts.empty()) return absl::InvalidArgumentError("empty flag name");
  Message* holder = &root;
  for (size_t i = 0; i < parts.size(); ++i) {
    const auto* type = holder->GetDescriptor();
    const auto* field = find_field(type, parts[i]);
    if (field == nullptr) {
      std::vector<std::string> names;
      for (int j = 0; j < type->field_count(); ++j) names.push_back("--" + type->field(j)->name());
      return absl::InvalidArgumentError(str_cat("unknown flag --", flag, "; ", type->full_name(),
                                                " takes ",
                                                names.empty() ? "no fields" : join(names, " ")));
    }
    if (i + 1 == parts.size()) return std::make_pair(holder, field);
    if (field->cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE || field->is_repeated()) {
      return absl::InvalidArgumentError(
          str_cat("--", flag, ": ", parts[i], " is not a nested message"));
    }
    holder = holder->GetReflection()->MutableMessage(holder, field);
  }
  return absl::InternalError("unreachable");
}

std::vector<std::string> flag_names(const Descriptor* type) {
  std::vector<std::string> out;
  collect_flags(type, "", 0, out);
  return out;
}

absl::StatusOr<CallRequest> build_request(const Message& prototype,
                                          const std::vector<std::string>& positionals,
                                          const std::vector<std::string>& args,
                                          bool client_streaming) {
  CallRequest call;
  std::unique_ptr<Message> request(prototype.New());
  std::vector<std::string> json_inputs;
  size_t next_positional = 0;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg.size() > 2 && arg.compare(0, 2, "--") == 0) {
      std::string name = arg.substr(2);
      std::optional<std::string> value;
      if (auto equals = name.find('='); equals != std::string::npos) {
        value = name.substr(equals + 1);
        name = name.substr(0, equals);
      }
      const auto* field = find_flag_field(request->GetDescriptor(), name);
      auto take_value = [&]() -> absl::StatusOr<std::string> {
        if (value) return *value;
        if (i + 1 >= args.size())
          return absl::InvalidArgumentError(str_cat("--", name, " needs a value"));
        return args[++i];
      };
      if (field == nullptr && (name == "json" || name == "json-file" || name == "timeout")) {
        auto text = take_value();
        if (!text.ok()) return text.status();
        if (name == "json") {
          json_inputs.push_back(*text);
        } else if (name == "json-file") {
          std::ifstream in(*text);
          if (!in) return absl::NotFoundError(str_cat("--json-file: cannot read '", *text, "'"));
          std::string line;
          while (std::getline(in, line)) {
            if (!trim(line).empty()) json_inputs.push_back(line);
          }
        } else {
          auto duration = parse_duration(*text);
          if (!duration.ok())
            return absl::InvalidArgumentError(str_cat("--timeout: ", duration.status().message()));
          call.timeout = std::chrono::duration_cast<std::chrono::milliseconds>(*duration);
        }
        continue;
      }
      auto target = resolve_flag(*request, name);
      if (!target.ok()) return target.status();
      auto [holder, resolved] = *target;
      if (resolved->cpp_type() == google::protobuf::FieldDescriptor::CPPTYPE_BOOL &&
          !resolved->is_repeated() && !value) {
        // A bare boolean flag means true; "--flag false" is accepted too.
        bool next_is_bool = i + 1 < args.size() &&
                            (to_lower(args[i + 1]) == "true" || to_lower(args[i + 1]) == "false");
        value = next_is_bool ? args[++i] : "true";
      }
      auto text = take_value();
      if (!text.ok()) return text.status();
      auto status = set_field_from_text(*holder, resolved, *text);
      if (!status.ok()) return status;
      continue;
    }
    if (next_positional >= positionals.size()) {
      return absl::InvalidArgumentError(
          positionals.empty()
              ? str_cat("unexpected argument '", arg, "': this command takes only --flags")
              : str_cat("unexpected argument '", arg, "': this command takes ", positionals.size(),
                        " positional argument(s)"));
    }
    const std::string& field_name = positionals[next_positional];
    const auto* field = find_flag_field(request->GetDescriptor(), field_name);
    if (field == nullptr)
      return absl::InternalError(str_cat("cli option names unknown field '", field_name, "'"));
    auto target = resolve_flag(*request, field_name);
    if (!target.ok()) return target.status();
    auto status = set_field_from_text(*target->first, target->second, arg);
    if (!status.ok()) return status;
    // A repeated positional takes every remaining plain argument.
    if (!field->is_repeated()) ++next_positional;
  }

  if (client_streaming && !json_inputs.empty()) {
    for (const auto& json : json_inputs) {
      std::unique_ptr<Message> message(request->New());
      message->CopyFrom(*request);
      auto status = merge_json(json, *message);
      if (!status.ok()) return status;
      call.messages.push_back(std::move(message));
    }
    return call;
  }
  for (const auto& json : json_inputs) {
    auto status = merge_json(json, *request);
    if (!status.ok()) return status;
  }
  call.messages.push_back(std::move(request));
  return call;
}

}  // namespace telekern::shell
