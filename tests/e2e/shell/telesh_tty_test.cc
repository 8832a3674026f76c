// telesh interactively, through a real pseudo-terminal (tmux): completion of
// commands and live names, history across runs, Ctrl-C during a stream,
// login without echo, runtime-loaded modules.
#include <gtest/gtest.h>

#include "tests/e2e/shell/tmux_session.h"
#include "tests/support/auth_config.h"
#include "tests/support/telekernd.h"

namespace telekern::testing {
namespace {

std::string telesh() { return std::string(TELEKERN_BUILD_DIR) + "/bin/telesh"; }

class TeleshTtyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (find_executable("tmux").empty()) {
      if (running_in_ci()) FAIL() << "tmux is missing (install the tmux package)";
      GTEST_SKIP() << "tmux not installed";
    }
  }
  std::unique_ptr<TmuxSession> start(const Telekernd& daemon,
                                     std::map<std::string, std::string> env = {}) {
    env.emplace("HOME", home_.path().string());
    env.emplace("TERM", "xterm");
    auto session =
        std::make_unique<TmuxSession>(telesh() + " --addr " + daemon.grpc_address(), env);
    EXPECT_TRUE(session->started());
    EXPECT_TRUE(session->wait_for("telesh>")) << session->screen();
    return session;
  }
  TempDir home_{"telesh-home"};
};

TEST_F(TeleshTtyTest, CompletesCommandsAndLiveModuleNames) {
  Telekernd daemon({.load = {"echo", "ping"}});
  ASSERT_TRUE(daemon.ready()) << daemon.log();
  auto shell = start(daemon);
  shell->type("mod");
  shell->key("Tab");
  ASSERT_TRUE(shell->wait_for("telesh> modules")) << shell->screen();
  shell->type("unl");
  shell->key("Tab");
  ASSERT_TRUE(shell->wait_for("telesh> modules unload")) << shell->screen();
  // The module name comes from ListModules of the running daemon.
  shell->type("ec");
  shell->key("Tab");
  ASSERT_TRUE(shell->wait_for("telesh> modules unload echo")) << shell->screen();
  shell->key("C-u");
  // `config <module>`: a field named after the listed type completes its names.
  shell->type("config pi");
  shell->key("Tab");
  ASSERT_TRUE(shell->wait_for("telesh> config ping")) << shell->screen();
  shell->key("C-u");
  shell->type("echo count 5 --inter");
  shell->key("Tab");
  ASSERT_TRUE(shell->wait_for("telesh> echo count 5 --interval_ms")) << shell->screen();
  shell->key("C-u");
  shell->type("set output ya");
  shell->key("Tab");
  EXPECT_TRUE(shell->wait_for("telesh> set output yaml")) << shell->screen();
}

TEST_F(TeleshTtyTest, RuntimeLoadedModuleShowsUpInHelpAndCompletion) {
  Telekernd daemon({.load = {"echo"}});
  ASSERT_TRUE(daemon.ready()) << daemon.log();
  auto shell = start(daemon);
  shell->type("help");
  shell->key("Enter");
  ASSERT_TRUE(shell->wait_for("Built-in:")) << shell->screen();
  EXPECT_EQ(shell->screen().find("Round trip a no-op call"), std::string::npos);
  shell->key("C-l");
  shell->type("modules load ping");
  shell->key("Enter");
  ASSERT_TRUE(shell->wait_for("RUNNING")) << shell->screen();
  shell->type("help");
  shell->key("Enter");
  ASSERT_TRUE(shell->wait_for("Round trip a no-op call")) << shell->screen();
  shell->type("pin");
  shell->key("Tab");
  ASSERT_TRUE(shell->wait_for("telesh> ping")) << shell->screen();
  shell->key("Enter");
  EXPECT_TRUE(shell->wait_for("sequence: 0")) << shell->screen();
}

