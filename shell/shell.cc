#include "shell/shell.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/descriptor.pb.h>

#include <algorithm>
#include <cstdlib>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "grpc/health/v1/health.grpc.pb.h"
#include "shell/file_upload.h"
#include "shell/invoker.h"
#include "shell/request_builder.h"
#include "shell/secret_fields.h"
#include "shell/suggest.h"
#include "shell/values.h"
#include "telekern/kernel/v1/kernel.grpc.pb.h"
#include "telekern/options/v1/options.pb.h"
#include "telekern/status.h"
#include "telekern/strings.h"

namespace telekern::shell {
namespace {

using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::MethodDescriptor;

struct Builtin {
  const char* name;
  const char* usage;
  const char* help;
};

constexpr Builtin kBuiltins[] = {
    {"help", "help [COMMAND]", "List commands, or show one command's arguments and flags"},
    {"connect", "connect [HOST:PORT]", "Reconnect (to another daemon) and reload its commands"},
    {"login", "login USER",
     "Log in (password prompted without echo); the token is kept for the session"},
    {"services", "services", "List every gRPC service the daemon serves"},
    {"describe", "describe SERVICE[/METHOD]", "Show a service's or method's definition"},
    {"call", "call SERVICE/METHOD ['{json}']", "Call any method with a JSON request"},
    {"health", "health [SERVICE]", "Standard gRPC health of the daemon or one service"},
    {"set", "set output table|json|yaml", "Change the output format"},
    {"history", "history", "Show command history"},
    {"exit", "exit", "Leave telesh (Ctrl-D works too)"},
};

std::string type_label(const FieldDescriptor* field) {
  std::string label;
  switch (field->cpp_type()) {
    case FieldDescriptor::CPPTYPE_ENUM: {
      std::vector<std::string> names;
      for (int i = 0; i < field->enum_type()->value_count(); ++i) {
        if (field->enum_type()->value(i)->number() != 0) {
          names.push_back(to_lower(short_enum_name(field->enum_type()->value(i))));
        }
      }
      label = join(names, "|");
      break;
    }
    case FieldDescriptor::CPPTYPE_MESSAGE:
      if (is_duration(field->message_type())) {
        label = "duration (30s, 5m, 1h30m)";
      } else if (is_timestamp(field->message_type())) {
        label = "time (RFC 3339, now, -24h)";
      } else if (field->is_map()) {
        label = "key=value";
      } else {
        label = "JSON " + field->message_type()->name();
      }
      break;
    default:
      label = field->type_name();
  }
  if (field->is_repeated() && !field->is_map()) label += ", repeatable";
  return label;
}

std::string method_kind(const MethodDescriptor* method) {
  if (method->client_streaming() && method->server_streaming()) return "bidi streaming";
  if (method->client_streaming()) return "client streaming";
  if (method->server_streaming()) return "server streaming";
  return "unary";
}

// Words typed so far and the partial word at the cursor.
std::string indent_lines_for_help(const std::string& text) {
  std::string out;
  for (const auto& line : split(text, '\n')) out += "    " + line + "\n";
  return out;
}

std::pair<std::vector<std::string>, std::string> split_for_completion(const std::string& line) {
  auto parsed = parse_line(line + "\x01");  // a marker keeps a trailing empty word
  std::vector<std::string> words =
      parsed.commands.empty() ? std::vector<std::string>{} : parsed.commands.back();
  std::string current;
  if (!words.empty() && !words.back().empty() && words.back().back() == '\x01') {
    current = words.back().substr(0, words.back().size() - 1);
    words.pop_back();
  }
  return {words, current};
}

std::vector<std::string> with_prefix(const std::vector<std::string>& candidates,
                                     const std::string& prefix) {
  std::set<std::string> out;
  for (const auto& candidate : candidates) {
    if (candidate.compare(0, prefix.size(), prefix) == 0) out.insert(candidate);
  }
  return {out.begin(), out.end()};
}

}  // namespace

ParsedLine parse_line(const std::string& line) {
  ParsedLine parsed;
  std::vector<std::string> words;
  std::string word;
  bool in_word = false;
  auto end_word = [&] {
    if (in_word) words.push_back(word);
    word.clear();
    in_word = false;
  };
  auto end_command = [&] {
    end_word();
    if (!words.empty()) parsed.commands.push_back(std::move(words));
    words.clear();
  };
  for (size_t i = 0; i < line.size(); ++i) {
    char c = line[i];
    if (c == '\'') {
      size_t close = line.find('\'', i + 1);
      if (close == std::string::npos) {
        parsed.error = "unterminated single quote";
        return parsed;
      }
      word += line.substr(i + 1, close - i - 1);
      in_word = true;
      i = close;
    } else if (c == '"') {
      in_word = true;
      ++i;
      while (i < line.size() && line[i] != '"') {
        if (line[i] == '\\' && i + 1 < line.size() && (line[i + 1] == '"' || line[i + 1] == '\\'))
          ++i;
        word += line[i++];
      }
      if (i >= line.size()) {
        parsed.error = "unterminated double quote";
        return parsed;
      }
    } else if (c == '\\' && i + 1 < line.size()) {
      word += line[++i];
      in_word = true;
    } else if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
      end_word();
    } else if (c == ';') {
      end_command();
    } else if (c == '#' && !in_word) {
      break;
    } else {
      word += c;
      in_word = true;
    }
  }
  end_command();
  return parsed;
}

