// Interactive line editing over libedit: prompt, emacs keys, tab completion
// through a callback, and history persisted to a file after every line.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace telekern::shell {

class LineEditor {
 public:
  using Completer = std::function<std::vector<std::string>(const std::string& line_before_cursor)>;
  LineEditor(std::string history_file, Completer completer);
  ~LineEditor();
  LineEditor(const LineEditor&) = delete;
  LineEditor& operator=(const LineEditor&) = delete;

  // The next line; nullopt at end of input (Ctrl-D). Ctrl-C at the prompt
  // discards the line being typed and returns "".
  std::optional<std::string> read(const std::string& prompt);
  // Adds a line to the history and saves the history file.
  void remember(const std::string& line);
  std::vector<std::string> history() const;

  // Called from the SIGINT handler: the prompt drops the current line.
  static void interrupt_from_signal();

 private:
  std::string history_file_;
};

}  // namespace telekern::shell
