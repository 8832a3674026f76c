// A program running in a real pseudo-terminal under a private tmux server:
// type keys, read the screen, wait for text with a bound.
#pragma once

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <map>
#include <string>

#include "tests/support/process.h"

namespace telekern::testing {

inline std::string shell_quote(const std::string& text) {
  std::string out = "'";
  for (char c : text) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

class TmuxSession {
 public:
  TmuxSession(const std::string& command, const std::map<std::string, std::string>& env) {
    static std::atomic<int> counter{0};
    socket_ = "telesh-test-" + std::to_string(getpid()) + "-" + std::to_string(counter++);
    std::string environment;
    for (const auto& [key, value] : env) environment += " " + key + "=" + shell_quote(value);
    // remain-on-exit keeps the pane readable after the program ends.
    started_ = tmux("-f /dev/null new-session -d -s main -x 160 -y 50 " +
                    shell_quote("exec env" + environment + " " + command))
                   .exit_code == 0;
    tmux("set-option -t main remain-on-exit on");
  }
  ~TmuxSession() { tmux("kill-server"); }
  TmuxSession(const TmuxSession&) = delete;
  TmuxSession& operator=(const TmuxSession&) = delete;

  bool started() const { return started_; }
  // Literal text, no key names.
  void type(const std::string& text) { tmux("send-keys -t main -l " + shell_quote(text)); }
  // Key names: Enter, Tab, Up, C-c, C-d, C-u.
  void key(const std::string& name) { tmux("send-keys -t main " + name); }
  std::string screen() { return tmux("capture-pane -p -t main").output; }
  bool dead() {
    return tmux("display-message -p -t main '#{pane_dead}'").output.rfind("1", 0) == 0;
  }
  bool wait_for(const std::string& text,
                std::chrono::milliseconds timeout = std::chrono::seconds(15)) {
    return telekern::testing::wait_for([&] { return screen().find(text) != std::string::npos; },
                                       timeout);
  }
  // The line holding the cursor's prompt (last non-empty screen line).
  std::string last_line() {
    std::string text = screen();
    std::string last;
    size_t start = 0;
    while (start < text.size()) {
      size_t end = text.find('\n', start);
      if (end == std::string::npos) end = text.size();
      std::string line = text.substr(start, end - start);
      while (!line.empty() && line.back() == ' ') line.pop_back();
      if (!line.empty()) last = line;
      start = end + 1;
    }
    return last;
  }

 private:
  CommandResult tmux(const std::string& arguments) {
    return run_command("tmux -L " + socket_ + " " + arguments, std::chrono::seconds(10));
  }
  std::string socket_;
  bool started_ = false;
};

}  // namespace telekern::testing
