#include "telekern/report/html_report.h"

#include <absl/strings/escaping.h>
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

namespace telekern::report {
namespace {

std::string between(const std::string& text, const std::string& open, const std::string& close) {
  auto start = text.find(open);
  if (start == std::string::npos) return {};
  start += open.size();
  auto end = text.find(close, start);
  return end == std::string::npos ? std::string() : text.substr(start, end - start);
}

nlohmann::json line_figure() {
  return {{"data", {{{"type", "scatter"}, {"x", {1, 2, 3}}, {"y", {4, 5, 6}}, {"name", "p99"}}}},
          {"layout", {{"title", "latency"}}}};
}

TEST(HtmlReportTest, EscapesTextEverywhere) {
  HtmlReport report("<b>title</b>");
  report.subtitle("a & b")
      .heading("<h2>")
      .paragraph("x < y")
      .key_values({{"\"key\"", "'value'"}})
      .table({"<th>"}, {{"<td>"}});
  std::string html = report.render();
  EXPECT_EQ(html.find("<b>title</b>"), std::string::npos);
  EXPECT_NE(html.find("&lt;b&gt;title&lt;/b&gt;"), std::string::npos);
  EXPECT_NE(html.find("a &amp; b"), std::string::npos);
  EXPECT_NE(html.find("x &lt; y"), std::string::npos);
  EXPECT_NE(html.find("&quot;key&quot;"), std::string::npos);
  EXPECT_NE(html.find("&#39;value&#39;"), std::string::npos);
  EXPECT_NE(html.find("<th>&lt;th&gt;</th>"), std::string::npos);
  EXPECT_NE(html.find("<td>&lt;td&gt;</td>"), std::string::npos);
  // No charts: no script at all, and no notice about plotly.
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_EQ(html.find("class=\"notice\""), std::string::npos);
}

TEST(HtmlReportTest, ChartDataRoundTripsAndCannotCloseItsScript) {
  nlohmann::json figure = line_figure();
  figure["data"][0]["name"] = "</script><script>alert(1)</script>";
  HtmlReport report("charts");
  report.chart("Latency", figure);
  std::string html = report.render(std::string("/*plotly*/"));
  std::string data =
      between(html, "<script type=\"application/json\" id=\"chart-1-data\">", "</script>");
  ASSERT_FALSE(data.empty());
  EXPECT_EQ(nlohmann::json::parse(data), figure);
  EXPECT_EQ(html.find("<script>alert(1)"), std::string::npos);
  EXPECT_EQ(html.find("</script><script>"), std::string::npos);
  EXPECT_NE(html.find("<div class=\"chart\" id=\"chart-1\""), std::string::npos);
  EXPECT_NE(html.find("/*plotly*/"), std::string::npos);
  EXPECT_NE(html.find("Plotly.newPlot"), std::string::npos);
}

TEST(HtmlReportTest, MissingPlotlyLeavesANoticeAndTheData) {
  HtmlReport report("charts");
  report.chart("Latency", line_figure()).table({"a"}, {{"1"}});
  auto missing = load_plotly_js("/nonexistent/plotly.js");
  ASSERT_FALSE(missing.ok());
  std::string html = report.render(missing);
  EXPECT_NE(html.find("class=\"notice\""), std::string::npos);
  EXPECT_NE(html.find("/nonexistent/plotly.js"), std::string::npos);
  EXPECT_NE(html.find("chart-1-data"), std::string::npos);
  EXPECT_EQ(html.find("Plotly.newPlot"), std::string::npos);
  EXPECT_NE(html.find("<td>1</td>"), std::string::npos);
}

TEST(HtmlReportTest, DebianPlotlyIsEmbeddedSoReportsWorkOffline) {
  auto plotly = plotly_js();
  ASSERT_TRUE(plotly.ok()) << plotly.status() << " (make deps installs python3-plotly)";
  EXPECT_NE(plotly->find("plotly.js v"), std::string::npos);
  HtmlReport report("offline");
  report.chart("Latency", line_figure());
  std::string html = report.render();
  EXPECT_NE(html.find(plotly->substr(0, 200)), std::string::npos);
  EXPECT_EQ(html.find("src=\"http"), std::string::npos);
}

TEST(HtmlReportTest, AttachmentsCarryTheirBytes) {
  std::string csv = "a,b\n1,\"x,y\"\n";
  HtmlReport report("exports");
  report.attachment("rows.csv", "text/csv", csv);
  std::string html = report.render();
  std::string encoded = between(html, "href=\"data:text/csv;base64,", "\"");
  std::string decoded;
  ASSERT_TRUE(absl::Base64Unescape(encoded, &decoded));
  EXPECT_EQ(decoded, csv);
  EXPECT_NE(html.find("download=\"rows.csv\""), std::string::npos);
}

TEST(HtmlReportTest, WriteCreatesTheDirectoryAndLeavesNoTemporaryFile) {
  auto dir =
      std::filesystem::temp_directory_path() / ("html_report_test_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  HtmlReport report("written");
  report.paragraph("hello");
  ASSERT_TRUE(report.write(dir / "sub" / "report.html").ok());
  std::ifstream in(dir / "sub" / "report.html");
  std::stringstream text;
  text << in.rdbuf();
  EXPECT_NE(text.str().find("<p>hello</p>"), std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(dir / "sub" / "report.html.tmp"));
  std::filesystem::remove_all(dir);
}

TEST(HtmlReportTest, CsvFieldsAreQuotedOnlyWhenNeeded) {
  EXPECT_EQ(csv_field("plain"), "plain");
  EXPECT_EQ(csv_field("a,b"), "\"a,b\"");
  EXPECT_EQ(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
  EXPECT_EQ(csv_field("two\nlines"), "\"two\nlines\"");
}

TEST(HtmlReportTest, FilterableTablesCarryTheirControlsAndTheFilterScript) {
  HtmlReport report("filters");
  report.filterable_table(
      {"time", "partition", "value"},
      {{"2026-05-01T10:00:00Z", "10", "<b>x</b>"},
       {"2026-05-02T10:00:00Z", "2", "y"},
       {"2026-05-03T10:00:00Z", "2", "z"}},
      {.id = "events",
       .columns = {ColumnFilter::kRange, ColumnFilter::kChoice, ColumnFilter::kText}});
  std::string html = report.render(absl::StatusOr<std::string>(std::string()));
  EXPECT_NE(html.find("<table class=\"filterable\" id=\"events\">"), std::string::npos) << html;
  EXPECT_NE(html.find("id=\"events-search\""), std::string::npos);
  EXPECT_NE(html.find("data-kind=\"from\""), std::string::npos);
  EXPECT_NE(html.find("data-kind=\"to\""), std::string::npos);
  EXPECT_NE(html.find("data-column=\"2\" data-kind=\"text\""), std::string::npos);
  // Distinct partitions in numeric order, once each.
  EXPECT_NE(html.find("<option value=\"\">all</option><option value=\"2\">2</option><option "
                      "value=\"10\">10</option></select>"),
            std::string::npos)
      << html;
  EXPECT_NE(html.find("3 of 3 rows"), std::string::npos);
  EXPECT_NE(html.find("&lt;b&gt;x&lt;/b&gt;"), std::string::npos) << "cells are escaped";
  EXPECT_NE(html.find("table.filterable"), std::string::npos) << "the filter script is embedded";
  EXPECT_EQ(html.find("http"), std::string::npos) << "nothing fetched";
}

}  // namespace
}  // namespace telekern::report
