#include "shell/line_editor.h"

#include <editline/readline.h>
#include <errno.h>
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace telekern::shell {
namespace {

constexpr int kHistorySize = 1000;

LineEditor::Completer* g_completer = nullptr;
std::vector<std::string> g_matches;
volatile sig_atomic_t g_prompt_interrupted = 0;
int g_pending_keys = 0;  // Enter keys owed after a Ctrl-C killed the line

// Our own getc so a SIGINT at the prompt turns into "kill the line, Enter"
// rather than libedit retrying the read or ending input.
int getc_with_interrupt(FILE* stream) {
  if (g_pending_keys > 0) {
    --g_pending_keys;
    return '\n';
  }
  unsigned char c;
  while (true) {
    ssize_t count = ::read(fileno(stream), &c, 1);
    if (count == 1) return c;
    if (count == 0) return EOF;
    if (errno != EINTR) return EOF;
    if (g_prompt_interrupted) {
      g_prompt_interrupted = 0;
      g_pending_keys = 1;
      return 0x15;
    }
  }
}

char* next_match(const char*, int state) {
  static size_t index;
  if (state == 0) index = 0;
  if (index >= g_matches.size()) return nullptr;
  return strdup(g_matches[index++].c_str());
}

char** complete(const char* text, int start, int end) {
  rl_attempted_completion_over = 1;  // never fall back to file names
  if (g_completer == nullptr) return nullptr;
  std::string line(rl_line_buffer, static_cast<size_t>(end));
  (void)start;
  (void)text;
  g_matches = (*g_completer)(line);
  if (g_matches.empty()) return nullptr;
  return rl_completion_matches(text, next_match);
}

}  // namespace

LineEditor::LineEditor(std::string history_file, Completer completer)
    : history_file_(std::move(history_file)) {
  g_completer = new Completer(std::move(completer));
  rl_readline_name = "telesh";
  rl_catch_signals = 0;
  rl_getc_function = getc_with_interrupt;
  rl_basic_word_break_characters = " \t\n;";
  rl_attempted_completion_function = complete;
  using_history();
  stifle_history(kHistorySize);
  if (!history_file_.empty()) read_history(history_file_.c_str());
}

LineEditor::~LineEditor() {
  if (!history_file_.empty()) write_history(history_file_.c_str());
  delete g_completer;
  g_completer = nullptr;
}

void LineEditor::interrupt_from_signal() { g_prompt_interrupted = 1; }

std::optional<std::string> LineEditor::read(const std::string& prompt) {
  g_prompt_interrupted = 0;
  g_pending_keys = 0;
  char* line = readline(prompt.c_str());
  if (line == nullptr) return std::nullopt;
  std::string text(line);
  free(line);
  return text;
}

void LineEditor::remember(const std::string& line) {
  if (line.find_first_not_of(" \t") == std::string::npos) return;
  add_history(line.c_str());
  if (!history_file_.empty()) write_history(history_file_.c_str());
}

std::vector<std::string> LineEditor::history() const {
  std::vector<std::string> entries;
  for (int i = 0; i < history_length; ++i) {
    HIST_ENTRY* entry = history_get(history_base + i);
    if (entry != nullptr && entry->line != nullptr) entries.push_back(entry->line);
  }
  return entries;
}

}  // namespace telekern::shell
