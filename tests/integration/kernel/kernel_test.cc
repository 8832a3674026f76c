// The real telekernd over gRPC and HTTP: module lifecycle, reload under load,
// health, reflection, metrics, auth, signals.
#include <grpcpp/create_channel.h>
#include <grpcpp/generic/generic_stub.h>
#include <gtest/gtest.h>

#include <atomic>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "grpc/health/v1/health.grpc.pb.h"
#include "grpc/reflection/v1/reflection.grpc.pb.h"
#include "telekern/kernel/v1/kernel.grpc.pb.h"
#include "telekern/testing/v1/echo.grpc.pb.h"
#include "telekern/testing/v1/ping.grpc.pb.h"
#include "tests/support/auth_config.h"
#include "tests/support/telekernd.h"

namespace telekern::testing {
namespace {

using telekern::kernel::v1::Kernel;
namespace kv1 = telekern::kernel::v1;
namespace tv1 = telekern::testing::v1;

std::unique_ptr<grpc::ClientContext> context_with(
    const std::map<std::string, std::string>& metadata = {},
    std::chrono::seconds deadline = std::chrono::seconds(10)) {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(std::chrono::system_clock::now() + deadline);
  for (const auto& [key, value] : metadata) context->AddMetadata(key, value);
  return context;
}

kv1::ListModulesResponse list_modules(const std::shared_ptr<grpc::Channel>& channel) {
  kv1::ListModulesResponse response;
  auto status = Kernel::NewStub(channel)->ListModules(context_with().get(), {}, &response);
  EXPECT_TRUE(status.ok()) << status.error_message();
  return response;
}

// Echo.Say("x") with wait_for_ready; expects it to succeed.
tv1::SayResponse say_x(const std::shared_ptr<grpc::Channel>& channel) {
  tv1::SayRequest request;
  request.set_message("x");
  tv1::SayResponse response;
  auto context = context_with();
  context->set_wait_for_ready(true);
  auto status = tv1::Echo::NewStub(channel)->Say(context.get(), request, &response);
  EXPECT_TRUE(status.ok()) << status.error_message();
  return response;
}

const kv1::Module* find_module(const kv1::ListModulesResponse& response, const std::string& name) {
  for (const auto& module : response.modules()) {
    if (module.name() == name) return &module;
  }
  return nullptr;
}

TEST(KernelIntegrationTest, ServesInfoHealthAndReflection) {
  Telekernd daemon({.load = {"echo", "ping"}});
  ASSERT_TRUE(daemon.ready()) << daemon.log();
  auto channel = daemon.channel();

  kv1::GetInfoResponse info;
  ASSERT_TRUE(Kernel::NewStub(channel)->GetInfo(context_with().get(), {}, &info).ok());
  EXPECT_FALSE(info.version().empty());
  EXPECT_EQ(info.grpc_address(), daemon.grpc_address());
  EXPECT_FALSE(info.auth_enabled());

  auto health = grpc::health::v1::Health::NewStub(channel);
  for (std::string service : {"", "telekern.testing.v1.Echo", "telekern.kernel.v1.Kernel"}) {
    grpc::health::v1::HealthCheckRequest request;
    request.set_service(service);
    grpc::health::v1::HealthCheckResponse response;
    auto status = health->Check(context_with().get(), request, &response);
    ASSERT_TRUE(status.ok()) << service << ": " << status.error_message();
    EXPECT_EQ(response.status(), grpc::health::v1::HealthCheckResponse::SERVING) << service;
  }

  // Reflection v1 lists every service and resolves a method's file.
  auto reflection = grpc::reflection::v1::ServerReflection::NewStub(channel);
  auto context = context_with();
  auto stream = reflection->ServerReflectionInfo(context.get());
  grpc::reflection::v1::ServerReflectionRequest request;
  request.set_list_services("*");
  ASSERT_TRUE(stream->Write(request));
  grpc::reflection::v1::ServerReflectionResponse response;
  ASSERT_TRUE(stream->Read(&response));
  std::set<std::string> names;
  for (const auto& service : response.list_services_response().service())
    names.insert(service.name());
  EXPECT_TRUE(names.count("telekern.testing.v1.Echo"));
  EXPECT_TRUE(names.count("telekern.testing.v1.Ping"));
  EXPECT_TRUE(names.count("telekern.kernel.v1.Kernel"));
  request.set_file_containing_symbol("telekern.testing.v1.Echo.Say");
  ASSERT_TRUE(stream->Write(request));
  ASSERT_TRUE(stream->Read(&response));
  ASSERT_TRUE(response.has_file_descriptor_response()) << response.DebugString();
  EXPECT_GE(response.file_descriptor_response().file_descriptor_proto_size(), 2);
  stream->WritesDone();
  EXPECT_TRUE(stream->Finish().ok());

  // v1alpha has the same wire format: call it with the v1 messages.
  grpc::GenericStub generic(channel);
  grpc::ClientContext alpha_context;
  alpha_context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  grpc::CompletionQueue queue;
  auto alpha = generic.PrepareCall(
      &alpha_context, "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", &queue);
  void* tag;
  bool ok;
  alpha->StartCall(reinterpret_cast<void*>(1));
  ASSERT_TRUE(queue.Next(&tag, &ok) && ok);
  request.set_list_services("*");
  std::string bytes = request.SerializeAsString();
  grpc::Slice slice(bytes);
  grpc::ByteBuffer buffer(&slice, 1);
  alpha->Write(buffer, reinterpret_cast<void*>(2));
  ASSERT_TRUE(queue.Next(&tag, &ok) && ok);
  grpc::ByteBuffer reply;
  alpha->Read(&reply, reinterpret_cast<void*>(3));
  ASSERT_TRUE(queue.Next(&tag, &ok) && ok);
  std::vector<grpc::Slice> slices;
  ASSERT_TRUE(reply.Dump(&slices).ok());
  std::string reply_bytes;
  for (const auto& part : slices)
    reply_bytes.append(reinterpret_cast<const char*>(part.begin()), part.size());
  grpc::reflection::v1::ServerReflectionResponse alpha_response;
  ASSERT_TRUE(alpha_response.ParseFromString(reply_bytes));
  EXPECT_GT(alpha_response.list_services_response().service_size(), 2);
  alpha_context.TryCancel();
  alpha->Finish(nullptr, reinterpret_cast<void*>(4));
  grpc::Status finish_status;
  queue.Shutdown();
  while (queue.Next(&tag, &ok)) {
  }

  auto [code, body] = daemon.http_get("/ready");
  EXPECT_EQ(code, 200) << body;
}

TEST(KernelIntegrationTest, FailedModulesAreReportedAndOthersKeepRunning) {
  Telekernd daemon(
      {.load = {"echo", "wrong_abi", "throwing_start", "not_a_module", "missing_factory"}});
  ASSERT_TRUE(daemon.ready()) << daemon.log();
  auto modules = list_modules(daemon.channel());
  const auto* echo = find_module(modules, "echo");
  ASSERT_NE(echo, nullptr);
  EXPECT_EQ(echo->state(), kv1::MODULE_STATE_RUNNING);
  std::map<std::string, std::string> expected = {{"wrong_abi", "this kernel speaks ABI "},
                                                 {"throwing_start", "boom in start"},
                                                 {"not_a_module", "not a telekern module"},
                                                 {"missing_factory", "telekern_module_create"}};
  for (const auto& [name, reason] : expected) {
    const auto* module = find_module(modules, name);
    ASSERT_NE(module, nullptr) << name;
    EXPECT_EQ(module->state(), kv1::MODULE_STATE_FAILED) << name;
    EXPECT_NE(module->error().find(reason), std::string::npos) << name << ": " << module->error();
    EXPECT_NE(daemon.log().find(reason), std::string::npos) << "log must name the reason";
  }
  tv1::SayRequest say;
  say.set_message("still here");
  tv1::SayResponse reply;
  EXPECT_TRUE(tv1::Echo::NewStub(daemon.channel())->Say(context_with().get(), say, &reply).ok());
  auto [code, body] = daemon.http_get("/ready");
  EXPECT_EQ(code, 503) << "failed modules make the daemon not ready";
}

TEST(KernelIntegrationTest, CollidingServiceIsRefusedNamingBothModules) {
  Telekernd daemon({.load = {"echo"}});
  ASSERT_TRUE(daemon.ready()) << daemon.log();
  auto kernel = Kernel::NewStub(daemon.channel());
  kv1::LoadModuleRequest request;
  request.set_name("echo_twin");
  kv1::LoadModuleResponse response;
  auto status = kernel->LoadModule(context_with().get(), request, &response);
  ASSERT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << status.error_message();
  EXPECT_NE(status.error_message().find("'echo_twin'"), std::string::npos)
      << status.error_message();
  EXPECT_NE(status.error_message().find("module 'echo'"), std::string::npos)
      << status.error_message();
  EXPECT_NE(status.error_message().find("telekern.testing.v1.Echo"), std::string::npos);
  // Loading the same module twice is refused too.
  request.set_name("echo");
  status = kernel->LoadModule(context_with().get(), request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::ALREADY_EXISTS) << status.error_message();
}

// Loading every module of a directory (no `load:`), a module serving what an
// earlier one serves is left out with a log line, not a failure: the daemon
// is ready. (The proxy and the broker in build/modules are such a pair.)
TEST(KernelIntegrationTest, AlternativeModulesInTheDirectoryAreLeftOutNotFailed) {
  TempDir modules;
  for (const char* name : {"echo", "echo_twin"}) {
    std::filesystem::copy_file(test_modules_dir() + "/telekern_" + name + ".so",
                               modules.path() / ("telekern_" + std::string(name) + ".so"));
  }
  Telekernd daemon({.modules_dir = modules.path().string()});
  ASSERT_TRUE(daemon.ready()) << daemon.log();
  auto listed = list_modules(daemon.channel());
  ASSERT_NE(find_module(listed, "echo"), nullptr);
  EXPECT_EQ(find_module(listed, "echo")->state(), kv1::MODULE_STATE_RUNNING);
  EXPECT_EQ(find_module(listed, "echo_twin"), nullptr) << "left out, not listed as failed";
  EXPECT_NE(daemon.log().find("module 'echo_twin' not loaded"), std::string::npos) << daemon.log();
  EXPECT_EQ(daemon.http_get("/ready").first, 200);
}

TEST(KernelIntegrationTest, UnloadAndLoadAtRuntime) {
  Telekernd daemon({.load = {"ping"}});
  ASSERT_TRUE(daemon.ready()) << daemon.log();
  auto kernel = Kernel::NewStub(daemon.channel());
  auto echo = tv1::Echo::NewStub(daemon.channel());
  tv1::SayRequest say;
  say.set_message("x");
  tv1::SayResponse reply;
  auto before = echo->Say(context_with().get(), say, &reply);
  EXPECT_EQ(before.error_code(), grpc::StatusCode::UNIMPLEMENTED);
  EXPECT_NE(before.error_message().find("modules load"), std::string::npos)
      << before.error_message();

  kv1::LoadModuleRequest load;
  load.set_name("echo");
  kv1::LoadModuleResponse loaded;
  ASSERT_TRUE(kernel->LoadModule(context_with().get(), load, &loaded).ok());
  EXPECT_EQ(loaded.result().module().name(), "echo");
  EXPECT_EQ(loaded.result().module().state(), kv1::MODULE_STATE_RUNNING);
  uint64_t generation = loaded.result().generation();
  EXPECT_TRUE(echo->Say(context_with().get(), say, &reply).ok());

  kv1::UnloadModuleRequest unload;
  unload.set_name("echo");
  kv1::UnloadModuleResponse unloaded;
  ASSERT_TRUE(kernel->UnloadModule(context_with().get(), unload, &unloaded).ok());
  EXPECT_EQ(unloaded.result().generation(), generation + 1);
  // The answer is the outcome (it said STOPPING and SERVING).
  EXPECT_EQ(unloaded.result().module().state(), kv1::MODULE_STATE_UNLOADED);
  EXPECT_EQ(unloaded.result().module().health().state(),
            telekern::common::v1::HEALTH_STATE_NOT_SERVING);
  EXPECT_EQ(find_module(list_modules(daemon.channel()), "echo"), nullptr);
  EXPECT_EQ(echo->Say(context_with().get(), say, &reply).error_code(),
            grpc::StatusCode::UNIMPLEMENTED);
  auto missing = kernel->UnloadModule(context_with().get(), unload, &unloaded);
  EXPECT_EQ(missing.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_NE(daemon.log().find("generation " + std::to_string(generation + 1)), std::string::npos);
}

// Unary calls to a module loaded at start run on the public server's own call:
// the handler sees the client's address as its peer. That stays so across
// reload, unload and load again; streams still go through the router.
TEST(KernelIntegrationTest, UnaryCallsToModulesLoadedAtStartAreDispatchedDirectly) {
  Telekernd daemon({.load = {"echo"}});
  ASSERT_TRUE(daemon.ready()) << daemon.log();
  auto kernel = Kernel::NewStub(daemon.channel());
  auto echo = tv1::Echo::NewStub(daemon.channel());
  auto say = [&] { return say_x(daemon.channel()); };
  auto first = say();
  EXPECT_EQ(first.peer().rfind("ipv4:127.0.0.1:", 0), 0u) << first.peer();

  kv1::ReloadModuleRequest reload;
  reload.set_name("echo");
  kv1::ReloadModuleResponse reloaded;
  ASSERT_TRUE(kernel->ReloadModule(context_with().get(), reload, &reloaded).ok());
  auto second = say();
  EXPECT_NE(second.instance(), first.instance()) << "the new instance answers";
  EXPECT_EQ(second.peer().rfind("ipv4:127.0.0.1:", 0), 0u) << second.peer();

  kv1::UnloadModuleRequest unload;
  unload.set_name("echo");
  kv1::UnloadModuleResponse unloaded;
  ASSERT_TRUE(kernel->UnloadModule(context_with().get(), unload, &unloaded).ok());
  tv1::SayResponse none;
  auto gone = echo->Say(context_with().get(), {}, &none);
  EXPECT_EQ(gone.error_code(), grpc::StatusCode::UNIMPLEMENTED) << gone.error_message();
  EXPECT_NE(gone.error_message().find("modules load"), std::string::npos) << gone.error_message();

  kv1::LoadModuleRequest load;
  load.set_name("echo");
  kv1::LoadModuleResponse loaded;
  ASSERT_TRUE(kernel->LoadModule(context_with().get(), load, &loaded).ok());
  auto third = say();
  EXPECT_EQ(third.peer().rfind("ipv4:127.0.0.1:", 0), 0u) << third.peer();

  // A streaming method of the same service, through the router.
  tv1::CountRequest count;
  count.set_count(3);
  auto context = context_with();
  auto stream = echo->Count(context.get(), count);
  tv1::CountResponse item;
  int items = 0;
  while (stream->Read(&item)) ++items;
  EXPECT_TRUE(stream->Finish().ok());
  EXPECT_EQ(items, 3);
}

// A service first seen after the public server started cannot be registered
// on it any more: its calls are forwarded to the module's in-process server.
TEST(KernelIntegrationTest, ModuleLoadedAfterStartIsReachedThroughTheRouter) {
  Telekernd daemon({.load = {"ping"}});
  ASSERT_TRUE(daemon.ready()) << daemon.log();
  kv1::LoadModuleRequest load;
  load.set_name("echo");
  kv1::LoadModuleResponse loaded;
  ASSERT_TRUE(
      Kernel::NewStub(daemon.channel())->LoadModule(context_with().get(), load, &loaded).ok());
  tv1::SayRequest request;
  request.set_message("routed");
  tv1::SayResponse response;
  auto status = tv1::Echo::NewStub(daemon.channel())->Say(context_with().get(), request, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.message(), "routed");
  EXPECT_FALSE(response.peer().empty());
  EXPECT_EQ(response.peer().find("127.0.0.1"), std::string::npos)
      << "forwarded in process, not from the client's socket: " << response.peer();
  EXPECT_EQ(response.caller(), "anonymous");
}

// While echo is reloaded 20 times, a client calling ping in a loop sees zero
// failures, and echo's clients recover on their own.
TEST(KernelIntegrationTest, ReloadUnderLoadKeepsOtherModulesAvailable) {
  Telekernd daemon({.config_yaml = "drain_timeout: 2s\n", .load = {"echo", "ping"}});
  ASSERT_TRUE(daemon.ready()) << daemon.log();

  std::atomic<bool> done{false};
  std::atomic<uint64_t> ping_ok{0}, ping_failed{0}, echo_ok{0}, echo_failed{0};
  std::string first_ping_error, first_echo_error;
  std::thread ping_loop([&] {
    auto ping = tv1::Ping::NewStub(daemon.channel());
    uint64_t sequence = 0;
    while (!done) {
      tv1::PingRequest request;
      request.set_sequence(++sequence);
      tv1::PingResponse response;
      auto status = ping->Ping(context_with().get(), request, &response);
      if (status.ok() && response.sequence() == sequence) {
        ++ping_ok;
      } else {
        if (ping_failed++ == 0) first_ping_error = status.error_message();
      }
    }
  });
  // Echo's client: wait_for_ready and no retry policy, so any error counts.
  std::thread echo_loop([&] {
    auto channel = grpc::CreateChannel(daemon.grpc_address(), grpc::InsecureChannelCredentials());
    auto echo = tv1::Echo::NewStub(channel);
    while (!done) {
      tv1::SayRequest request;
      request.set_message("hi");
      tv1::SayResponse response;
      auto context = context_with();
      context->set_wait_for_ready(true);
      auto status = echo->Say(context.get(), request, &response);
      if (status.ok()) {
        ++echo_ok;
      } else if (echo_failed++ == 0) {
        first_echo_error = status.error_message();
      }
    }
  });

  // Stops and joins the client loops however the test body exits.
  struct StopAndJoin {
    std::atomic<bool>& done;
    std::thread& first;
    std::thread& second;
    ~StopAndJoin() {
      done = true;
      if (first.joinable()) first.join();
      if (second.joinable()) second.join();
    }
  } stop_and_join{done, ping_loop, echo_loop};

  auto kernel = Kernel::NewStub(daemon.channel());
  uint64_t first_generation = 0, last_generation = 0;
  std::set<uint64_t> instances;
  for (int i = 0; i < 20; ++i) {
    kv1::ReloadModuleRequest request;
    request.set_name("echo");
    kv1::ReloadModuleResponse response;
    auto status = kernel->ReloadModule(context_with().get(), request, &response);
    ASSERT_TRUE(status.ok()) << "reload " << i << ": " << status.error_message() << daemon.log();
    if (i == 0) first_generation = response.result().generation();
    last_generation = response.result().generation();
    tv1::SayRequest say;
    say.set_message("after");
    tv1::SayResponse reply;
    auto context = context_with();
    context->set_wait_for_ready(true);
    ASSERT_TRUE(tv1::Echo::NewStub(daemon.channel())->Say(context.get(), say, &reply).ok());
    instances.insert(reply.instance());
  }
  uint64_t echo_before_end = echo_ok;
  // echo's client must recover after the last reload: more calls succeed.
  bool recovered =
      wait_for([&] { return echo_ok > echo_before_end + 5; }, std::chrono::seconds(10));
  done = true;
  ping_loop.join();
  echo_loop.join();

  EXPECT_EQ(ping_failed, 0u) << "first error: " << first_ping_error;
  EXPECT_GT(ping_ok, 100u);
  EXPECT_TRUE(recovered) << "echo's client must recover after the last reload";
  // Calls that arrive while echo reloads are held and answered by the new instance.
  EXPECT_EQ(echo_failed, 0u) << "first error: " << first_echo_error;
  EXPECT_EQ(last_generation, first_generation + 19);
  EXPECT_GT(instances.size(), 10u) << "each reload creates a new module instance";
  auto modules = list_modules(daemon.channel());
  ASSERT_NE(find_module(modules, "echo"), nullptr);
  EXPECT_EQ(find_module(modules, "echo")->generation(), last_generation);
}

TEST(KernelIntegrationTest, ModuleConfigFromFileAndEnvironment) {
  Telekernd daemon({.config_yaml = "modules:\n  echo:\n    prefix: 'file '\n",
                    .load = {"echo"},
                    .env = {{"TELEKERN_MODULES_ECHO_PREFIX", "env "}}});
  ASSERT_TRUE(daemon.ready()) << daemon.log();
  tv1::SayRequest say;
  say.set_message("x");
  tv1::SayResponse reply;
  ASSERT_TRUE(tv1::Echo::NewStub(daemon.channel())->Say(context_with().get(), say, &reply).ok());
  EXPECT_EQ(reply.message(), "env x");
  kv1::GetConfigRequest request;
  request.set_module("echo");
  kv1::GetConfigResponse config;
  ASSERT_TRUE(
      Kernel::NewStub(daemon.channel())->GetConfig(context_with().get(), request, &config).ok());
  EXPECT_NE(config.yaml().find("prefix: \"env \""), std::string::npos) << config.yaml();
}

// SIGHUP reloads the modules whose config changed, with the new config, and
// leaves the others alone; a change the module refuses keeps it running.
TEST(KernelIntegrationTest, SighupReloadsModulesWhoseConfigChanged) {
  Telekernd daemon(
      {.config_yaml = "modules:\n  echo:\n    prefix: 'one '\n", .load = {"echo", "ping"}});
  ASSERT_TRUE(daemon.ready()) << daemon.log();
  auto say = [&] { return say_x(daemon.channel()).message(); };
  auto generation_of = [&](const std::string& name) {
    auto modules = list_modules(daemon.channel());
    const auto* module = find_module(modules, name);
    return module ? module->generation() : 0;
  };
  ASSERT_EQ(say(), "one x");
  uint64_t ping_generation = generation_of("ping");
  auto rewrite = [&](const std::string& echo_section) {
    std::ofstream(daemon.dir() / "telekernd.yaml") << "modules:\n  echo:\n"
                                                   << echo_section << "load: [echo, ping]\n";
    daemon.process().signal(SIGHUP);
  };

  rewrite("    prefix: 'two '\n");
  EXPECT_TRUE(wait_for([&] { return say() == "two x"; }, std::chrono::seconds(10))) << daemon.log();
  EXPECT_EQ(generation_of("ping"), ping_generation) << "ping's config did not change";

  rewrite("    prefix: 'three '\n    fail_start: maybe\n");
  EXPECT_TRUE(wait_for([&] { return daemon.log().find("keeps running") != std::string::npos; },
                       std::chrono::seconds(10)))
      << daemon.log();
  EXPECT_EQ(say(), "two x") << "the running instance stays";
  EXPECT_NE(daemon.log().find("fail_start"), std::string::npos) << daemon.log();
}

// A module that failed to start (here: a key it does not know) is loaded
// again on SIGHUP, so fixing the file and sending SIGHUP brings it up; one
// that still fails stays failed with the new reason.
TEST(KernelIntegrationTest, SighupLoadsFailedModulesAgain) {
  Telekernd daemon({.config_yaml = "modules:\n  echo:\n    prefx: 'one '\n", .load = {"echo"}});
  ASSERT_TRUE(daemon.ready()) << daemon.log();
  auto state = [&]() -> std::pair<kv1::ModuleState, std::string> {
    auto modules = list_modules(daemon.channel());
    const auto* echo = find_module(modules, "echo");
    if (echo == nullptr) return {kv1::MODULE_STATE_UNSPECIFIED, ""};
    return {echo->state(), echo->error()};
  };
  ASSERT_EQ(state().first, kv1::MODULE_STATE_FAILED);
  auto rewrite = [&](const std::string& echo_section) {
    std::ofstream(daemon.dir() / "telekernd.yaml") << "modules:\n  echo:\n"
                                                   << echo_section << "load: [echo]\n";
    daemon.process().signal(SIGHUP);
  };

  rewrite("    prefix: 'one '\n    fail_start: maybe\n");
  EXPECT_TRUE(wait_for([&] { return state().second.find("fail_start") != std::string::npos; },
                       std::chrono::seconds(10)))
      << daemon.log();
  EXPECT_EQ(state().first, kv1::MODULE_STATE_FAILED);

  rewrite("    prefix: 'two '\n");
  EXPECT_TRUE(wait_for([&] { return state().first == kv1::MODULE_STATE_RUNNING; },
                       std::chrono::seconds(10)))
      << daemon.log();
  EXPECT_EQ(say_x(daemon.channel()).message(), "two x");
}

TEST(KernelIntegrationTest, InvalidConfigExitsTwoNamingFileLineAndKey) {
  TempDir dir;
  auto file = dir.path() / "bad.yaml";
  std::ofstream(file) << "listen: 127.0.0.1:0\nlog:\n  levle: debug\n";
  auto result = run_command(telekernd_binary() + " --config " + file.string());
  EXPECT_EQ(result.exit_code, 2) << result.output;
  EXPECT_NE(result.output.find("bad.yaml:3"), std::string::npos) << result.output;
  EXPECT_NE(result.output.find("log.levle"), std::string::npos) << result.output;

  std::ofstream(file) << "modules:\n  echo:\n    prefx: a\n";
  Telekernd daemon({.config_yaml = "modules:\n  echo:\n    prefx: a\n", .load = {"echo"}});
  ASSERT_TRUE(daemon.ready());
  auto modules = list_modules(daemon.channel());
  const auto* echo = find_module(modules, "echo");
  ASSERT_NE(echo, nullptr);
  EXPECT_EQ(echo->state(), kv1::MODULE_STATE_FAILED);
  EXPECT_NE(echo->error().find("modules.echo.prefx"), std::string::npos) << echo->error();

  auto env_result = run_command("TELEKERN_DRAIN_TIMEOUT=soon " + telekernd_binary() +
                                " --listen 127.0.0.1:0 --http ''");
  EXPECT_EQ(env_result.exit_code, 2) << env_result.output;
  EXPECT_NE(env_result.output.find("TELEKERN_DRAIN_TIMEOUT"), std::string::npos)
      << env_result.output;
}

TEST(KernelIntegrationTest, RefusesPublicAddressWithoutAuth) {
  auto result = run_command(telekernd_binary() +
                            " --listen 0.0.0.0:0 --http 127.0.0.1:0 --modules-dir /nonexistent");
  EXPECT_EQ(result.exit_code, 2) << result.output;
  EXPECT_NE(result.output.find("without auth"), std::string::npos) << result.output;
}

TEST(KernelIntegrationTest, SigtermDrainsInFlightCallsAndExitsZero) {
  Telekernd daemon({.config_yaml = "drain_timeout: 10s\n", .load = {"echo"}});
  ASSERT_TRUE(daemon.ready()) << daemon.log();
  auto echo = tv1::Echo::NewStub(daemon.channel());
  tv1::CountRequest request;
  request.set_count(10);
  request.set_interval_ms(100);
  auto context = context_with({}, std::chrono::seconds(30));
  auto reader = echo->Count(context.get(), request);
  tv1::CountResponse response;
  ASSERT_TRUE(reader->Read(&response));
  daemon.process().signal(SIGTERM);
  uint32_t received = 1;
  while (reader->Read(&response)) ++received;
  auto status = reader->Finish();
  EXPECT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(received, 10u) << "the in-flight stream completes during the drain";
  auto exit_code = daemon.process().wait(std::chrono::seconds(20));
  ASSERT_TRUE(exit_code.has_value());
  EXPECT_EQ(*exit_code, 0) << daemon.log();
  EXPECT_NE(daemon.log().find("stopping module 'echo'"), std::string::npos) << daemon.log();
}

TEST(KernelIntegrationTest, MetricsEndpointPassesPromtool) {
  Telekernd daemon({.load = {"echo"}});
  ASSERT_TRUE(daemon.ready()) << daemon.log();
  tv1::SayRequest say;
  tv1::SayResponse reply;
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(tv1::Echo::NewStub(daemon.channel())->Say(context_with().get(), say, &reply).ok());
  }
  // A call is counted when the server finishes it, which may be just after
  // the client has its answer: wait (bounded) for the third.
  const std::string counted =
      "telekern_rpc_requests_total{service=\"telekern.testing.v1.Echo\",method=\"Say\",code=\"OK\"}"
      " 3";
  int code = 0;
  std::string body;
  wait_for(
      [&] {
        std::tie(code, body) = daemon.http_get("/metrics");
        return body.find(counted) != std::string::npos;
      },
      std::chrono::seconds(5));
  ASSERT_EQ(code, 200);
  EXPECT_NE(body.find(counted), std::string::npos) << body;
  EXPECT_NE(body.find("telekern_rpc_duration_seconds_bucket{service=\"telekern.testing.v1.Echo\""),
            std::string::npos);
  EXPECT_NE(body.find("process_resident_memory_bytes"), std::string::npos);
  EXPECT_NE(body.find("process_open_fds"), std::string::npos);
  EXPECT_NE(body.find("process_threads"), std::string::npos);
  EXPECT_NE(body.find("telekern_module_up{module=\"echo\"}"), std::string::npos);

  std::string promtool = find_executable("promtool");
  if (promtool.empty()) {
    if (running_in_ci()) FAIL() << "promtool is missing (install the prometheus package)";
    GTEST_SKIP() << "promtool not installed";
  }
  TempDir dir;
  std::ofstream(dir.path() / "metrics.txt") << body;
  auto result = run_command(promtool + " check metrics < " + (dir.path() / "metrics.txt").string());
  EXPECT_EQ(result.exit_code, 0) << result.output;
  EXPECT_EQ(result.output, "") << "promtool must report nothing";
  auto [health_code, health] = daemon.http_get("/health");
  EXPECT_EQ(health_code, 200);
  EXPECT_NE(health.find("\"echo\""), std::string::npos) << health;
}

class AuthIntegrationTest : public ::testing::Test {
 protected:
  static std::string config() { return auth_config_yaml(); }
};

TEST_F(AuthIntegrationTest, RolesAndCredentialsAreEnforced) {
  Telekernd daemon({.config_yaml = config(), .load = {"echo"}});
  ASSERT_TRUE(daemon.ready()) << daemon.log();
  auto kernel = Kernel::NewStub(daemon.channel());
  auto echo = tv1::Echo::NewStub(daemon.channel());
  kv1::ListModulesResponse modules;

  auto anonymous = kernel->ListModules(context_with().get(), {}, &modules);
  EXPECT_EQ(anonymous.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_NE(anonymous.error_message().find("no credentials"), std::string::npos)
      << anonymous.error_message();
  auto wrong_key = kernel->ListModules(context_with({{"x-api-key", "nope"}}).get(), {}, &modules);
  EXPECT_EQ(wrong_key.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_TRUE(
      kernel->ListModules(context_with({{"x-api-key", "viewer-secret"}}).get(), {}, &modules).ok());

  tv1::PokeResponse poked;
  auto denied = echo->Poke(context_with({{"x-api-key", "viewer-secret"}}).get(), {}, &poked);
  EXPECT_EQ(denied.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_NE(denied.error_message().find("needs role operator"), std::string::npos)
      << denied.error_message();
  EXPECT_TRUE(echo->Poke(context_with({{"x-api-key", "operator-secret"}}).get(), {}, &poked).ok());
  kv1::LoadModuleRequest load;
  load.set_name("ping");
  kv1::LoadModuleResponse loaded;
  EXPECT_EQ(
      kernel->LoadModule(context_with({{"x-api-key", "operator-secret"}}).get(), load, &loaded)
          .error_code(),
      grpc::StatusCode::PERMISSION_DENIED);

  kv1::LoginRequest login;
  login.set_user("alice");
  login.set_password("wrong");
  kv1::LoginResponse token;
  EXPECT_EQ(kernel->Login(context_with().get(), login, &token).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  login.set_password("wonderland");
  ASSERT_TRUE(kernel->Login(context_with().get(), login, &token).ok());
  EXPECT_EQ(token.role(), telekern::options::v1::ROLE_ADMIN);
  auto admin = context_with({{"authorization", "Bearer " + token.token()}});
  auto admin_load = kernel->LoadModule(admin.get(), load, &loaded);
  EXPECT_TRUE(admin_load.ok()) << admin_load.error_message();
  // Change one signature character well inside (the last one carries padding bits).
  auto forged = token.token();
  char& changed = forged[forged.size() - 10];
  changed = changed == 'A' ? 'B' : 'A';
  EXPECT_EQ(
      kernel->ListModules(context_with({{"authorization", "Bearer " + forged}}).get(), {}, &modules)
          .error_code(),
      grpc::StatusCode::UNAUTHENTICATED);

  // Health stays public.
  grpc::health::v1::HealthCheckResponse health;
  EXPECT_TRUE(grpc::health::v1::Health::NewStub(daemon.channel())
                  ->Check(context_with().get(), {}, &health)
                  .ok());
  auto [code, body] = daemon.http_get("/metrics", {{"X-API-Key", "viewer-secret"}});
  EXPECT_NE(body.find("code=\"UNAUTHENTICATED\""), std::string::npos) << "rejections are counted";
}

// Modules learn who calls from ModuleContext::caller(), on direct and routed
// calls alike; x-telekern-* metadata a client sends itself is dropped.
TEST_F(AuthIntegrationTest, ModulesSeeTheAuthenticatedCallerNotAForgedOne) {
  Telekernd daemon({.config_yaml = config(), .load = {"ping"}});
  ASSERT_TRUE(daemon.ready()) << daemon.log();
  auto kernel = Kernel::NewStub(daemon.channel());
  kv1::LoginRequest login;
  login.set_user("alice");
  login.set_password("wonderland");
  kv1::LoginResponse token;
  ASSERT_TRUE(kernel->Login(context_with().get(), login, &token).ok());
  const std::string bearer = "Bearer " + token.token();
  auto echo = tv1::Echo::NewStub(daemon.channel());
  auto caller = [&](std::map<std::string, std::string> metadata) {
    metadata["x-telekern-subject"] = "mallory";
    metadata["x-telekern-role"] = "admin";
    tv1::SayRequest request;
    tv1::SayResponse response;
    auto status = echo->Say(context_with(metadata).get(), request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return response.caller() + "/" + response.role();
  };

  // echo loaded after start: routed.
  kv1::LoadModuleRequest load;
  load.set_name("echo");
  kv1::LoadModuleResponse loaded;
  ASSERT_TRUE(
      kernel->LoadModule(context_with({{"authorization", bearer}}).get(), load, &loaded).ok());
  EXPECT_EQ(caller({{"x-api-key", "viewer-secret"}}), "viewer-key/viewer");
  EXPECT_EQ(caller({{"authorization", bearer}}), "alice/admin");

  // echo loaded at start: direct.
  Telekernd direct({.config_yaml = config(), .load = {"echo", "ping"}});
  ASSERT_TRUE(direct.ready()) << direct.log();
  echo = tv1::Echo::NewStub(direct.channel());
  EXPECT_EQ(caller({{"x-api-key", "viewer-secret"}}), "viewer-key/viewer");
  EXPECT_EQ(caller({{"x-api-key", "operator-secret"}}), "operator-key/operator");

  // Module to module through ModuleContext::channel(): passes the call gate
  // as the kernel.
  tv1::RelayRequest relay;
  relay.set_message("relayed");
  tv1::RelayResponse relayed;
  auto status = tv1::Ping::NewStub(direct.channel())
                    ->Relay(context_with({{"x-api-key", "viewer-secret"}}).get(), relay, &relayed);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(relayed.message(), "relayed");
  EXPECT_EQ(relayed.caller() + "/" + relayed.role(), "kernel/admin");
}

// A module reaches a service another daemon serves (remote_services), with
// the configured API key when that daemon has auth.
TEST_F(AuthIntegrationTest, RemoteServicesAreCalledWithTheConfiguredKey) {
  Telekernd remote({.config_yaml = config(), .load = {"echo"}});
  ASSERT_TRUE(remote.ready()) << remote.log();
  auto relay_through = [&](const std::string& key_line) {
    Telekernd local({.config_yaml = "remote_services:\n  telekern.testing.v1.Echo: " +
                                    remote.grpc_address() + "\n" + key_line,
                     .load = {"ping"}});
    EXPECT_TRUE(local.ready()) << local.log();
    tv1::RelayRequest request;
    request.set_message("far");
    tv1::RelayResponse response;
    auto status =
        tv1::Ping::NewStub(local.channel())->Relay(context_with().get(), request, &response);
    return std::make_pair(status, response);
  };
  auto [with_key, reply] = relay_through("remote:\n  api_key: viewer-secret\n");
  ASSERT_TRUE(with_key.ok()) << with_key.error_message();
  EXPECT_EQ(reply.message(), "far");
  EXPECT_EQ(reply.caller() + "/" + reply.role(), "viewer-key/viewer");
  auto [without_key, ignored] = relay_through("");
  EXPECT_EQ(without_key.error_code(), grpc::StatusCode::UNAUTHENTICATED)
      << without_key.error_message();
}

TEST_F(AuthIntegrationTest, SighupAppliesNewKeys) {
  Telekernd daemon({.config_yaml = config(), .load = {"echo"}});
  ASSERT_TRUE(daemon.ready()) << daemon.log();
  std::string fresh = config();
  fresh.insert(fresh.find("  users:"),
               "    - {name: late, sha256: \"" + sha256_hex("late-secret") + "\", role: viewer}\n");
  std::ofstream(daemon.dir() / "telekernd.yaml") << fresh << "load: [echo]\n";
  auto kernel = Kernel::NewStub(daemon.channel());
  kv1::ListModulesResponse modules;
  EXPECT_EQ(kernel->ListModules(context_with({{"x-api-key", "late-secret"}}).get(), {}, &modules)
                .error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  daemon.process().signal(SIGHUP);
  EXPECT_TRUE(wait_for(
      [&] {
        return kernel->ListModules(context_with({{"x-api-key", "late-secret"}}).get(), {}, &modules)
            .ok();
      },
      std::chrono::seconds(10)))
      << daemon.log();
}

}  // namespace
}  // namespace telekern::testing

namespace telekern::testing {
namespace {

// A stream to one module keeps flowing while another module reloads and the
// kernel's routing changes around it.
TEST(KernelIntegrationTest, StreamToOneModuleSurvivesReloadOfAnother) {
  Telekernd daemon({.load = {"echo", "ping"}});
  ASSERT_TRUE(daemon.ready()) << daemon.log();
  auto echo = tv1::Echo::NewStub(daemon.channel());
  tv1::CountRequest request;
  request.set_count(20);
  request.set_interval_ms(25);
  auto context = context_with({}, std::chrono::seconds(30));
  auto reader = echo->Count(context.get(), request);
  tv1::CountResponse response;
  ASSERT_TRUE(reader->Read(&response));
  auto kernel = Kernel::NewStub(daemon.channel());
  for (int i = 0; i < 3; ++i) {
    kv1::ReloadModuleRequest reload;
    reload.set_name("ping");
    kv1::ReloadModuleResponse reloaded;
    ASSERT_TRUE(kernel->ReloadModule(context_with().get(), reload, &reloaded).ok());
  }
  uint32_t received = 1;
  while (reader->Read(&response)) ++received;
  EXPECT_TRUE(reader->Finish().ok());
  EXPECT_EQ(received, 20u);
}

TEST(KernelIntegrationTest, JsonLogsCarryModuleAndLevel) {
  Telekernd daemon({.config_yaml = "log:\n  format: json\n", .load = {"echo", "wrong_abi"}});
  ASSERT_TRUE(daemon.ready()) << daemon.log();
  std::istringstream lines(daemon.log());
  int parsed = 0;
  bool saw_echo = false, saw_error = false;
  for (std::string line; std::getline(lines, line);) {
    if (line.empty()) continue;  // every line, gRPC's own included, is one JSON object
    auto json = nlohmann::json::parse(line, nullptr, false);
    ASSERT_FALSE(json.is_discarded()) << line;
    ASSERT_TRUE(json.contains("module") && json.contains("level") && json.contains("msg")) << line;
    saw_echo |= json["module"] == "echo";
    saw_error |=
        json["level"] == "error" && json["msg"].get<std::string>().find("ABI") != std::string::npos;
    ++parsed;
  }
  EXPECT_GE(parsed, 3);
  EXPECT_TRUE(saw_echo);
  EXPECT_TRUE(saw_error);
}

TEST(KernelIntegrationTest, ServesTls) {
  TempDir dir;
  auto key = dir.path() / "key.pem";
  auto cert = dir.path() / "cert.pem";
  auto made = run_command(
      "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost "
      "-addext subjectAltName=DNS:localhost,IP:127.0.0.1 -keyout " +
      key.string() + " -out " + cert.string());
  ASSERT_EQ(made.exit_code, 0) << made.output;
  Telekernd daemon(
      {.config_yaml = "tls:\n  cert: " + cert.string() + "\n  key: " + key.string() + "\n",
       .load = {"echo"}});
  ASSERT_TRUE(daemon.ready()) << daemon.log();
  std::ifstream in(cert);
  std::string pem((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  grpc::SslCredentialsOptions options;
  options.pem_root_certs = pem;
  grpc::ChannelArguments arguments;
  arguments.SetSslTargetNameOverride("localhost");
  auto secure =
      grpc::CreateCustomChannel(daemon.grpc_address(), grpc::SslCredentials(options), arguments);
  tv1::SayRequest say;
  say.set_message("over tls");
  tv1::SayResponse reply;
  auto status = tv1::Echo::NewStub(secure)->Say(context_with().get(), say, &reply);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(reply.message(), "over tls");
  kv1::GetInfoResponse info;
  ASSERT_TRUE(Kernel::NewStub(secure)->GetInfo(context_with().get(), {}, &info).ok());
  EXPECT_TRUE(info.tls_enabled());
  // A plaintext client cannot talk to it.
  auto plain = Kernel::NewStub(daemon.channel())
                   ->GetInfo(context_with({}, std::chrono::seconds(3)).get(), {}, &info);
  EXPECT_FALSE(plain.ok());
}

}  // namespace
}  // namespace telekern::testing

namespace telekern::testing {
namespace {

TEST(KernelIntegrationTest, PrintConfigShowsKernelAndModuleSettings) {
  TempDir dir;
  auto file = dir.path() / "c.yaml";
  std::ofstream(file)
      << "log:\n  level: debug\nauth:\n  jwt_secret: "
         "'super-secret-value-that-is-long-enough'\nremote:\n  api_key: remote-key-value\n"
         "modules:\n  echo:\n    prefix: 'hey '\n";
  auto result = run_command(telekernd_binary() + " --print-config --config " + file.string() +
                            " --modules-dir " + test_modules_dir());
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_NE(result.output.find("level: debug"), std::string::npos) << result.output;
  EXPECT_NE(result.output.find("listen: 127.0.0.1:7070"), std::string::npos) << result.output;
  EXPECT_EQ(result.output.find("super-secret-value"), std::string::npos) << "secrets are masked";
  EXPECT_EQ(result.output.find("remote-key-value"), std::string::npos) << "secrets are masked";
  EXPECT_NE(result.output.find("tls: false"), std::string::npos) << result.output;
  EXPECT_NE(result.output.find("modules.echo:"), std::string::npos) << result.output;
  EXPECT_NE(result.output.find("prefix: \"hey \""), std::string::npos) << result.output;
  EXPECT_NE(result.output.find("fail_start: false"), std::string::npos) << result.output;
}

TEST(KernelIntegrationTest, HelpExplainsOptionsAndEnvironment) {
  auto result = run_command(telekernd_binary() + " --help");
  EXPECT_EQ(result.exit_code, 0);
  for (const char* text : {"--config", "--listen", "--http", "--modules-dir", "--data-dir",
                           "--print-config", "TELEKERN_"}) {
    EXPECT_NE(result.output.find(text), std::string::npos) << text;
  }
}

}  // namespace
}  // namespace telekern::testing

namespace telekern::testing {
namespace {

// echo is the only user of its proto library here: unloading it must not
// unload the library (protobuf cannot register the same file twice).
TEST(KernelIntegrationTest, ModuleThatAloneUsesItsProtosUnloadsAndLoadsAgain) {
  Telekernd daemon({.load = {"echo"}});
  ASSERT_TRUE(daemon.ready()) << daemon.log();
  auto kernel = Kernel::NewStub(daemon.channel());
  kv1::UnloadModuleRequest unload;
  unload.set_name("echo");
  kv1::UnloadModuleResponse unloaded;
  ASSERT_TRUE(kernel->UnloadModule(context_with().get(), unload, &unloaded).ok());
  kv1::LoadModuleRequest load;
  load.set_name("echo");
  kv1::LoadModuleResponse loaded;
  auto status = kernel->LoadModule(context_with().get(), load, &loaded);
  ASSERT_TRUE(status.ok()) << status.error_message() << daemon.log();
  kv1::ReloadModuleRequest reload;
  reload.set_name("echo");
  kv1::ReloadModuleResponse reloaded;
  ASSERT_TRUE(kernel->ReloadModule(context_with().get(), reload, &reloaded).ok()) << daemon.log();
  tv1::SayRequest say;
  say.set_message("back");
  tv1::SayResponse reply;
  EXPECT_TRUE(tv1::Echo::NewStub(daemon.channel())->Say(context_with().get(), say, &reply).ok());
  EXPECT_TRUE(daemon.process().running());
}

}  // namespace
}  // namespace telekern::testing
