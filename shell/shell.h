// telesh's command interpreter: splits lines into commands, runs built-ins
// and the commands the daemon declares (via the catalog), prints results and
// maps failures to exit codes. The REPL and batch front ends sit on top.
#pragma once

#include <atomic>
#include <functional>
#include <iosfwd>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "shell/catalog.h"
#include "shell/output.h"
#include "telekern/client.h"

namespace telekern::shell {

// Exit codes: 0 ok, 1 telesh's own failure, 2 usage (unknown command, bad
// flag), 10 + the gRPC status code for a failed call (11 CANCELLED ...
// 14 DEADLINE_EXCEEDED, 17 ALREADY_EXISTS, 24 UNAVAILABLE, 26 UNAUTHENTICATED).
constexpr int kExitOk = 0;
constexpr int kExitInternal = 1;
constexpr int kExitUsage = 2;
constexpr int kExitRpcBase = 10;

// One command's words, or a parse error. `;` separates commands, `#` starts a
// comment, quotes and backslashes work as in sh.
struct ParsedLine {
  std::vector<std::vector<std::string>> commands;
  std::string error;
};
ParsedLine parse_line(const std::string& line);

struct ShellOptions {
  ClientOptions client;
  OutputFormat format = OutputFormat::kTable;
  Style style;  // stdout styling
  bool color_errors = false;
  bool keep_going = false;
  // A terminal to ask secrets on (stdin is one): request fields marked
  // prompt_secret are asked for when needed; otherwise they are an error.
  bool can_prompt = false;
  std::chrono::milliseconds unary_timeout{std::chrono::seconds(30)};
};

class Shell {
 public:
  Shell(ShellOptions options, std::ostream& out, std::ostream& err);

  // Connects (or reconnects) and loads the catalog; "" keeps the current target.
  absl::Status connect(const std::string& target = "");
  // Runs one line (possibly several commands); returns the first failure's
  // exit code (or the last one's with keep_going), 0 when all succeeded.
  int run_line(const std::string& line);
  int run_command(const std::vector<std::string>& words);
  // Runs a script line by line, stopping at the first failure unless keep_going.
  int run_script(std::istream& in);

  bool exit_requested() const { return exit_requested_; }
  // Set by the SIGINT handler; cancels the running call.
  std::atomic<bool>& interrupted() { return interrupted_; }
  // Candidates for the word being typed at the end of `line`.
  std::vector<std::string> complete(const std::string& line);

  // Hooks the front end provides.
  std::function<std::string(const std::string& prompt)> read_secret;
  std::function<std::vector<std::string>()> history;

  Catalog& catalog() { return catalog_; }
  Client& client() { return *client_; }
  const ShellOptions& options() const { return options_; }

 private:
  int fail(int code, const std::string& message);
  int fail_rpc(const grpc::Status& status, const std::string& what);
  int run_catalog_command(const Command& command, const std::vector<std::string>& args);
  int run_method(const google::protobuf::MethodDescriptor* method,
                 const std::vector<std::string>& positionals, const std::vector<std::string>& args,
                 const std::function<void(const google::protobuf::Message&)>& extra = nullptr);
  int builtin_help(const std::vector<std::string>& args);
  int builtin_login(const std::vector<std::string>& args);
  int builtin_health(const std::vector<std::string>& args);
  int builtin_services();
  int builtin_describe(const std::vector<std::string>& args);
  int builtin_call(const std::vector<std::string>& args);
  int builtin_set(const std::vector<std::string>& args);
  int builtin_history();
  std::string command_usage(const Command& command) const;
  // -o json: each record on a line of its own; -o yaml: one sequence.
  void print_records(const nlohmann::json& records);
  // -o json or yaml: one document.
  void print_document(const nlohmann::json& document);
  // "unknown command 'broker topik'; did you mean 'broker topic'?"
  std::string unknown_command_message(const std::vector<std::string>& words) const;
  // Why a module named `name` brings no commands (it failed, or is loading
  // or stopping), as more lines for the error; "" when that is not the case.
  std::string failed_module_hint(const std::string& name);
  std::vector<std::string> live_values(const google::protobuf::ServiceDescriptor* service,
                                       const std::string& field_name);
  absl::Status ensure_catalog();

  ShellOptions options_;
  std::ostream& out_;
  std::ostream& err_;
  std::unique_ptr<Client> client_;
  Catalog catalog_;
  std::atomic<bool> interrupted_{false};
  bool exit_requested_ = false;
  std::chrono::steady_clock::time_point last_refresh_{};
};

}  // namespace telekern::shell
