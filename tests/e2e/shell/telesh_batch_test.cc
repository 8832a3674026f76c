// telesh in batch mode against a real telekernd: -c, -f, piped stdin, exit
// codes, --keep-going, JSON output, credentials, runtime-loaded modules.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "tests/support/auth_config.h"
#include "tests/support/telekernd.h"
#include "tests/support/telesh.h"

namespace telekern::testing {
namespace {

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

TEST(TeleshBatchTest, RunsCommandsBuiltFromReflection) {
  Telekernd daemon({.load = {"echo"}});
  ASSERT_TRUE(daemon.ready()) << daemon.log();
  auto result = run_telesh(daemon, "-c " + shell_quote("info; echo say 'hello there'; modules"));
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_NE(result.output.find("grpc_address: " + daemon.grpc_address()), std::string::npos)
      << result.output;
  EXPECT_NE(result.output.find("message:  hello there"), std::string::npos) << result.output;
  EXPECT_NE(result.output.find("NAME"), std::string::npos) << "modules prints a table:\n"
                                                           << result.output;
  EXPECT_NE(result.output.find("RUNNING"), std::string::npos) << result.output;

  auto streamed = run_telesh(daemon, "-c " + shell_quote("echo count 3 --interval_ms 1"));
  ASSERT_EQ(streamed.exit_code, 0) << streamed.output;
  auto lines = lines_of(streamed.output);
  ASSERT_EQ(lines.size(), 4u) << "a header and one row per message:\n" << streamed.output;
  EXPECT_EQ(lines[0].rfind("INDEX", 0), 0u);
  EXPECT_EQ(lines[3].rfind("2 ", 0), 0u) << lines[3];
}

TEST(TeleshBatchTest, ScriptStopsAtFirstFailureWithDistinctExitCodes) {
  Telekernd daemon({.load = {"echo"}});
  ASSERT_TRUE(daemon.ready()) << daemon.log();
  TempDir dir;
  auto script = dir.path() / "run.tsh";
  std::ofstream(script)
      << "# a comment line\necho say first   # and a trailing one\nmodules unload ghost\n"
         "echo say second\n";
  auto stopped = run_telesh(daemon, "-f " + script.string());
  EXPECT_EQ(stopped.exit_code, 10 + 5) << "NOT_FOUND maps to 15:\n" << stopped.output;
  EXPECT_NE(stopped.output.find("first"), std::string::npos) << stopped.output;
  EXPECT_EQ(stopped.output.find("second"), std::string::npos) << "the run stops at the failure:\n"
                                                              << stopped.output;
  EXPECT_NE(stopped.output.find("error: modules unload: NOT_FOUND"), std::string::npos)
      << stopped.output;
  EXPECT_NE(stopped.output.find("ghost"), std::string::npos) << "the server's message is shown:\n"
                                                             << stopped.output;

  auto kept_going = run_telesh(daemon, "--keep-going -f " + script.string());
  EXPECT_EQ(kept_going.exit_code, 15) << kept_going.output;
  EXPECT_NE(kept_going.output.find("second"), std::string::npos) << kept_going.output;

  auto unknown = run_telesh(daemon, "-c " + shell_quote("no-such-command; echo say later"));
  EXPECT_EQ(unknown.exit_code, 2) << unknown.output;
  EXPECT_EQ(unknown.output.find("later"), std::string::npos) << unknown.output;
  auto bad_flag = run_telesh(daemon, "-c " + shell_quote("echo count --cuont 3"));
  EXPECT_EQ(bad_flag.exit_code, 2) << bad_flag.output;
  EXPECT_NE(bad_flag.output.find("unknown flag --cuont"), std::string::npos) << bad_flag.output;

  auto unreachable = run_command(telesh_binary() + " --addr 127.0.0.1:1 -c info </dev/null");
  EXPECT_EQ(unreachable.exit_code, 10 + 14) << "UNAVAILABLE maps to 24:\n" << unreachable.output;

  // Commands piped on a non-TTY stdin run the same way.
  auto piped = run_command(
      "printf 'echo say piped\\nmodules unload ghost\\necho say never\\n' | NO_COLOR=1 " +
      telesh_binary() + " --addr " + daemon.grpc_address());
  EXPECT_EQ(piped.exit_code, 15) << piped.output;
  EXPECT_NE(piped.output.find("piped"), std::string::npos) << piped.output;
  EXPECT_EQ(piped.output.find("never"), std::string::npos) << piped.output;
}

TEST(TeleshBatchTest, JsonOutputIsOneDocumentPerResponse) {
  Telekernd daemon({.load = {"echo"}});
  ASSERT_TRUE(daemon.ready()) << daemon.log();
  auto result = run_telesh(
      daemon, "-o json -c " + shell_quote("info; modules list; echo count 3; echo say x"));
  ASSERT_EQ(result.exit_code, 0) << result.output;
  auto lines = lines_of(result.output);
  ASSERT_EQ(lines.size(), 6u) << result.output;
  std::vector<nlohmann::json> documents;
  for (const auto& line : lines) {
    auto json = nlohmann::json::parse(line, nullptr, false);
    ASSERT_FALSE(json.is_discarded()) << "not JSON: " << line;
    documents.push_back(json);
  }
  EXPECT_EQ(documents[0]["grpc_address"], daemon.grpc_address());
  EXPECT_EQ(documents[1]["modules"][0]["name"], "echo");
  EXPECT_EQ(documents[1]["modules"][0]["state"], "MODULE_STATE_RUNNING");
  EXPECT_EQ(documents[4]["done"], 3);
  EXPECT_EQ(documents[4]["total"], 3);
  EXPECT_EQ(documents[5]["message"], "x");

  auto yaml = run_telesh(daemon, "-o yaml -c info");
  EXPECT_NE(yaml.output.find("grpc_address: " + daemon.grpc_address()), std::string::npos)
      << yaml.output;
}

TEST(TeleshBatchTest, GenericCallAndDescribeWorkForServicesTeleshNeverSaw) {
  // telesh links no testing protos: Ping is known only through reflection.
  Telekernd daemon({.load = {"ping"}});
  ASSERT_TRUE(daemon.ready()) << daemon.log();
  auto call = run_telesh(
      daemon,
      "-o json -c " + shell_quote(R"(call telekern.testing.v1.Ping/Ping '{"sequence": 7}')"));
  ASSERT_EQ(call.exit_code, 0) << call.output;
  EXPECT_EQ(nlohmann::json::parse(call.output)["sequence"], "7");
  auto short_name = run_telesh(daemon, "-c " + shell_quote("call Ping.Ping --sequence 9"));
  EXPECT_NE(short_name.output.find("sequence: 9"), std::string::npos) << short_name.output;
  auto services = run_telesh(daemon, "-c services");
  EXPECT_NE(services.output.find("telekern.testing.v1.Ping"), std::string::npos) << services.output;
  EXPECT_NE(services.output.find("grpc.health.v1.Health"), std::string::npos) << services.output;
  auto describe = run_telesh(daemon, "-c " + shell_quote("describe Ping/Ping"));
  EXPECT_NE(describe.output.find("uint64 sequence = 1;"), std::string::npos) << describe.output;
  auto health = run_telesh(daemon, "health telekern.testing.v1.Ping");
  EXPECT_EQ(health.exit_code, 0) << health.output;
  EXPECT_NE(health.output.find("SERVING"), std::string::npos) << health.output;
}

TEST(TeleshBatchTest, ModuleLoadedAtRuntimeBringsItsCommands) {
  Telekernd daemon({.load = {"echo"}});
  ASSERT_TRUE(daemon.ready()) << daemon.log();
  auto before = run_telesh(daemon, "-c " + shell_quote("help"));
  EXPECT_EQ(before.output.find("Round trip a no-op call"), std::string::npos) << before.output;
  auto result = run_telesh(
      daemon,
      "-c " + shell_quote("modules load ping; help; ping --sequence 5; modules unload ping; ping"));
  EXPECT_EQ(result.exit_code, 2) << "ping is gone after the unload:\n" << result.output;
  EXPECT_NE(result.output.find("Round trip a no-op call"), std::string::npos) << result.output;
  EXPECT_NE(result.output.find("sequence: 5"), std::string::npos) << result.output;
  EXPECT_NE(result.output.find("unknown command 'ping'"), std::string::npos) << result.output;
}

// A module that failed to start serves nothing, so it brings no commands:
// telesh says why instead of a bare "unknown command".
TEST(TeleshBatchTest, CommandsOfAFailedModuleNameItsError) {
  TelekerndOptions options;
  options.modules_dir = std::string(TELEKERN_BUILD_DIR) + "/modules";
  options.load = {"proxy"};
  // The default health_timeout (1s) exceeds this interval: refused at start.
  options.config_yaml = "modules:\n  proxy:\n    health_interval: 500ms\n";
  Telekernd daemon(options);
  ASSERT_TRUE(daemon.ready()) << daemon.log();
  auto result = run_telesh(daemon, "-c " + shell_quote("proxy upstreams"));
  EXPECT_EQ(result.exit_code, 2) << result.output;
  EXPECT_NE(result.output.find("unknown command 'proxy'"), std::string::npos) << result.output;
  EXPECT_NE(result.output.find("module 'proxy' failed"), std::string::npos) << result.output;
  EXPECT_NE(result.output.find("health_timeout"), std::string::npos) << result.output;
  EXPECT_NE(result.output.find("SIGHUP"), std::string::npos) << result.output;
  EXPECT_NE(result.output.find("`modules load proxy`"), std::string::npos) << result.output;
  // A word no module is named keeps the plain message.
  auto other = run_telesh(daemon, "-c " + shell_quote("proxi upstreams"));
  EXPECT_EQ(other.exit_code, 2) << other.output;
  EXPECT_NE(other.output.find("unknown command 'proxi'"), std::string::npos) << other.output;
  EXPECT_EQ(other.output.find("failed"), std::string::npos) << other.output;
}

class TeleshAuthTest : public ::testing::Test {
 protected:
  static std::string config() { return auth_config_yaml(); }
};

TEST_F(TeleshAuthTest, CredentialsFromFlagsAndEnvironment) {
  Telekernd daemon({.config_yaml = config(), .load = {"echo"}});
  ASSERT_TRUE(daemon.ready()) << daemon.log();
  auto anonymous = run_telesh(daemon, "-c info");
  EXPECT_EQ(anonymous.exit_code, 10 + 16) << "UNAUTHENTICATED maps to 26:\n" << anonymous.output;
  EXPECT_NE(anonymous.output.find("no credentials"), std::string::npos) << anonymous.output;
  EXPECT_EQ(run_telesh(daemon, "-c info", {.env = "TELEKERN_API_KEY=viewer-secret"}).exit_code, 0);
  auto denied = run_telesh(daemon, "--api-key viewer-secret -c " + shell_quote("echo poke"));
  EXPECT_EQ(denied.exit_code, 10 + 7) << denied.output;
  // login in a batch reads the password from TELEKERN_PASSWORD; the token is
  // kept for the following commands.
  auto admin = run_telesh(daemon, "-c " + shell_quote("login alice; modules load ping"),
                          {.env = "TELEKERN_PASSWORD=wonderland"});
  EXPECT_EQ(admin.exit_code, 0) << admin.output;
  EXPECT_NE(admin.output.find("logged in as admin"), std::string::npos) << admin.output;
  auto token_json =
      run_telesh(daemon, "-o json -c " + shell_quote("login alice --password wonderland"));
  ASSERT_EQ(token_json.exit_code, 0) << token_json.output;
  std::string token = nlohmann::json::parse(token_json.output)["token"];
  EXPECT_EQ(run_telesh(daemon, "-c " + shell_quote("modules unload ping"),
                       {.env = "TELEKERN_TOKEN=" + token})
                .exit_code,
            0);
}

TEST(TeleshTlsTest, ConnectsOverTlsCheckingTheServerAgainstTheCa) {
  if (find_executable("openssl").empty()) {
    if (running_in_ci()) FAIL() << "openssl is missing (install the openssl package)";
    GTEST_SKIP() << "openssl not installed";
  }
  TempDir certs;
  auto key = (certs.path() / "server.key").string();
  auto cert = (certs.path() / "server.pem").string();
  auto made =
      run_command("openssl req -x509 -newkey rsa:2048 -nodes -keyout " + key + " -out " + cert +
                  " -days 1 -subj /CN=localhost -addext subjectAltName=IP:127.0.0.1 2>&1");
  ASSERT_EQ(made.exit_code, 0) << made.output;
  Telekernd daemon(
      {.config_yaml = "tls:\n  cert: " + cert + "\n  key: " + key + "\n", .load = {"echo"}});
  ASSERT_TRUE(daemon.ready()) << daemon.log();
  auto secure =
      run_telesh(daemon, "--tls --ca " + cert + " -c " + shell_quote("info; echo say over-tls"));
  EXPECT_EQ(secure.exit_code, 0) << secure.output;
  EXPECT_NE(secure.output.find("tls_enabled:  true"), std::string::npos) << secure.output;
  EXPECT_NE(secure.output.find("over-tls"), std::string::npos) << secure.output;
  auto plaintext = run_telesh(daemon, "-c info");
  EXPECT_EQ(plaintext.exit_code, 24) << "a plaintext client cannot talk to a TLS server:\n"
                                     << plaintext.output;
}

}  // namespace
}  // namespace telekern::testing
