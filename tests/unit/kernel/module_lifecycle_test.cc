// The lifecycle contract of module.h, checked against every module the build
// produced (build/modules) and the well-behaved fixtures:
// load -> start -> health -> stop -> start -> stop, stop twice, stop without start.
#include <gtest/gtest.h>

#include "kernel/module_context.h"
#include "kernel/module_loader.h"
#include "telekern/log.h"
#include "tests/support/process.h"

namespace telekern::kernel {
namespace {

std::vector<std::string> module_files() {
  std::vector<std::string> files;
  std::error_code error;
  auto modules = std::filesystem::path(TELEKERN_BUILD_DIR) / "modules";
  for (auto it = std::filesystem::directory_iterator(modules, error);
       !error && it != std::filesystem::directory_iterator(); ++it) {
    if (it->path().extension() == ".so") files.push_back(it->path().string());
  }
  for (const char* fixture : {"echo", "ping"}) {
    files.push_back(std::string(TELEKERN_BUILD_DIR) + "/test-modules/telekern_" + fixture + ".so");
  }
  std::sort(files.begin(), files.end());
  return files;
}

std::unique_ptr<ModuleContextImpl> make_context(const Module& module,
                                                const std::filesystem::path& dir,
                                                MetricsRegistry& metrics) {
  auto config = validate_config(module.info().config, YAML::Node(), {"", "modules.x", {}});
  EXPECT_TRUE(config.ok()) << config.status();
  std::filesystem::create_directories(dir);
  return std::make_unique<ModuleContextImpl>(
      *config, dir, make_logger(module.info().name), metrics,
      [](std::string_view) { return nullptr; },
      [](const grpc::ServerContextBase&) {
        return Caller{"kernel", "admin"};
      });
}

class ModuleLifecycleTest : public ::testing::TestWithParam<std::string> {};

TEST_P(ModuleLifecycleTest, FollowsTheContract) {
  telekern::testing::TempDir dir("lifecycle");
  MetricsRegistry metrics;
  auto loaded = load_module(GetParam());
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  Module& module = loaded->module();
  ModuleInfo info = module.info();
  EXPECT_FALSE(info.name.empty());
  EXPECT_FALSE(info.version.empty());
  EXPECT_FALSE(info.description.empty());
  for (const auto& key : info.config)
    EXPECT_FALSE(key.description.empty()) << info.name << "." << key.name;
  for (const auto& binding : module.services()) {
    EXPECT_NE(binding.service, nullptr);
    EXPECT_FALSE(binding.name.empty());
  }

  for (int round = 0; round < 2; ++round) {
    auto context = make_context(module, dir.path() / info.name, metrics);
    auto started_at = std::chrono::steady_clock::now();
    auto status = module.start(*context);
    ASSERT_TRUE(status.ok()) << info.name << " round " << round << ": " << status;
    EXPECT_LT(std::chrono::steady_clock::now() - started_at, std::chrono::seconds(5))
        << "start() must return quickly";
    (void)module.health();
    context->request_stop();
    module.stop();
    module.stop();  // idempotent
  }
}

TEST_P(ModuleLifecycleTest, StopWithoutStartIsSafe) {
  auto loaded = load_module(GetParam());
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  loaded->module().stop();
  loaded->module().stop();
}

INSTANTIATE_TEST_SUITE_P(EveryModule, ModuleLifecycleTest, ::testing::ValuesIn(module_files()),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           auto stem = std::filesystem::path(info.param).stem().string();
                           std::string name;
                           for (char c : stem)
                             name += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
                           return name;
                         });

}  // namespace
}  // namespace telekern::kernel