TEST_F(TeleshTtyTest, HistoryIsRecalledAcrossRuns) {
  Telekernd daemon({.load = {"echo"}});
  ASSERT_TRUE(daemon.ready()) << daemon.log();
  {
    auto first = start(daemon);
    first->type("echo say remembered-line");
    first->key("Enter");
    ASSERT_TRUE(first->wait_for("message:  remembered-line")) << first->screen();
    // Typed before the line editor has the terminal in raw mode again,
    // Ctrl-D is the cooked terminal's end-of-file mark, which the editor
    // later reads as a NUL rather than as Ctrl-D: wait for the prompt.
    ASSERT_TRUE(wait_for([&] { return first->last_line() == "telesh>"; }, std::chrono::seconds(10)))
        << first->screen();
    first->key("C-d");
    ASSERT_TRUE(wait_for([&] { return first->dead(); }, std::chrono::seconds(10)))
        << first->screen();
  }
  EXPECT_TRUE(std::filesystem::exists(home_.path() / ".telesh_history"));
  auto second = start(daemon);
  second->key("Up");
  ASSERT_TRUE(second->wait_for("telesh> echo say remembered-line")) << second->screen();
  second->key("C-u");
  second->type("history");
  second->key("Enter");
  EXPECT_TRUE(second->wait_for("1  echo say remembered-line")) << second->screen();
}

TEST_F(TeleshTtyTest, CtrlCCancelsALongStreamAndKeepsTheShell) {
  Telekernd daemon({.load = {"echo"}});
  ASSERT_TRUE(daemon.ready()) << daemon.log();
  auto shell = start(daemon);
  shell->type("echo count 100 --interval_ms 100");
  shell->key("Enter");
  // On a terminal, done/total draw a progress bar.
  ASSERT_TRUE(shell->wait_for("/100")) << shell->screen();
  // The bar redraws in place: wait until it shows 3 or more done (a slow
  // screen read may miss any one count).
  auto done_count = [&] {
    std::string screen = shell->screen();
    auto at = screen.rfind("/100");
    auto open = screen.rfind("] ", at);
    if (at == std::string::npos || open == std::string::npos) return -1;
    return std::atoi(screen.substr(open + 2, at - open - 2).c_str());
  };
  ASSERT_TRUE(wait_for([&] { return done_count() >= 3; }, std::chrono::seconds(10)))
      << shell->screen();
  shell->key("C-c");
  ASSERT_TRUE(shell->wait_for("cancelled (Ctrl-C)")) << shell->screen();
  EXPECT_EQ(shell->screen().find("100/100"), std::string::npos) << "the stream stopped early";
  ASSERT_TRUE(wait_for([&] { return shell->last_line() == "telesh>"; }, std::chrono::seconds(10)))
      << shell->screen();
  // Ctrl-C at the prompt drops the line being typed, the shell stays.
  shell->type("half typed");
  shell->key("C-c");
  shell->type("echo say still-alive");
  shell->key("Enter");
  EXPECT_TRUE(shell->wait_for("message:  still-alive")) << shell->screen();
  EXPECT_FALSE(shell->dead());
}

TEST_F(TeleshTtyTest, LoginPromptsWithoutEchoAndKeepsTheToken) {
  Telekernd daemon({.config_yaml = auth_config_yaml(), .load = {"echo"}});
  ASSERT_TRUE(daemon.ready()) << daemon.log();
  auto shell = start(daemon);
  shell->type("modules list");
  shell->key("Enter");
  ASSERT_TRUE(shell->wait_for("UNAUTHENTICATED")) << shell->screen();
  shell->type("login alice");
  shell->key("Enter");
  ASSERT_TRUE(shell->wait_for("Password:")) << shell->screen();
  shell->type("wonderland");
  shell->key("Enter");
  ASSERT_TRUE(shell->wait_for("logged in as admin")) << shell->screen();
  EXPECT_EQ(shell->screen().find("wonderland"), std::string::npos)
      << "the password must not echo:\n"
      << shell->screen();
  shell->type("modules load ping");
  shell->key("Enter");
  EXPECT_TRUE(shell->wait_for("RUNNING")) << shell->screen();
}

}  // namespace
}  // namespace telekern::testing
