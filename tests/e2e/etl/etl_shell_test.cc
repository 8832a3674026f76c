// The etl module from telesh, through the commands generated from its
// proto's cli options, in a daemon with no ClickHouse configured: the
// module starts, dry runs and processor listings work, and a started
// pipeline whose store is missing shows as retrying (DEGRADED), not failed.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "tests/support/telekernd.h"
#include "tests/support/telesh.h"

namespace telekern::testing {
namespace {

TEST(EtlShellTest, ProcessorsDryRunPipelinesFromTelesh) {
  Telekernd daemon({.config_yaml = "modules:\n  etl:\n    clickhouse_port: 1\n",
                    .modules_dir = std::string(TELEKERN_BUILD_DIR) + "/modules",
                    .load = {"broker", "etl"}});
  ASSERT_TRUE(daemon.ready()) << daemon.log();

  auto processors = telesh_commands(daemon, "etl processors");
  ASSERT_EQ(processors.exit_code, 0) << processors.output;
  for (const char* name :
       {"FlowProcessor", "InterfaceTrafficProcessor", "InterfaceSAPQueueProcessor",
        "InterfacePortQueueProcessor", "InterfaceMetadataProcessor", "RawKafkaProcessor"})
    EXPECT_NE(processors.output.find(name), std::string::npos) << name << processors.output;

  std::string message =
      R"({"start": 1700000000, "meta": {"id": "r1::xe-1", "device": "r1"}, "values": {"in_bits": {"val": 42}}})";
  auto dry = run_telesh(daemon,
                        "etl dry-run --processor InterfaceTrafficProcessor --message " +
                            shell_quote(message) + " -o json",
                        {.redirect = "2>&1"});
  ASSERT_EQ(dry.exit_code, 0) << dry.output;
  auto answer = nlohmann::json::parse(dry.output, nullptr, false);
  ASSERT_FALSE(answer.is_discarded()) << dry.output;
  ASSERT_EQ(answer["rows"].size(), 1u) << dry.output;
  EXPECT_EQ(answer["rows"][0]["table"], "if_traffic");
  EXPECT_NE(answer["rows"][0]["json"].get<std::string>().find("\"in_bits\":42"), std::string::npos);

  std::string yaml =
      "name: t\ntype: clickhouse\nprocessors: [FlowProcessor]\nconsumer: {type: broker, topic: "
      "flows}\n";
  auto started =
      run_telesh(daemon, "etl start t --yaml " + shell_quote(yaml), {.redirect = "2>&1"});
  ASSERT_EQ(started.exit_code, 0) << started.output;
  ASSERT_TRUE(wait_for(
      [&] {
        auto listed = telesh_commands(daemon, "etl pipelines");
        return listed.output.find("RETRYING") != std::string::npos;
      },
      std::chrono::seconds(20)))
      << telesh_commands(daemon, "etl pipelines").output;
  auto stats = telesh_commands(daemon, "etl stats t");
  EXPECT_EQ(stats.exit_code, 0) << stats.output;
  EXPECT_NE(stats.output.find("clickhouse_unavailable"), std::string::npos) << stats.output;
  // The kernel polls module health about once a second: the reason shows up on /health.
  std::string health;
  EXPECT_TRUE(wait_for(
      [&] {
        health = daemon.http_get("/health").second;
        return health.find("pipeline t retrying") != std::string::npos;
      },
      std::chrono::seconds(10)))
      << health;
  // The seed-style REST routes come from the proto's http options.
  auto routed = daemon.http_get("/etl/pipelines/t/stats");
  EXPECT_EQ(routed.first, 200) << routed.second;
  EXPECT_NE(routed.second.find("clickhouse_unavailable"), std::string::npos) << routed.second;
  auto stopped = telesh_commands(daemon, "etl stop t");
  EXPECT_EQ(stopped.exit_code, 0) << stopped.output;
  auto unknown = telesh_commands(daemon, "etl stats nosuch");
  EXPECT_NE(unknown.exit_code, 0);
  EXPECT_NE(unknown.output.find("no pipeline nosuch"), std::string::npos) << unknown.output;
}

}  // namespace
}  // namespace telekern::testing
