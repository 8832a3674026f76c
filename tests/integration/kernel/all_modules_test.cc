// `make run`'s promise: telekernd with every module of build/modules on
// embedded defaults becomes ready (every module SERVING, so /ready is 200)
// and stops cleanly on SIGTERM while modules that consume from the broker in
// process (collector, monitor) are still running.
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>

#include "tests/support/telekernd.h"

namespace telekern::testing {
namespace {

TEST(AllModulesTest, EveryModuleOnDefaultsIsReadyAndTheDaemonStopsCleanlyOnSigterm) {
  Telekernd daemon({.modules_dir = std::string(TELEKERN_BUILD_DIR) + "/modules"});
  ASSERT_TRUE(daemon.ready()) << daemon.log();
  std::pair<int, std::string> ready;
  ASSERT_TRUE(wait_for(
      [&] {
        ready = daemon.http_get("/ready");
        return ready.first == 200;
      },
      std::chrono::seconds(20)))
      << "/ready: " << ready.first << " " << ready.second;
  auto health = daemon.http_get("/health?modules=1");
  for (const char* module : {"broker", "collector", "monitor", "etl", "tracer", "bench"}) {
    EXPECT_NE(health.second.find(std::string("\"name\":\"") + module + "\""), std::string::npos)
        << module << " not loaded: " << health.second;
  }

  daemon.process().signal(SIGTERM);
  auto status = daemon.process().wait(std::chrono::seconds(30));
  ASSERT_TRUE(status.has_value()) << "still running 30 s after SIGTERM\n" << daemon.log();
  EXPECT_EQ(*status, 0) << "exit status (128+signal when killed)\n" << daemon.log();
  EXPECT_NE(daemon.log().find("stopped"), std::string::npos) << daemon.log();
}

}  // namespace
}  // namespace telekern::testing
