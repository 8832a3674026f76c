#include "shell/secret_fields.h"

#include <algorithm>

#include "shell/request_builder.h"
#include "telekern/options/v1/options.pb.h"
#include "telekern/strings.h"

namespace telekern::shell {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;

constexpr int kMaxDepth = 4;

std::string dashed(std::string name) {
  std::replace(name.begin(), name.end(), '_', '-');
  return name;
}

bool is_set(const Message& message, const FieldDescriptor* field) {
  const auto* reflection = message.GetReflection();
  if (field->is_repeated()) return reflection->FieldSize(message, field) > 0;
  if (field->has_presence()) return reflection->HasField(message, field);
  switch (field->cpp_type()) {
    case FieldDescriptor::CPPTYPE_STRING:
      return !reflection->GetString(message, field).empty();
    default:
      return reflection->HasField(message, field);
  }
}

// The value of a dotted field path from the root as text: enum value names,
// strings, numbers; "" when a message on the way is not set.
std::string value_at(const Message& root, const std::string& path) {
  const Message* message = &root;
  auto parts = split(path, '.');
  for (size_t i = 0; i < parts.size(); ++i) {
    const auto* field = message->GetDescriptor()->FindFieldByName(parts[i]);
    if (field == nullptr || field->is_repeated()) return "";
    const auto* reflection = message->GetReflection();
    if (i + 1 < parts.size()) {
      if (field->cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE ||
          !reflection->HasField(*message, field))
        return "";
      message = &reflection->GetMessage(*message, field);
      continue;
    }
    switch (field->cpp_type()) {
      case FieldDescriptor::CPPTYPE_ENUM: {
        const auto* value = reflection->GetEnum(*message, field);
        return value->number() == 0 ? "" : value->name();
      }
      case FieldDescriptor::CPPTYPE_STRING:
        return reflection->GetString(*message, field);
      case FieldDescriptor::CPPTYPE_BOOL:
        return reflection->GetBool(*message, field) ? "true" : "";
      default:
        return "";
    }
  }
  return "";
}

// The flags of `args` ("--a.b=x", "--a.b x"), as the fields they name.
std::vector<const FieldDescriptor*> given_fields(const Descriptor* type,
                                                 const std::vector<std::string>& args) {
  std::vector<const FieldDescriptor*> fields;
  for (const auto& arg : args) {
    if (arg.size() < 3 || arg.rfind("--", 0) != 0) continue;
    std::string name =
        arg.substr(2, arg.find('=') == std::string::npos ? std::string::npos : arg.find('=') - 2);
    if (const auto* field = find_flag_field(type, name)) fields.push_back(field);
  }
  return fields;
}

void collect(const Message& root, Message& message, const std::string& prefix,
             const std::vector<const FieldDescriptor*>& given, int depth,
             std::vector<MissingSecret>& out) {
  const auto* type = message.GetDescriptor();
  for (int i = 0; i < type->field_count(); ++i) {
    const auto* field = type->field(i);
    std::string flag = prefix + dashed(field->name());
    if (field->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE && !field->is_repeated()) {
      if (depth < kMaxDepth && message.GetReflection()->HasField(message, field)) {
        collect(root, *message.GetReflection()->MutableMessage(&message, field), flag + ".", given,
                depth + 1, out);
      }
      continue;
    }
    if (!field->options().HasExtension(options::v1::field_cli)) continue;
    const auto& cli = field->options().GetExtension(options::v1::field_cli);
    if (!cli.prompt_secret() || field->cpp_type() != FieldDescriptor::CPPTYPE_STRING) continue;
    if (is_set(message, field)) continue;
    if (std::find(given.begin(), given.end(), field) != given.end()) continue;
    if (!cli.when_field().empty()) {
      std::string value = value_at(root, cli.when_field());
      bool applies = cli.when_values().empty()
                         ? !value.empty()
                         : std::find(cli.when_values().begin(), cli.when_values().end(), value) !=
                               cli.when_values().end();
      if (!applies) continue;
    }
    MissingSecret secret{.holder = &message,
                         .field = field,
                         .flag = flag,
                         .prompt = cli.prompt().empty() ? field->name() : cli.prompt(),
                         .env = cli.env()};
    bool alternative_given = false;
    for (const auto& name : cli.unless()) {
      const auto* sibling = type->FindFieldByName(name);
      if (sibling == nullptr) continue;
      alternative_given = alternative_given || is_set(message, sibling) ||
                          std::find(given.begin(), given.end(), sibling) != given.end();
      secret.instead.push_back(prefix + dashed(name));
    }
    if (!alternative_given) out.push_back(std::move(secret));
  }
}

}  // namespace

std::vector<MissingSecret> missing_secrets(Message& request, const std::vector<std::string>& args) {
  std::vector<MissingSecret> out;
  collect(request, request, "", given_fields(request.GetDescriptor(), args), 0, out);
  return out;
}

std::string missing_secret_message(const MissingSecret& secret) {
  std::string message =
      str_cat(secret.prompt, " needed and there is no terminal to ask on: pass --", secret.flag);
  if (!secret.env.empty()) str_append(message, ", set ", secret.env);
  if (!secret.instead.empty()) {
    std::vector<std::string> flags;
    for (const auto& flag : secret.instead) flags.push_back("--" + flag);
    str_append(message, ", or give ", join(flags, " or "), " instead");
  }
  str_append(message, " (--", secret.flag, " '' sends none)");
  return message;
}

}  // namespace telekern::shell