Shell::Shell(ShellOptions options, std::ostream& out, std::ostream& err)
    : options_(std::move(options)), out_(out), err_(err) {
  client_ = std::make_unique<Client>(options_.client);
}

absl::Status Shell::connect(const std::string& target) {
  std::string token = client_ ? client_->token() : options_.client.token;
  if (!target.empty()) options_.client.target = target;
  options_.client.token = token;
  client_ = std::make_unique<Client>(options_.client);
  return catalog_.load(client_->channel());
}

absl::Status Shell::ensure_catalog() {
  if (catalog_.loaded()) return absl::OkStatus();
  return catalog_.load(client_->channel());
}

int Shell::fail(int code, const std::string& message) {
  err_ << (options_.color_errors ? "\033[31merror:\033[0m " : "error: ") << message << "\n"
       << std::flush;
  return code;
}

int Shell::fail_rpc(const grpc::Status& status, const std::string& what) {
  std::string message = status.error_message();
  if (status.error_code() == grpc::StatusCode::UNAVAILABLE) {
    message += str_cat(" (is telekernd running at ", options_.client.target, "?)");
  }
  if (status.error_code() == grpc::StatusCode::UNAUTHENTICATED) {
    message += " (use `login USER`, --api-key or TELEKERN_API_KEY)";
  }
  return fail(kExitRpcBase + static_cast<int>(status.error_code()),
              str_cat(what, ": ", status_code_name(status.error_code()), ": ", message));
}

int Shell::run_line(const std::string& line) {
  auto parsed = parse_line(line);
  if (!parsed.error.empty()) return fail(kExitUsage, parsed.error);
  int result = kExitOk;
  for (const auto& words : parsed.commands) {
    if (interrupted_) return kExitRpcBase + static_cast<int>(grpc::StatusCode::CANCELLED);
    int code = run_command(words);
    if (code != kExitOk) {
      result = code;
      if (!options_.keep_going) return code;
    }
    if (exit_requested_) break;
  }
  return result;
}

int Shell::run_script(std::istream& in) {
  std::string line;
  int result = kExitOk;
  while (!exit_requested_ && std::getline(in, line)) {
    if (interrupted_) return kExitRpcBase + static_cast<int>(grpc::StatusCode::CANCELLED);
    int code = run_line(line);
    if (code != kExitOk) {
      result = code;
      if (!options_.keep_going) return code;
    }
  }
  return result;
}

int Shell::run_command(const std::vector<std::string>& words) {
  if (words.empty()) return kExitOk;
  const std::string& head = words[0];
  std::vector<std::string> args(words.begin() + 1, words.end());
  if (head == "exit" || head == "quit") {
    exit_requested_ = true;
    return kExitOk;
  }
  if (head == "help" || head == "?") return builtin_help(args);
  if (head == "set") return builtin_set(args);
  if (head == "history") return builtin_history();
  if (head == "connect") {
    auto status = connect(args.empty() ? "" : args[0]);
    if (!status.ok()) {
      return fail(kExitRpcBase + static_cast<int>(status.code()),
                  str_cat("connect ", options_.client.target, ": ", status.message()));
    }
    if (options_.format != OutputFormat::kTable) {
      print_document({{"connected", options_.client.target},
                      {"services", catalog_.services().size()},
                      {"commands", catalog_.commands().size()}});
      return kExitOk;
    }
    out_ << "connected to " << options_.client.target << " (" << catalog_.services().size()
         << " services, " << catalog_.commands().size() << " commands)\n";
    return kExitOk;
  }
  if (head == "health") return builtin_health(args);

  auto loaded = ensure_catalog();
  if (!loaded.ok()) {
    return fail(
        kExitRpcBase + static_cast<int>(loaded.code()),
        str_cat("cannot read the services of ", options_.client.target, ": ", loaded.message(),
                loaded.code() == absl::StatusCode::kUnavailable ? " (is telekernd running?)" : ""));
  }
  if (head == "services") return builtin_services();
  if (head == "describe") return builtin_describe(args);
  if (head == "call") return builtin_call(args);
  if (head == "login") return builtin_login(args);

  auto [command, consumed] = catalog_.match(words);
  if (command == nullptr) {
    // A module loaded since we last looked may bring the command.
    auto refreshed = catalog_.refresh(client_->channel());
    if (refreshed.ok() && *refreshed) std::tie(command, consumed) = catalog_.match(words);
  }
  if (command == nullptr) {
    // A group name alone ("modules") runs the group's list command.
    std::vector<std::string> with_list = words;
    with_list.push_back("list");
    auto [list, list_consumed] = catalog_.match(with_list);
    if (list != nullptr && list_consumed == with_list.size()) return run_catalog_command(*list, {});
    std::vector<std::string> group;
    for (const auto& candidate : catalog_.commands()) {
      if (candidate.path.size() > words.size() &&
          std::equal(words.begin(), words.end(), candidate.path.begin())) {
        group.push_back(candidate.name());
      }
    }
    if (!group.empty()) {
      return fail(kExitUsage,
                  str_cat("'", join(words, " "), "' needs a subcommand: ", join(group, ", ")));
    }
    return fail(kExitUsage, unknown_command_message(words) + failed_module_hint(words.front()));
  }
  return run_catalog_command(*command,
                             std::vector<std::string>(words.begin() + consumed, words.end()));
}

