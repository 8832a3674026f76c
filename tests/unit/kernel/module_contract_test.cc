// The contract every module passes without writing a test of its own, run
// against each module the build produced (build/modules) and the fixtures:
//  - bad configs in modules/<name>/testdata/bad_*.yaml are refused before
//    start with file:line and the key their first line names (# error: KEY);
//    good_*.yaml are accepted;
//  - load -> start -> health SERVING or DEGRADED -> stop, twice, with a fresh instance
//    the second time (as reload does); stop is idempotent and safe without start;
//  - a unary call after stop() fails cleanly with UNAVAILABLE;
//  - the README's config table is the schema's;
//  - every method a service serves locally (LocalUnary) is one of its unary
//    methods.
#include <google/protobuf/descriptor.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/server_builder.h>
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "kernel/lifecycle/config_reload.h"
#include "kernel/lifecycle/module_context.h"
#include "kernel/lifecycle/module_loader.h"
#include "telekern/log.h"
#include "telekern/service/local_unary.h"
#include "tests/support/process.h"

namespace telekern::kernel {
namespace {

struct ModuleUnderTest {
  std::string file;
  std::string name;  // folder under modules/ ("" for fixtures)
};

std::vector<ModuleUnderTest> modules_under_test(bool with_fixtures) {
  std::vector<ModuleUnderTest> found;
  std::error_code error;
  auto modules = std::filesystem::path(TELEKERN_BUILD_DIR) / "modules";
  for (auto it = std::filesystem::directory_iterator(modules, error);
       !error && it != std::filesystem::directory_iterator(); ++it) {
    if (it->path().extension() != ".so") continue;
    auto stem = it->path().stem().string();
    found.push_back({it->path().string(), stem.substr(std::string("telekern_").size())});
  }
  for (const char* fixture : {"echo", "ping"}) {
    if (!with_fixtures) break;
    found.push_back(
        {std::string(TELEKERN_BUILD_DIR) + "/test-modules/telekern_" + fixture + ".so", ""});
  }
  std::sort(found.begin(), found.end(),
            [](const auto& a, const auto& b) { return a.file < b.file; });
  return found;
}

std::filesystem::path module_source_dir(const std::string& name) {
  return std::filesystem::path(TELEKERN_SOURCE_DIR) / "modules" / name;
}

std::string read_text(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// A context on the module's defaults, as the kernel would make it.
struct TestContext {
  TestContext(const Module& module, const std::filesystem::path& dir) : channels({}, {}) {
    auto config = module_section_config(module.info(), YAML::Node(), "");
    EXPECT_TRUE(config.ok()) << config.status();
    std::filesystem::create_directories(dir);
    context = std::make_unique<ModuleContextImpl>(config.ok() ? *config : Config(), dir,
                                                  make_logger(module.info().name), metrics,
                                                  channels, [](const grpc::ServerContextBase&) {
                                                    return Caller{"kernel", "admin"};
                                                  });
  }
  MetricsRegistry metrics;
  ModuleChannels channels;
  std::unique_ptr<ModuleContextImpl> context;
};

// The module's services on an in-process server, for calls after stop().
struct InProcessServer {
  explicit InProcessServer(Module& module) {
    grpc::ServerBuilder builder;
    for (const auto& binding : module.services()) {
      builder.RegisterService(binding.service);
      services.push_back(binding.name);
    }
    server = builder.BuildAndStart();
    channel = server->InProcessChannel({});
  }
  ~InProcessServer() { server->Shutdown(std::chrono::system_clock::now()); }

  // Every unary method of the module's services, called with an empty request.
  std::vector<std::pair<std::string, grpc::Status>> call_every_unary_method() {
    std::vector<std::pair<std::string, grpc::Status>> results;
    grpc::GenericStub stub(channel);
    grpc::CompletionQueue queue;
    for (const auto& name : services) {
      const auto* service =
          google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(name);
      if (service == nullptr) continue;
      for (int i = 0; i < service->method_count(); ++i) {
        const auto* method = service->method(i);
        if (method->client_streaming() || method->server_streaming()) continue;
        std::string path = "/" + name + "/" + method->name();
        grpc::ClientContext context;
        context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
        grpc::Slice empty("");
        grpc::ByteBuffer request(&empty, 1), response;
        auto call = stub.PrepareUnaryCall(&context, path, request, &queue);
        call->StartCall();
        grpc::Status status;
        call->Finish(&response, &status, reinterpret_cast<void*>(1));
        void* tag = nullptr;
        bool ok = false;
        queue.Next(&tag, &ok);
        results.emplace_back(path, status);
      }
    }
    queue.Shutdown();
    void* tag = nullptr;
    bool ok = false;
    while (queue.Next(&tag, &ok)) {
    }
    return results;
  }

  std::vector<std::string> services;
  std::unique_ptr<grpc::Server> server;
  std::shared_ptr<grpc::Channel> channel;
};

void PrintTo(const ModuleUnderTest& module, std::ostream* out) { *out << module.file; }

// Every module: the built ones and the kernel tests' fixtures.
class ModuleContractTest : public ::testing::TestWithParam<ModuleUnderTest> {};
// The modules under modules/: they also ship config fixtures and a README.
class ShippedModuleContractTest : public ModuleContractTest {};

TEST_P(ModuleContractTest, DescribesItself) {
  auto loaded = load_module(GetParam().file);
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
}

TEST_P(ModuleContractTest, LocallyServedMethodsAreUnaryMethodsOfTheService) {
  auto loaded = load_module(GetParam().file);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  for (const auto& binding : loaded->module().services()) {
    auto* local = dynamic_cast<LocalUnary*>(binding.service);
    if (local == nullptr) continue;
    const auto* service =
        google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(binding.name);
    ASSERT_NE(service, nullptr) << binding.name;
    EXPECT_FALSE(local->local_methods().empty()) << binding.name;
    for (const auto& name : local->local_methods()) {
      const auto* method = service->FindMethodByName(name);
      ASSERT_NE(method, nullptr) << binding.name << " has no method " << name;
      EXPECT_FALSE(method->client_streaming() || method->server_streaming())
          << method->full_name() << " streams; only unary methods run locally";
    }
  }
}

TEST_P(ModuleContractTest, StartsFreshInstancesAndStopsCleanly) {
  telekern::testing::TempDir dir("contract");
  for (int round = 0; round < 2; ++round) {
    // A new library handle and module object each round, as reload makes.
    auto loaded = load_module(GetParam().file);
    ASSERT_TRUE(loaded.ok()) << loaded.status();
    Module& module = loaded->module();
    auto name = module.info().name;
    TestContext context(module, dir.path() / name);
    InProcessServer server(module);
    auto status = module.start(*context.context);
    ASSERT_TRUE(status.ok()) << name << " round " << round << ": " << status;
    // DEGRADED is a started module missing an external server (e.g. the
    // proxy without upstreams), never a failed start.
    EXPECT_NE(module.health().state, HealthState::kNotServing)
        << name << ": " << module.health().detail;
    context.context->request_stop();
    module.stop();
    module.stop();  // idempotent
    EXPECT_NE(module.health().state, HealthState::kServing)
        << name << " reports SERVING after stop()";
    for (const auto& [method, result] : server.call_every_unary_method()) {
      EXPECT_EQ(result.error_code(), grpc::StatusCode::UNAVAILABLE)
          << method << " after stop(): " << result.error_message();
    }
  }
}

TEST_P(ModuleContractTest, StopWithoutStartIsSafe) {
  auto loaded = load_module(GetParam().file);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  loaded->module().stop();
  loaded->module().stop();
  EXPECT_NE(loaded->module().health().state, HealthState::kServing);
}

TEST_P(ShippedModuleContractTest, RefusesBadConfigsWithFileLineAndKey) {
  auto testdata = module_source_dir(GetParam().name) / "testdata";
  ASSERT_TRUE(std::filesystem::is_directory(testdata))
      << "every module ships good_*.yaml and bad_*.yaml config fixtures in " << testdata;
  auto loaded = load_module(GetParam().file);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  auto info = loaded->module().info();
  int good = 0, bad = 0;
  for (const auto& entry : std::filesystem::directory_iterator(testdata)) {
    auto file = entry.path().filename().string();
    if (entry.path().extension() != ".yaml") continue;
    auto root = load_yaml_file(entry.path().string());
    ASSERT_TRUE(root.ok()) << root.status();
    auto checked = module_section_config(info, (*root)["modules"], entry.path().string());
    if (file.starts_with("good_")) {
      ++good;
      EXPECT_TRUE(checked.ok()) << file << ": " << checked.status();
    } else if (file.starts_with("bad_")) {
      ++bad;
      std::string first_line;
      std::getline(std::ifstream(entry.path()) >> std::ws, first_line);
      ASSERT_TRUE(first_line.starts_with("# error: "))
          << file << " must start with '# error: <key>'";
      std::string key = first_line.substr(9);
      ASSERT_FALSE(checked.ok()) << file << " was accepted";
      std::string message(checked.status().message());
      EXPECT_NE(message.find(file + ":"), std::string::npos) << "no file:line in: " << message;
      EXPECT_NE(message.find("'" + key + "'"), std::string::npos)
          << "key " << key << " not named in: " << message;
    }
  }
  EXPECT_GT(good, 0) << "no good_*.yaml in " << testdata;
  EXPECT_GT(bad, 0) << "no bad_*.yaml in " << testdata;
}

TEST_P(ShippedModuleContractTest, ReadmeConfigTableMatchesTheSchema) {
  auto loaded = load_module(GetParam().file);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  auto table = schema_to_markdown(loaded->module().info().config);
  auto readme = read_text(module_source_dir(GetParam().name) / "README.md");
  EXPECT_NE(readme.find(table), std::string::npos)
      << "modules/" << GetParam().name
      << "/README.md must hold the config table exactly as the schema gives it:\n"
      << table;
}

std::string test_name(const ::testing::TestParamInfo<ModuleUnderTest>& info) {
  auto stem = std::filesystem::path(info.param.file).stem().string();
  std::string name;
  for (char c : stem) name += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
  return name;
}

INSTANTIATE_TEST_SUITE_P(EveryModule, ModuleContractTest,
                         ::testing::ValuesIn(modules_under_test(true)), test_name);
INSTANTIATE_TEST_SUITE_P(EveryModule, ShippedModuleContractTest,
                         ::testing::ValuesIn(modules_under_test(false)), test_name);

}  // namespace
}  // namespace telekern::kernel
