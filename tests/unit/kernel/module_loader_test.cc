#include "kernel/lifecycle/module_loader.h"

#include <gtest/gtest.h>

#include <fstream>

#include "telekern/strings.h"

namespace telekern::kernel {
namespace {

std::filesystem::path fixture(const std::string& name) {
  return std::filesystem::path(TELEKERN_BUILD_DIR) / "test-modules" / ("telekern_" + name + ".so");
}

TEST(ModuleLoaderTest, LoadsGoodModule) {
  auto loaded = load_module(fixture("echo"));
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->module().info().name, "echo");
  auto services = loaded->module().services();
  ASSERT_EQ(services.size(), 1u);
  EXPECT_EQ(services[0].name, "telekern.testing.v1.Echo");
}

TEST(ModuleLoaderTest, RefusesWrongMajorAbiNamingBothVersions) {
  auto loaded = load_module(fixture("wrong_abi"));
  ASSERT_FALSE(loaded.ok());
  std::string message(loaded.status().message());
  auto expect = [&](std::string text) {
    EXPECT_NE(message.find(text), std::string::npos) << text << " not in: " << message;
  };
  expect(str_cat("built for ABI ", kAbiVersion.major + 1, ".0"));
  expect(str_cat("this kernel speaks ABI ", kAbiVersion.major, ".", kAbiVersion.minor));
}

TEST(ModuleLoaderTest, RefusesNewerMinorAbi) {
  auto loaded = load_module(fixture("newer_minor"));
  ASSERT_FALSE(loaded.ok());
  EXPECT_NE(loaded.status().message().find(
                str_cat("ABI ", kAbiVersion.major, ".", kAbiVersion.minor + 1)),
            std::string::npos)
      << loaded.status();
}

TEST(ModuleLoaderTest, AcceptsOlderMinor) {
  EXPECT_TRUE(check_abi({kAbiVersion.major, 0}, "x.so").ok());
  EXPECT_FALSE(check_abi({kAbiVersion.major + 1, 0}, "x.so").ok());
}

TEST(ModuleLoaderTest, RefusesMissingFactory) {
  auto loaded = load_module(fixture("missing_factory"));
  ASSERT_FALSE(loaded.ok());
  EXPECT_NE(loaded.status().message().find("telekern_module_create"), std::string::npos);
}

TEST(ModuleLoaderTest, RefusesNonModule) {
  auto loaded = load_module(fixture("not_a_module"));
  ASSERT_FALSE(loaded.ok());
  EXPECT_NE(loaded.status().message().find("not a telekern module"), std::string::npos);
}

TEST(ModuleLoaderTest, MissingFileAndGarbageFile) {
  EXPECT_EQ(load_module("/nonexistent/telekern_x.so").status().code(), absl::StatusCode::kNotFound);
  auto garbage = std::filesystem::temp_directory_path() / "telekern_garbage_test.so";
  { std::ofstream(garbage) << "not an elf"; }
  auto loaded = load_module(garbage);
  ASSERT_FALSE(loaded.ok());
  EXPECT_NE(loaded.status().message().find("cannot load"), std::string::npos);
  std::filesystem::remove(garbage);
}

TEST(ModuleLoaderTest, PrivateCopyAllowsTwoInstances) {
  auto dir = std::filesystem::temp_directory_path() / "telekern_loader_copies";
  auto first = load_module(fixture("echo"), dir / "a.so");
  auto second = load_module(fixture("echo"), dir / "b.so");
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_NE(&first->module(), &second->module());
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace telekern::kernel