std::string Shell::unknown_command_message(const std::vector<std::string>& words) const {
  // The words that may follow words[0, depth) in some command's path.
  auto next_words = [&](size_t depth) {
    std::vector<std::string> next;
    for (const auto& command : catalog_.commands()) {
      if (command.path.size() > depth &&
          std::equal(words.begin(), words.begin() + static_cast<ptrdiff_t>(depth),
                     command.path.begin())) {
        next.push_back(command.path[depth]);
      }
    }
    return next;
  };
  // "broker topik list": "broker" names a group, "topik" is the misspelt word.
  size_t depth = 0;
  while (depth + 1 < words.size()) {
    auto next = next_words(depth);
    if (std::find(next.begin(), next.end(), words[depth]) == next.end()) break;
    ++depth;
  }
  auto candidates = next_words(depth);
  if (depth == 0) {
    for (const auto& builtin : kBuiltins) candidates.push_back(builtin.name);
  }
  std::vector<std::string> group(words.begin(), words.begin() + static_cast<ptrdiff_t>(depth));
  std::string prefix = join(group, " ");
  std::string message =
      str_cat("unknown command '", prefix, prefix.empty() ? "" : " ", words[depth], "'");
  if (std::string hint = nearest(words[depth], candidates); !hint.empty()) {
    str_append(message, "; did you mean '", prefix, prefix.empty() ? "" : " ", hint, "'?");
  }
  str_append(message, depth == 0 ? " (`help` lists the commands)"
                                 : str_cat(" (`help ", prefix, "` lists its commands)"));
  return message;
}

std::string Shell::failed_module_hint(const std::string& name) {
  // A module's commands come from its services: a module that failed to
  // start or is still on its way has none, and "unknown command" alone
  // would hide why.
  auto stub = client_->stub<kernel::v1::Kernel>();
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
  kernel::v1::ListModulesResponse modules;
  if (!stub->ListModules(&context, kernel::v1::ListModulesRequest(), &modules).ok()) return "";
  for (const auto& module : modules.modules()) {
    if (module.name() != name) continue;
    switch (module.state()) {
      case kernel::v1::MODULE_STATE_FAILED:
        return str_cat("\nmodule '", name, "' failed: ", module.error(),
                       "\nafter fixing its config, send telekernd SIGHUP (it loads failed modules "
                       "again), or run `modules load ",
                       name, "` once the cause is gone");
      case kernel::v1::MODULE_STATE_LOADING:
      case kernel::v1::MODULE_STATE_STOPPING:
        return str_cat("\nmodule '", name, "' is ",
                       module.state() == kernel::v1::MODULE_STATE_LOADING ? "loading" : "stopping",
                       "; `modules list` shows when it is running");
      default:
        return "";
    }
  }
  return "";
}

int Shell::run_catalog_command(const Command& command, const std::vector<std::string>& args) {
  if (command.path == std::vector<std::string>{"login"}) return builtin_login(args);
  return run_method(command.method, command.positionals, args);
}

