// telesh's trace command in a real pseudo-terminal (tmux): a live bar per
// topic while a trace runs, and the SSH password asked for without echo.
#include <gtest/gtest.h>

#include <fstream>

#include "tests/e2e/shell/tmux_session.h"
#include "tests/support/telekernd.h"

namespace telekern::testing {
namespace {

class TracerTtyTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    daemon_ = new Telekernd(
        {.modules_dir = std::string(TELEKERN_BUILD_DIR) + "/modules", .load = {"tracer"}});
  }
  static void TearDownTestSuite() { delete daemon_; }
  void SetUp() override {
    ASSERT_FALSE(find_executable("tmux").empty()) << "tmux is missing (install the tmux package)";
    ASSERT_TRUE(daemon_->ready()) << daemon_->log();
  }
  // `telesh -c COMMAND` in a terminal.
  std::unique_ptr<TmuxSession> telesh(const std::string& command) {
    auto session = std::make_unique<TmuxSession>(
        std::string(TELEKERN_BUILD_DIR) + "/bin/telesh --addr " + daemon_->grpc_address() + " -c " +
            shell_quote(command),
        std::map<std::string, std::string>{{"HOME", home_.path().string()}, {"TERM", "xterm"}});
    EXPECT_TRUE(session->started());
    return session;
  }
  static Telekernd* daemon_;
  TempDir home_{"tracer-tty-home"};
};

Telekernd* TracerTtyTest::daemon_ = nullptr;

// Two topics through the exec source whose consume command waits for a file:
// while they run the screen holds one bar per topic and the total; once the
// file exists both finish and the summary replaces the bars.
TEST_F(TracerTtyTest, DrawsABarPerTopicWhileTheTraceRuns) {
  TempDir dir("tracer-tty");
  std::string gate = (dir.path() / "go").string();
  std::string consume = "while [ ! -e " + gate +
                        " ]; do sleep 0.1; done; printf 'CreateTime:1700000000000\\tPartition:0"
                        "\\tOffset:0\\tk\\tdev-1 in {topic}\\n'";
  auto session = telesh(
      "trace device dev-1 --source exec --skip-offsets --max-age 0s --no-events"
      " --topics alpha --topics beta-topic --templates.consume " +
      shell_quote(consume));
  ASSERT_TRUE(session->wait_for("beta-topic [")) << session->screen();
  std::string running = session->screen();
  EXPECT_NE(running.find("alpha      [..............................] 0 records"),
            std::string::npos)
      << running;
  EXPECT_NE(running.find("total      ["), std::string::npos) << running;
  std::ofstream(gate).put('\n');
  ASSERT_TRUE(session->wait_for("complete:", std::chrono::seconds(30))) << session->screen();
  std::string done = session->screen();
  EXPECT_EQ(done.find("alpha      ["), std::string::npos) << "the bars are cleared\n" << done;
}

// An ssh trace without a password: telesh asks for it on the terminal with
// echo off and sends it (the daemon then reports that nothing listens).
TEST_F(TracerTtyTest, AsksForTheSshPasswordWithoutEcho) {
  auto session = telesh("trace device dev-1 --source ssh --ssh.host 127.0.0.1:1 --ssh.user nobody");
  ASSERT_TRUE(session->wait_for("SSH password:")) << session->screen();
  session->type("hunter2-secret");
  session->key("Enter");
  ASSERT_TRUE(session->wait_for("error", std::chrono::seconds(30))) << session->screen();
  std::string screen = session->screen();
  EXPECT_EQ(screen.find("hunter2-secret"), std::string::npos) << screen;
  EXPECT_EQ(screen.find("SSH password needed"), std::string::npos) << screen;
}

}  // namespace
}  // namespace telekern::testing
