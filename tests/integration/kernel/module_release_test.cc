// Hot reload gives back what it loaded: a module's private copy is unmapped
// once its instance is gone and no thread can run its code, so load/unload
// cycles leave no mappings behind; a copy a leaked thread still runs in is
// kept and reported with the reason.
#include <gtest/gtest.h>

#include <fstream>
#include <iostream>
#include <set>
#include <sstream>

#include "telekern/kernel/v1/kernel.grpc.pb.h"
#include "telekern/testing/v1/echo.grpc.pb.h"
#include "tests/support/process.h"
#include "tests/support/telekernd.h"

namespace telekern::testing {
namespace {

namespace kv1 = telekern::kernel::v1;
namespace tv1 = telekern::testing::v1;
using namespace std::chrono_literals;

constexpr const char* kQuickRelease = "drain_timeout: 200ms\nmodule_release_grace: 200ms\n";

std::unique_ptr<grpc::ClientContext> deadline_context() {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(std::chrono::system_clock::now() + 20s);
  return context;
}

// Distinct private copies of `module` mapped into the daemon.
size_t mapped_copies(pid_t pid, const std::string& module) {
  std::ifstream maps("/proc/" + std::to_string(pid) + "/maps");
  std::set<std::string> copies;
  std::string line;
  std::string needle = "/.modules/telekern_" + module + ".";
  while (std::getline(maps, line)) {
    auto at = line.find(needle);
    if (at != std::string::npos) copies.insert(line.substr(line.rfind(' ', at) + 1));
  }
  return copies.size();
}

size_t resident_kib(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoul(line.substr(6));
  }
  return 0;
}

kv1::ListModulesResponse list(Telekernd& daemon) {
  kv1::ListModulesResponse response;
  EXPECT_TRUE(kv1::Kernel::NewStub(daemon.channel())
                  ->ListModules(deadline_context().get(), {}, &response)
                  .ok());
  return response;
}

void load(Telekernd& daemon, const std::string& name) {
  kv1::LoadModuleRequest request;
  request.set_name(name);
  kv1::LoadModuleResponse response;
  auto status = kv1::Kernel::NewStub(daemon.channel())
                    ->LoadModule(deadline_context().get(), request, &response);
  ASSERT_TRUE(status.ok()) << name << ": " << status.error_message() << daemon.log();
}

void unload(Telekernd& daemon, const std::string& name) {
  kv1::UnloadModuleRequest request;
  request.set_name(name);
  kv1::UnloadModuleResponse response;
  auto status = kv1::Kernel::NewStub(daemon.channel())
                    ->UnloadModule(deadline_context().get(), request, &response);
  ASSERT_TRUE(status.ok()) << name << ": " << status.error_message() << daemon.log();
}

void say(Telekernd& daemon) {
  tv1::SayRequest request;
  request.set_message("x");
  tv1::SayResponse response;
  auto context = deadline_context();
  context->set_wait_for_ready(true);
  auto status = tv1::Echo::NewStub(daemon.channel())->Say(context.get(), request, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
}

// Loads, calls and unloads echo `cycles` times, then waits until every
// destroyed copy is unmapped; returns RSS in KiB.
size_t cycle_and_settle(Telekernd& daemon, int cycles) {
  for (int i = 0; i < cycles; ++i) {
    load(daemon, "echo");
    say(daemon);
    unload(daemon, "echo");
  }
  bool settled = wait_for(
      [&] {
        return mapped_copies(daemon.process().pid(), "echo") == 0 &&
               list(daemon).retired_copies().mapped() == 0;
      },
      30s);
  EXPECT_TRUE(settled) << mapped_copies(daemon.process().pid(), "echo")
                       << " copies of echo still mapped" << daemon.log();
  return resident_kib(daemon.process().pid());
}

TEST(ModuleReleaseTest, LoadUnloadCyclesGiveBackTheirCopies) {
  Telekernd daemon({.config_yaml = kQuickRelease, .load = {"ping"}});
  ASSERT_TRUE(daemon.ready()) << daemon.log();
  size_t after_warmup = cycle_and_settle(daemon, 20);
  size_t after_many = cycle_and_settle(daemon, 200);
  std::cout << "RSS after 20 load/unload cycles: " << after_warmup
            << " KiB, after 220: " << after_many << " KiB\n";
  EXPECT_LT(after_many, after_warmup + 8 * 1024)
      << "RSS grew from " << after_warmup << " KiB to " << after_many << " KiB over 200 cycles";
  load(daemon, "echo");
  EXPECT_EQ(mapped_copies(daemon.process().pid(), "echo"), 1u) << "one copy for the running echo";
  EXPECT_TRUE(list(daemon).retired_copies().retained().empty());
}

TEST(ModuleReleaseTest, ACopyALeakedThreadRunsInIsKeptAndReported) {
  Telekernd daemon({.config_yaml = kQuickRelease, .load = {"ping"}});
  ASSERT_TRUE(daemon.ready()) << daemon.log();
  load(daemon, "leaky");
  unload(daemon, "leaky");
  kv1::ListModulesResponse modules;
  ASSERT_TRUE(wait_for(
      [&] {
        modules = list(daemon);
        return modules.retired_copies().retained_size() > 0;
      },
      30s))
      << daemon.log();
  const auto& retained = modules.retired_copies().retained(0);
  EXPECT_EQ(retained.module(), "leaky");
  EXPECT_NE(retained.reason().find("thread"), std::string::npos) << retained.reason();
  EXPECT_EQ(mapped_copies(daemon.process().pid(), "leaky"), 1u) << "its code stays mapped";
  EXPECT_NE(daemon.log().find("kept mapped"), std::string::npos) << daemon.log();
  // The daemon goes on, the leaked thread with it.
  EXPECT_TRUE(daemon.process().running());
  load(daemon, "echo");
  say(daemon);
}

}  // namespace
}  // namespace telekern::testing