int Shell::run_method(const MethodDescriptor* method, const std::vector<std::string>& positionals,
                      const std::vector<std::string>& args,
                      const std::function<void(const Message&)>& extra) {
  auto pinned = catalog_.pin();  // the refresh at the end may replace the catalog
  auto& factory = catalog_.factory();
  const Message* request_prototype = factory.GetPrototype(method->input_type());
  const Message* response_prototype = factory.GetPrototype(method->output_type());
  // `-o json` after a command sets the format for that command alone.
  OutputFormat format = options_.format;
  std::vector<std::string> request_args;
  bool has_output_field = method->input_type()->FindFieldByName("output") != nullptr;
  for (size_t i = 0; i < args.size(); ++i) {
    if ((args[i] == "-o" || (args[i] == "--output" && !has_output_field)) && i + 1 < args.size()) {
      if (!parse_output_format(args[i + 1], &format))
        return fail(kExitUsage, "-o: table, json or yaml");
      ++i;
      continue;
    }
    request_args.push_back(args[i]);
  }
  auto request =
      build_request(*request_prototype, positionals, request_args, method->client_streaming());
  if (!request.ok()) return fail(kExitUsage, std::string(request.status().message()));
  if (request->messages.size() == 1) {
    for (auto& secret : missing_secrets(*request->messages.front(), request_args)) {
      std::string value;
      if (const char* env = secret.env.empty() ? nullptr : std::getenv(secret.env.c_str());
          env != nullptr && *env != '\0') {
        value = env;
      } else if (options_.can_prompt && read_secret) {
        value = read_secret(secret.prompt + ": ");
      } else {
        const Command* command = catalog_.command_for(method);
        return fail(kExitUsage, str_cat(command ? command->name() : method->full_name(), ": ",
                                        missing_secret_message(secret)));
      }
      secret.holder->GetReflection()->SetString(secret.holder, secret.field, value);
    }
  }

  // A method declaring a cli upload streams a local file after the first message.
  std::unique_ptr<FileUpload> upload;
  if (method->client_streaming() && !request->messages.empty()) {
    auto prepared = FileUpload::prepare(*method, *request->messages.front());
    if (!prepared.ok()) return fail(kExitUsage, std::string(prepared.status().message()));
    upload = std::move(*prepared);
  }

  Invocation invocation;
  invocation.method = method;
  for (const auto& message : request->messages) invocation.requests.push_back(message.get());
  invocation.response_prototype = response_prototype;
  invocation.cancel = &interrupted_;
  if (upload) invocation.more_requests = [&upload](Message& next) { return upload->next(next); };
  bool streaming = method->server_streaming();
  // An upload takes as long as the file does: no deadline unless --timeout.
  invocation.timeout = request->timeout.value_or(streaming || upload ? std::chrono::milliseconds(0)
                                                                     : options_.unary_timeout);

  ResponsePrinter printer(out_, format, options_.style, streaming);
  // A method whose cli option names a raw_output field (CSV chunks, say)
  // writes that field's bytes as they are, unless -o json/yaml was asked.
  const auto& cli = method->options().GetExtension(telekern::options::v1::cli);
  const google::protobuf::FieldDescriptor* raw_field =
      cli.raw_output().empty() || format != OutputFormat::kTable
          ? nullptr
          : method->output_type()->FindFieldByName(cli.raw_output());
  auto status = invoke(client_->channel(), invocation, [&](const Message& response) {
    if (extra) extra(response);
    if (raw_field != nullptr) {
      out_ << response.GetReflection()->GetString(response, raw_field);
      out_.flush();
      return;
    }
    printer.print(response);
  });
  printer.finish();
  const Command* command = catalog_.command_for(method);
  std::string what = command ? command->name() : method->full_name();
  if (upload && !upload->error().empty()) return fail(kExitInternal, what + ": " + upload->error());
  if (!status.ok()) {
    if (status.error_code() == grpc::StatusCode::CANCELLED && interrupted_) {
      return fail(kExitRpcBase + static_cast<int>(grpc::StatusCode::CANCELLED),
                  what + ": cancelled (Ctrl-C)");
    }
    return fail_rpc(status, what);
  }
  // A call that changed the set of services (modules load/unload) brings or
  // takes commands: look again so help and completion follow at once.
  if (method->service()->full_name() == "telekern.kernel.v1.Kernel")
    (void)catalog_.refresh(client_->channel());
  return kExitOk;
}

