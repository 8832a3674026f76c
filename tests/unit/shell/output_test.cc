// Rendering: tables for lists, key/value for messages, JSON and YAML.
#include "shell/output.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <sstream>

#include "telekern/kernel/v1/kernel.pb.h"

namespace telekern::shell {
namespace {

namespace kv1 = telekern::kernel::v1;

kv1::ListModulesResponse two_modules() {
  kv1::ListModulesResponse response;
  auto* echo = response.add_modules();
  echo->set_name("echo");
  echo->set_state(kv1::MODULE_STATE_RUNNING);
  echo->add_services("telekern.testing.v1.Echo");
  echo->mutable_health()->set_state(telekern::common::v1::HEALTH_STATE_SERVING);
  auto* broken = response.add_modules();
  broken->set_name("broken");
  broken->set_state(kv1::MODULE_STATE_FAILED);
  broken->set_error("boom");
  response.set_generation(3);
  return response;
}

TEST(OutputTest, ListsPrintAsTablesWithColumnsFromTheRowType) {
  std::string text = render_message(two_modules(), Style{});
  std::istringstream lines(text);
  std::string header, first, second, trailer;
  std::getline(lines, header);
  std::getline(lines, first);
  std::getline(lines, second);
  std::getline(lines, trailer);
  EXPECT_EQ(header.rfind("NAME", 0), 0u) << text;
  EXPECT_NE(header.find("STATE"), std::string::npos);
  EXPECT_NE(header.find("HEALTH.STATE"), std::string::npos) << "nested messages flatten one level";
  EXPECT_EQ(header.find("VERSION"), std::string::npos) << "columns empty in every row are dropped";
  EXPECT_NE(first.find("RUNNING"), std::string::npos);
  EXPECT_NE(second.find("FAILED"), std::string::npos);
  EXPECT_NE(second.find("boom"), std::string::npos);
  EXPECT_EQ(header.find("STATE"), first.find("RUNNING")) << "columns align:\n" << text;
  EXPECT_EQ(trailer, "generation: 3");
}

TEST(OutputTest, SingleMessagesPrintAsKeyValue) {
  kv1::GetInfoResponse info;
  info.set_version("1.2.3");
  info.mutable_uptime()->set_seconds(65);
  info.mutable_start_time()->set_seconds(1714564800);
  std::string text = render_message(info, Style{});
  EXPECT_NE(text.find("version:      1.2.3\n"), std::string::npos) << text;
  EXPECT_NE(text.find("uptime:       1m5s\n"), std::string::npos) << text;
  EXPECT_NE(text.find("start_time:   2024-05-01T12:00:00Z\n"), std::string::npos) << text;
}

TEST(OutputTest, JsonIsOneParsableDocumentAndYamlMirrorsIt) {
  auto json = nlohmann::json::parse(to_json(two_modules(), false));
  EXPECT_EQ(json["modules"][1]["error"], "boom");
  EXPECT_EQ(json["generation"], "3");
  EXPECT_EQ(to_json(two_modules(), false).find('\n'), std::string::npos);
  std::string yaml = to_yaml(two_modules());
  EXPECT_NE(yaml.find("name: broken"), std::string::npos) << yaml;
}

TEST(OutputTest, StreamsPrintOneJsonLinePerMessageOrOneRowPerMessage) {
  kv1::GetConfigResponse row;
  std::ostringstream json_out;
  ResponsePrinter json_printer(json_out, OutputFormat::kJson, Style{}, true);
  row.set_yaml("a: 1");
  json_printer.print(row);
  row.set_yaml("b: 2");
  json_printer.print(row);
  json_printer.finish();
  std::string json = json_out.str();
  EXPECT_EQ(std::count(json.begin(), json.end(), '\n'), 2) << json;
  EXPECT_EQ(json.substr(0, json.find('\n')), R"({"yaml":"a: 1"})");

  std::ostringstream table_out;
  ResponsePrinter table_printer(table_out, OutputFormat::kTable, Style{}, true);
  table_printer.print(row);
  table_printer.print(row);
  table_printer.finish();
  EXPECT_EQ(table_out.str(), "YAML\nb: 2\nb: 2\n");
}

}  // namespace
}  // namespace telekern::shell
