// Rendering: tables for lists, key/value for messages, JSON and YAML.
#include "shell/output.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <sstream>

#include "shell/display_width.h"
#include "telekern/broker/v1/broker.pb.h"
#include "telekern/kernel/v1/kernel.pb.h"
#include "telekern/tracer/v1/tracer.pb.h"

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

// ProduceResponse's stream-only fields are marked hide_unset: a unary
// produce in telesh shows its appends, not zero sequence and error fields.
TEST(OutputTest, FieldsMarkedHideUnsetPrintOnlyWhenSet) {
  telekern::broker::v1::ProduceResponse response;
  auto* append = response.add_appends();
  append->set_partition(4);
  append->set_first_offset(17);
  append->set_count(2);
  std::string text = render_message(response, Style{});
  EXPECT_NE(text.find("PARTITION"), std::string::npos) << text;
  EXPECT_NE(text.find("17"), std::string::npos) << text;
  for (const char* field : {"sequence", "error_code", "error_message", "batch", "accepts_batch"}) {
    EXPECT_EQ(text.find(field), std::string::npos) << field << " in:\n" << text;
  }
  // Set, they print; JSON keeps every field either way.
  response.set_sequence(9);
  response.set_error_code(8);
  response.set_error_message("over max_record_bytes");
  text = render_message(response, Style{});
  EXPECT_NE(text.find("sequence:"), std::string::npos) << text;
  EXPECT_NE(text.find("over max_record_bytes"), std::string::npos) << text;
  EXPECT_EQ(text.find("accepts_batch"), std::string::npos) << text;
  EXPECT_NE(to_json(response, false).find("\"accepts_batch\":false"), std::string::npos);
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

namespace progress_bars {

namespace tv1 = telekern::tracer::v1;

tv1::TraceDeviceResponse progress(uint64_t orders_done, bool orders_finished, uint64_t audit_done) {
  tv1::TraceDeviceResponse response;
  auto* orders = response.mutable_progress()->add_topics();
  orders->set_label("orders");
  orders->set_done(orders_done);
  orders->set_total(400);
  orders->set_unit("records");
  orders->set_finished(orders_finished);
  orders->set_detail("3 matched");
  auto* audit = response.mutable_progress()->add_topics();
  audit->set_label("audit");
  audit->set_done(audit_done);  // total unknown: a count
  audit->set_unit("records");
  response.set_done(orders_finished ? 1 : 0);
  response.set_total(2);
  return response;
}

size_t count_of(const std::string& text, const std::string& what) {
  size_t count = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++count;
  return count;
}

TEST(OutputTest, ATerminalShowsOneBarPerLabelRedrawnInPlaceThenTheLastMessage) {
  std::ostringstream out;
  Style style;
  style.tty = true;
  ResponsePrinter printer(out, OutputFormat::kTable, style, true);
  printer.print(progress(100, false, 7));
  std::string first = out.str();
  EXPECT_NE(first.find("orders [#######.......................] 100/400 records   25%  3 matched"),
            std::string::npos)
      << first;
  EXPECT_NE(first.find("audit  [..............................] 7 records"), std::string::npos)
      << first;
  EXPECT_NE(first.find("total  [..............................] 0/2"), std::string::npos) << first;
  printer.print(progress(400, true, 9));
  std::string second = out.str().substr(first.size());
  // Three lines drawn: the cursor goes up two and clears before redrawing.
  EXPECT_EQ(second.rfind("\033[2A\r\033[J", 0), 0u) << second;
  EXPECT_NE(second.find("400/400 records  100%  done  3 matched"), std::string::npos) << second;
  // Running bars are listed before finished ones.
  EXPECT_LT(second.find("audit"), second.find("orders")) << second;
  tv1::TraceDeviceResponse summary;
  summary.mutable_summary()->set_trace_id("t-1");
  printer.print(summary);
  printer.finish();
  std::string last = out.str();
  EXPECT_NE(last.find("t-1"), std::string::npos) << last;
  EXPECT_EQ(count_of(last, "\033[2A"), 3u) << "redrawn for the summary, cleared at the finish";
}

TEST(OutputTest, NotATerminalPrintsBarLinesPeriodicallyAndWhenABarFinishes) {
  std::ostringstream out;
  ResponsePrinter printer(out, OutputFormat::kTable, Style{}, true);
  printer.set_line_interval(std::chrono::hours(1));
  printer.print(progress(100, false, 7));
  printer.print(progress(200, false, 8));  // within the interval: nothing
  printer.print(progress(400, true, 9));   // orders finished: its line alone
  tv1::TraceDeviceResponse summary;
  summary.mutable_summary()->set_trace_id("t-1");
  printer.print(summary);
  printer.finish();
  std::string text = out.str();
  EXPECT_EQ(text.find('\033'), std::string::npos) << "no escape sequences off a terminal";
  EXPECT_EQ(count_of(text, "orders "), 2u) << text;
  EXPECT_EQ(count_of(text, "audit "), 1u) << text;
  EXPECT_EQ(text.find("200/400"), std::string::npos) << text;
  EXPECT_NE(text.find("orders [##############################] 400/400 records  100%  done"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("t-1"), std::string::npos) << "other messages print as before\n" << text;
}

TEST(OutputTest, ProgressLinesAreCutToTheTerminalWidth) {
  tv1::TraceDeviceResponse response = progress(100, false, 7);
  Style style;
  style.columns = 60;
  ResponsePrinter::Bar bar{.label = "orders", .done = 100, .total = 400, .unit = "records"};
  bar.detail = "a long detail that does not fit into sixty columns at all";
  EXPECT_LE(display_width(render_bar(bar, 6, style)), 59u) << render_bar(bar, 6, style);
}

}  // namespace progress_bars

}  // namespace
}  // namespace telekern::shell