int Shell::builtin_login(const std::vector<std::string>& args) {
  const Command* login = nullptr;
  for (const auto& command : catalog_.commands()) {
    if (command.path == std::vector<std::string>{"login"}) login = &command;
  }
  if (login == nullptr) return fail(kExitUsage, "this daemon declares no `login` command");
  std::vector<std::string> words = args;
  const auto* request_type = login->method->input_type();
  bool has_password = false;
  for (const auto& arg : args) has_password = has_password || arg.rfind("--password", 0) == 0;
  if (request_type->FindFieldByName("password") != nullptr && !has_password) {
    std::string password;
    if (const char* env = std::getenv("TELEKERN_PASSWORD"); env != nullptr && *env != '\0') {
      password = env;
    } else if (read_secret) {
      password = read_secret("Password: ");
    } else {
      return fail(kExitUsage, "login: no terminal to read the password from; pass --password");
    }
    words.push_back("--password=" + password);
  }
  std::string token;
  // In table mode the token (a secret) is kept, not printed.
  bool quiet = options_.format == OutputFormat::kTable;
  auto capture = [&](const Message& response) {
    const auto* field = response.GetDescriptor()->FindFieldByName("token");
    if (field != nullptr && field->cpp_type() == FieldDescriptor::CPPTYPE_STRING) {
      token = response.GetReflection()->GetString(response, field);
    }
  };
  int code;
  if (quiet) {
    auto& factory = catalog_.factory();
    auto request =
        build_request(*factory.GetPrototype(request_type), login->positionals, words, false);
    if (!request.ok()) return fail(kExitUsage, std::string(request.status().message()));
    Invocation invocation;
    invocation.method = login->method;
    invocation.requests.push_back(request->messages.front().get());
    invocation.response_prototype = factory.GetPrototype(login->method->output_type());
    invocation.cancel = &interrupted_;
    invocation.timeout = options_.unary_timeout;
    std::string summary;
    auto status = invoke(client_->channel(), invocation, [&](const Message& response) {
      capture(response);
      const auto* role = response.GetDescriptor()->FindFieldByName("role");
      const auto* expires = response.GetDescriptor()->FindFieldByName("expires_at");
      if (role) summary += " as " + to_lower(format_field(response, role));
      if (expires) summary += ", token valid until " + format_field(response, expires);
    });
    if (!status.ok()) return fail_rpc(status, "login");
    out_ << "logged in" << summary << "\n";
    code = kExitOk;
  } else {
    code = run_method(login->method, login->positionals, words, capture);
  }
  if (code == kExitOk && !token.empty()) client_->set_token(token);
  return code;
}

int Shell::builtin_health(const std::vector<std::string>& args) {
  auto health = client_->stub<grpc::health::v1::Health>();
  std::vector<std::string> services;
  if (!args.empty()) {
    services = args;
  } else {
    services.push_back("");
    if (ensure_catalog().ok()) {
      for (const auto& name : catalog_.services()) {
        if (name.rfind("grpc.", 0) != 0) services.push_back(name);
      }
    }
  }
  std::vector<std::vector<std::string>> rows;
  int result = kExitOk;
  for (const auto& service : services) {
    grpc::health::v1::HealthCheckRequest request;
    request.set_service(service);
    grpc::health::v1::HealthCheckResponse response;
    auto context = client_->context(std::chrono::seconds(10));
    auto status = health->Check(context.get(), request, &response);
    if (!status.ok() && status.error_code() != grpc::StatusCode::NOT_FOUND) {
      return fail_rpc(status, "health");
    }
    std::string state =
        status.ok() ? grpc::health::v1::HealthCheckResponse::ServingStatus_Name(response.status())
                    : "UNKNOWN_SERVICE";
    if (state != "SERVING") result = kExitRpcBase + static_cast<int>(grpc::StatusCode::UNAVAILABLE);
    rows.push_back({service.empty() ? "(overall)" : service, state});
  }
  if (options_.format == OutputFormat::kTable) {
    out_ << render_table({"service", "status"}, rows, options_.style);
  } else {
    nlohmann::json records = nlohmann::json::array();
    for (const auto& row : rows) {
      records.push_back({{"service", row[0] == "(overall)" ? "" : row[0]}, {"status", row[1]}});
    }
    print_records(records);
  }
  return result;
}

int Shell::builtin_services() {
  std::vector<std::vector<std::string>> rows;
  for (const auto& name : catalog_.services()) {
    const auto* service = catalog_.find_service(name);
    int commands = 0;
    for (const auto& command : catalog_.commands()) {
      if (command.method->service() == service) ++commands;
    }
    rows.push_back(
        {name, service ? std::to_string(service->method_count()) : "?", std::to_string(commands)});
  }
  std::sort(rows.begin(), rows.end());
  if (options_.format == OutputFormat::kTable) {
    out_ << render_table({"service", "methods", "commands"}, rows, options_.style);
  } else {
    nlohmann::json records = nlohmann::json::array();
    for (const auto& row : rows) {
      records.push_back(
          {{"service", row[0]},
           {"methods", row[1] == "?" ? nlohmann::json() : nlohmann::json(std::stoi(row[1]))},
           {"commands", std::stoi(row[2])}});
    }
    print_records(records);
  }
  return kExitOk;
}

