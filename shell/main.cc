// telesh: the interactive and batch shell of telekernd. Every command comes
// from the daemon's own service descriptors (server reflection).
#include <fcntl.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <fstream>
#include <iostream>

#include "shell/line_editor.h"
#include "shell/shell.h"
#include "shell/suggest.h"
#include "telekern/strings.h"

namespace {

using namespace telekern;
using namespace telekern::shell;

std::atomic<bool>* g_interrupted = nullptr;
bool g_interactive = false;

void on_sigint(int) {
  if (g_interrupted != nullptr) g_interrupted->store(true);
  if (g_interactive) LineEditor::interrupt_from_signal();
}

void install_sigint_handler() {
  struct sigaction action {};
  action.sa_handler = on_sigint;
  sigemptyset(&action.sa_mask);
  action.sa_flags = 0;  // no SA_RESTART: a blocked read returns EINTR
  sigaction(SIGINT, &action, nullptr);
}

// Reads a secret from the terminal without echo.
std::string read_secret_from_tty(const std::string& prompt) {
  int fd = ::open("/dev/tty", O_RDWR | O_NOCTTY);
  if (fd < 0) return "";
  (void)::write(fd, prompt.data(), prompt.size());
  termios saved{};
  bool is_tty = tcgetattr(fd, &saved) == 0;
  if (is_tty) {
    termios quiet = saved;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    quiet.c_lflag |= ICANON;
    tcsetattr(fd, TCSAFLUSH, &quiet);
  }
  std::string secret;
  char c;
  while (::read(fd, &c, 1) == 1 && c != '\n' && c != '\r') secret += c;
  if (is_tty) tcsetattr(fd, TCSAFLUSH, &saved);
  (void)::write(fd, "\n", 1);
  ::close(fd);
  return secret;
}

std::string history_file() {
  if (const char* path = std::getenv("TELESH_HISTORY")) return path;
  const char* home = std::getenv("HOME");
  return home != nullptr ? std::string(home) + "/.telesh_history" : "";
}

// What CLI11 left unparsed (prefix_command): a command and its arguments, or
// a flag telesh does not know. Returns the usage error, or "" when fine.
std::string check_leftover_arguments(const CLI::App& app, bool commands_given) {
  auto remaining = app.remaining();
  if (remaining.empty()) return "";
  const std::string& first = remaining.front();
  if (first.size() > 1 && first[0] == '-') {
    std::string flag = first.substr(0, first.find('='));
    std::vector<std::string> known;
    for (const auto* option : app.get_options()) {
      for (const auto& name : option->get_lnames()) known.push_back("--" + name);
      for (const auto& name : option->get_snames()) known.push_back("-" + name);
    }
    std::string hint = nearest(flag, known);
    return str_cat("unknown flag '", flag, "'",
                   hint.empty() ? "" : str_cat("; did you mean '", hint, "'?"),
                   " (`telesh --help` lists the flags)");
  }
  if (commands_given) {
    return str_cat("unexpected argument '", first,
                   "': with -c or -f the commands come from there, not from the command line");
  }
  return "";
}

int run_interactive(Shell& shell) {
  g_interactive = true;
  LineEditor editor(history_file(), [&](const std::string& line) { return shell.complete(line); });
  shell.history = [&] { return editor.history(); };
  auto status = shell.connect();
  if (status.ok()) {
    std::cout << "telesh: connected to " << shell.options().client.target << ", "
              << shell.catalog().commands().size()
              << " commands; `help` lists them, Ctrl-D exits\n";
  } else {
    std::cerr << "telesh: cannot reach " << shell.options().client.target << ": "
              << status.message() << " (commands retry; `connect HOST:PORT` switches)\n";
  }
  while (!shell.exit_requested()) {
    shell.interrupted() = false;
    auto line = editor.read("telesh> ");
    if (!line) {
      std::cout << "\n";
      break;
    }
    if (trim(*line).empty()) continue;
    editor.remember(*line);
    shell.run_line(*line);
  }
  return kExitOk;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"telesh: shell for telekernd; commands come from the daemon's services"};
  ShellOptions options;
  options.client = ClientOptions::from_environment();
  options.client.max_attempts = 1;  // a shell reports UNAVAILABLE at once
  std::string output = "table";
  std::string commands;
  std::string script;
  bool wait = false;
  bool no_color = false;
  app.add_option("--addr", options.client.target, "telekernd address HOST:PORT ($TELEKERN_ADDR)");
  app.add_option("--api-key", options.client.api_key, "API key ($TELEKERN_API_KEY)");
  app.add_option("--token", options.client.token, "JWT from login ($TELEKERN_TOKEN)");
  app.add_flag("--tls", options.client.tls, "Use TLS");
  app.add_option("--ca", options.client.ca_file, "CA bundle to verify the server (with --tls)");
  app.add_option("--cert", options.client.cert_file, "Client certificate (with --tls)");
  app.add_option("--key", options.client.key_file, "Client private key (with --tls)");
  app.add_option("-o,--output", output, "table, json or yaml")
      ->check(CLI::IsMember({"table", "json", "yaml"}));
  app.add_option("-c", commands, "Run commands (separated by ;) and exit");
  app.add_option("-f", script, "Run a script file and exit");
  app.add_flag("--keep-going", options.keep_going, "Do not stop at the first failing command");
  app.add_flag("--wait", wait, "Wait up to 30 s for the daemon to answer first");
  app.add_flag("--no-color", no_color, "No ANSI colors (also NO_COLOR)");
  app.prefix_command();  // `telesh modules list` runs one command
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    // --help prints and exits 0; every other parse error is a usage error (2).
    if (error.get_exit_code() == 0) return app.exit(error);
    std::cerr << "error: " << error.what() << " (`telesh --help` lists the flags)\n";
    return kExitUsage;
  }
  if (auto usage = check_leftover_arguments(app, !commands.empty() || !script.empty());
      !usage.empty()) {
    std::cerr << "error: " << usage << "\n";
    return kExitUsage;
  }

  parse_output_format(output, &options.format);
  bool color_allowed = !no_color && std::getenv("NO_COLOR") == nullptr;
  options.style.tty = isatty(STDOUT_FILENO);
  if (winsize size{}; options.style.tty && ioctl(STDOUT_FILENO, TIOCGWINSZ, &size) == 0)
    options.style.columns = size.ws_col;
  options.style.color = color_allowed && options.style.tty;
  options.color_errors = color_allowed && isatty(STDERR_FILENO);
  options.can_prompt = isatty(STDIN_FILENO);

  Shell shell(options, std::cout, std::cerr);
  shell.read_secret = read_secret_from_tty;
  g_interrupted = &shell.interrupted();
  install_sigint_handler();

  if (wait) {
    auto ready = shell.client().wait_until_ready(std::chrono::seconds(30));
    if (!ready.ok()) {
      std::cerr << "error: " << ready.message() << "\n";
      return kExitRpcBase + static_cast<int>(grpc::StatusCode::UNAVAILABLE);
    }
  }
  if (!commands.empty()) return shell.run_line(commands);
  if (!script.empty()) {
    std::ifstream in(script);
    if (!in) {
      std::cerr << "error: cannot read script '" << script << "'\n";
      return kExitUsage;
    }
    return shell.run_script(in);
  }
  auto remaining = app.remaining();
  if (!remaining.empty()) return shell.run_command(remaining);
  if (!isatty(STDIN_FILENO)) return shell.run_script(std::cin);
  return run_interactive(shell);
}