int Shell::builtin_describe(const std::vector<std::string>& args) {
  if (args.empty()) return fail(kExitUsage, "usage: describe SERVICE[/METHOD] (see `services`)");
  const std::string& name = args[0];
  bool structured = options_.format != OutputFormat::kTable;
  // -o json|yaml: the descriptor protos (google.protobuf.*DescriptorProto) as documents.
  auto document = [](const google::protobuf::Message& proto) {
    return nlohmann::json::parse(to_json(proto, false), nullptr, false);
  };
  if (const auto* method = catalog_.find_method(name)) {
    const Command* command = catalog_.command_for(method);
    if (structured) {
      google::protobuf::MethodDescriptorProto method_proto;
      method->CopyTo(&method_proto);
      google::protobuf::DescriptorProto input, output;
      method->input_type()->CopyTo(&input);
      method->output_type()->CopyTo(&output);
      print_document({{"service", method->service()->full_name()},
                      {"method", document(method_proto)},
                      {"command", command ? command->name() : ""},
                      {"input_type", document(input)},
                      {"output_type", document(output)}});
      return kExitOk;
    }
    out_ << "rpc " << method->name() << "(" << (method->client_streaming() ? "stream " : "")
         << method->input_type()->full_name() << ") returns ("
         << (method->server_streaming() ? "stream " : "") << method->output_type()->full_name()
         << ")\n";
    if (command) out_ << "command: " << command->name() << "\n";
    out_ << "\n"
         << method->input_type()->DebugString() << "\n"
         << method->output_type()->DebugString();
    return kExitOk;
  }
  if (const auto* service = catalog_.find_service(name)) {
    if (structured) {
      google::protobuf::ServiceDescriptorProto proto;
      service->CopyTo(&proto);
      print_document({{"service", service->full_name()}, {"definition", document(proto)}});
      return kExitOk;
    }
    out_ << service->DebugString();
    return kExitOk;
  }
  if (const auto* type = catalog_.pool()->FindMessageTypeByName(name)) {
    if (structured) {
      google::protobuf::DescriptorProto proto;
      type->CopyTo(&proto);
      print_document({{"message", type->full_name()}, {"definition", document(proto)}});
      return kExitOk;
    }
    out_ << type->DebugString();
    return kExitOk;
  }
  return fail(kExitUsage,
              str_cat("no service, method or message '", name, "'; `services` lists them"));
}

void Shell::print_document(const nlohmann::json& document) {
  if (options_.format == OutputFormat::kYaml) {
    out_ << json_to_yaml(document.dump()) << "\n";
  } else {
    out_ << document.dump(options_.style.tty ? 2 : -1) << "\n";
  }
}

void Shell::print_records(const nlohmann::json& records) {
  if (options_.format == OutputFormat::kYaml) {
    // One YAML document: a sequence of the records.
    out_ << json_to_yaml(records.dump()) << "\n";
    return;
  }
  for (const auto& record : records) out_ << record.dump() << "\n";  // one per line, for jq
}

int Shell::builtin_call(const std::vector<std::string>& args) {
  if (args.empty())
    return fail(kExitUsage, "usage: call SERVICE/METHOD ['{json}'] [--flag value ...]");
  const auto* method = catalog_.find_method(args[0]);
  if (method == nullptr) {
    auto refreshed = catalog_.refresh(client_->channel());
    if (refreshed.ok() && *refreshed) method = catalog_.find_method(args[0]);
  }
  if (method == nullptr)
    return fail(kExitUsage, str_cat("no method '", args[0], "'; `services` lists services"));
  std::vector<std::string> rest;
  for (size_t i = 1; i < args.size(); ++i) {
    // A bare JSON object is the request (or one more message of a client stream).
    if (!args[i].empty() && args[i][0] == '{') {
      rest.push_back("--json");
    }
    rest.push_back(args[i]);
  }
  return run_method(method, {}, rest);
}

int Shell::builtin_set(const std::vector<std::string>& args) {
  if (args.size() == 2 && args[0] == "output") {
    if (!parse_output_format(args[1], &options_.format)) {
      return fail(kExitUsage, "set output: table, json or yaml");
    }
    return kExitOk;
  }
  if (args.size() == 2 && args[0] == "color") {
    options_.style.color = args[1] == "on" || args[1] == "true";
    return kExitOk;
  }
  if (args.size() == 2 && args[0] == "timeout") {
    auto duration = parse_duration(args[1]);
    if (!duration.ok()) return fail(kExitUsage, std::string(duration.status().message()));
    options_.unary_timeout = std::chrono::duration_cast<std::chrono::milliseconds>(*duration);
    return kExitOk;
  }
  return fail(kExitUsage,
              "usage: set output table|json|yaml | set color on|off | set timeout DURATION");
}

int Shell::builtin_history() {
  if (!history) return kExitOk;
  auto entries = history();
  for (size_t i = 0; i < entries.size(); ++i) out_ << (i + 1) << "  " << entries[i] << "\n";
  return kExitOk;
}

std::string Shell::command_usage(const Command& command) const {
  std::string usage = command.name();
  const auto* type = command.method->input_type();
  for (const auto& positional : command.positionals) {
    const auto* field = find_flag_field(type, positional);
    usage += field && field->is_repeated() ? str_cat(" <", positional, ">...")
                                           : str_cat(" <", positional, ">");
  }
  return usage;
}

int Shell::builtin_help(const std::vector<std::string>& args) {
  if (ensure_catalog().ok()) (void)catalog_.refresh(client_->channel());
  const auto& style = options_.style;
  if (args.empty()) {
    std::vector<std::vector<std::string>> rows;
    for (const auto& command : catalog_.commands())
      rows.push_back({command_usage(command), command.help});
    out_ << style.bold("Commands of the connected daemon:") << "\n";
    std::string table = render_table({"command", "help"}, rows, Style{});
    // Skip the header line: two columns read fine without it.
    out_ << table.substr(table.find('\n') + 1);
    out_ << "\n" << style.bold("Built-in:") << "\n";
    rows.clear();
    for (const auto& builtin : kBuiltins) rows.push_back({builtin.usage, builtin.help});
    table = render_table({"command", "help"}, rows, Style{});
    out_ << table.substr(table.find('\n') + 1);
    out_ << "\nEvery request field is a --flag (nested --a.b, repeated flags repeat); `help "
            "COMMAND` lists them.\n";
    return kExitOk;
  }
  for (const auto& builtin : kBuiltins) {
    if (args.size() == 1 && args[0] == builtin.name && args[0] != "login") {
      out_ << builtin.usage << "\n  " << builtin.help << "\n";
      return kExitOk;
    }
  }
  auto [command, consumed] = catalog_.match(args);
  if (command == nullptr) {
    if (const auto* method = catalog_.find_method(args[0])) command = catalog_.command_for(method);
  }
  if (command == nullptr) {
    std::vector<std::vector<std::string>> rows;
    for (const auto& candidate : catalog_.commands()) {
      if (candidate.path.size() >= args.size() &&
          std::equal(args.begin(), args.end(), candidate.path.begin())) {
        rows.push_back({command_usage(candidate), candidate.help});
      }
    }
    if (rows.empty())
      return fail(kExitUsage, str_cat("no command '", join(args, " "), "'; `help` lists them"));
    std::string table = render_table({"command", "help"}, rows, Style{});
    out_ << table.substr(table.find('\n') + 1);
    return kExitOk;
  }
  const auto* method = command->method;
  out_ << style.bold(command_usage(*command) + " [flags]") << "\n  " << command->help << "\n";
  auto role = method->options().GetExtension(telekern::options::v1::min_role);
  out_ << "  rpc " << method->service()->full_name() << "/" << method->name() << " ("
       << method_kind(method) << "), role: "
       << to_lower(
              short_enum_name(telekern::options::v1::Role_descriptor()->FindValueByNumber(role)))
       << "\n";
  const auto* type = method->input_type();
  std::vector<std::vector<std::string>> rows;
  for (int i = 0; i < type->field_count(); ++i) {
    const auto* field = type->field(i);
    bool positional = std::find(command->positionals.begin(), command->positionals.end(),
                                field->name()) != command->positionals.end();
    rows.push_back(
        {positional ? str_cat("<", field->name(), "> | --", field->name()) : "--" + field->name(),
         type_label(field)});
  }
  rows.push_back({"--json JSON", "request as JSON (merged with flags; repeat for client streams)"});
  rows.push_back({"--json-file FILE", "one JSON request per line"});
  rows.push_back({"--timeout DURATION", "deadline (unary calls default to 30s)"});
  std::string table = render_table({"flag", "type"}, rows, Style{});
  out_ << indent_lines_for_help(table);
  return kExitOk;
}

std::vector<std::string> Shell::live_values(const google::protobuf::ServiceDescriptor* service,
                                            const std::string& field_name) {
  // The first List* method of the same service whose response lists messages
  // carrying a string field of that name (or messages of a type of that
  // name, then their `name`): ListModules gives module names.
  for (int i = 0; i < service->method_count(); ++i) {
    const auto* method = service->method(i);
    if (method->name().rfind("List", 0) != 0 || method->client_streaming() ||
        method->server_streaming())
      continue;
    const auto* output = method->output_type();
    for (int j = 0; j < output->field_count(); ++j) {
      const auto* list = output->field(j);
      if (!list->is_repeated() || list->is_map() ||
          list->cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE)
        continue;
      const auto* name_field = list->message_type()->FindFieldByName(field_name);
      // A field named after the listed type ("module" for repeated Module) takes its names.
      if (name_field == nullptr && to_lower(list->message_type()->name()) == to_lower(field_name)) {
        name_field = list->message_type()->FindFieldByName("name");
      }
      if (name_field == nullptr || name_field->cpp_type() != FieldDescriptor::CPPTYPE_STRING ||
          name_field->is_repeated()) {
        continue;
      }
      auto& factory = catalog_.factory();
      std::unique_ptr<Message> request(factory.GetPrototype(method->input_type())->New());
      Invocation invocation;
      invocation.method = method;
      invocation.requests.push_back(request.get());
      invocation.response_prototype = factory.GetPrototype(output);
      invocation.timeout = std::chrono::seconds(2);
      std::vector<std::string> values;
      auto status = invoke(client_->channel(), invocation, [&](const Message& response) {
        const auto* reflection = response.GetReflection();
        for (int k = 0; k < reflection->FieldSize(response, list); ++k) {
          const Message& item = reflection->GetRepeatedMessage(response, list, k);
          values.push_back(item.GetReflection()->GetString(item, name_field));
        }
      });
      if (status.ok()) return values;
      return {};
    }
  }
  return {};
}

std::vector<std::string> Shell::complete(const std::string& line) {
  auto [words, current] = split_for_completion(line);
  if (!catalog_.loaded() && !ensure_catalog().ok()) return {};
  auto now = std::chrono::steady_clock::now();
  if (words.empty() && now - last_refresh_ > std::chrono::milliseconds(500)) {
    // Completing a command: pick up modules loaded meanwhile (one round trip).
    (void)catalog_.refresh(client_->channel());
    last_refresh_ = now;
  }
  std::vector<std::string> candidates;
  // Built-ins that take names.
  if (!words.empty() && words.size() == 1 && (words[0] == "describe" || words[0] == "call")) {
    for (const auto& name : catalog_.services()) {
      candidates.push_back(name);
      if (const auto* service = catalog_.find_service(name)) {
        for (int i = 0; i < service->method_count(); ++i)
          candidates.push_back(name + "/" + service->method(i)->name());
      }
    }
    return with_prefix(candidates, current);
  }
  if (words.size() == 1 && words[0] == "set")
    return with_prefix({"output", "color", "timeout"}, current);
  if (words.size() == 2 && words[0] == "set" && words[1] == "output") {
    return with_prefix({"table", "json", "yaml"}, current);
  }
  if (words.size() == 2 && words[0] == "set" && words[1] == "color")
    return with_prefix({"on", "off"}, current);
  std::vector<std::string> path = words;
  if (!words.empty() && words[0] == "help") path.erase(path.begin());

  auto [command, consumed] = catalog_.match(path);
  if (command == nullptr || (!words.empty() && words[0] == "help")) {
    // Still typing a command path: offer the next word.
    for (const auto& candidate : catalog_.commands()) {
      if (candidate.path.size() > path.size() &&
          std::equal(path.begin(), path.end(), candidate.path.begin())) {
        candidates.push_back(candidate.path[path.size()]);
      }
    }
    if (path.empty()) {
      for (const auto& builtin : kBuiltins) candidates.push_back(builtin.name);
    }
    return with_prefix(candidates, current);
  }
  // Arguments of a command: flags, enum values, live names.
  const auto* type = command->method->input_type();
  if (current.rfind("--", 0) == 0) {
    for (const auto& flag : flag_names(type)) candidates.push_back("--" + flag);
    for (const auto& flag : kCallFlags) candidates.push_back("--" + flag);
    return with_prefix(candidates, current);
  }
  const FieldDescriptor* field = nullptr;
  std::string field_name;
  size_t positional_index = 0;
  for (size_t i = consumed; i < path.size(); ++i) {
    if (path[i].rfind("--", 0) == 0) {
      const auto* flag = find_flag_field(type, path[i].substr(2));
      bool takes_value = path[i].find('=') == std::string::npos &&
                         !(flag && flag->cpp_type() == FieldDescriptor::CPPTYPE_BOOL);
      if (takes_value && i + 1 == path.size()) {
        field = flag;
        field_name = path[i].substr(2);
      }
      if (takes_value) ++i;
      if (i >= path.size()) break;
      continue;
    }
    ++positional_index;
  }
  if (field == nullptr && field_name.empty() && positional_index < command->positionals.size()) {
    field_name = command->positionals[positional_index];
    field = find_flag_field(type, field_name);
  }
  if (field == nullptr) return {};
  if (field->cpp_type() == FieldDescriptor::CPPTYPE_ENUM) {
    for (int i = 0; i < field->enum_type()->value_count(); ++i) {
      if (field->enum_type()->value(i)->number() != 0) {
        candidates.push_back(to_lower(short_enum_name(field->enum_type()->value(i))));
      }
    }
    return with_prefix(candidates, current);
  }
  if (field->cpp_type() == FieldDescriptor::CPPTYPE_BOOL)
    return with_prefix({"true", "false"}, current);
  if (field->cpp_type() == FieldDescriptor::CPPTYPE_STRING) {
    return with_prefix(live_values(command->method->service(), field->name()), current);
  }
  return {};
}

}  // namespace telekern::shell
