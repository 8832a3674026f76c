// The bench commands in telesh against a real telekernd (broker + bench):
// run with streamed windows, list, show, report, compare, cancel errors.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "tests/support/telekernd.h"
#include "tests/support/telesh.h"

namespace telekern::testing {
namespace {

using nlohmann::json;

std::vector<json> json_lines(const std::string& output) {
  std::vector<json> out;
  std::istringstream in(output);
  std::string line;
  while (std::getline(in, line)) {
    auto parsed = json::parse(line, nullptr, false);
    if (!parsed.is_discarded() && parsed.is_object()) out.push_back(std::move(parsed));
  }
  return out;
}

TEST(BenchShell, RunRunsShowReportCompare) {
  TelekerndOptions options;
  options.modules_dir = std::string(TELEKERN_BUILD_DIR) + "/modules";
  options.load = {"broker", "bench"};
  options.config_yaml = "modules:\n  bench:\n    window: 1s\n    health_interval: 1s\n";
  Telekernd daemon(options);
  ASSERT_TRUE(daemon.ready()) << daemon.log();
  auto workload = daemon.dir() / "w.yaml";
  std::ofstream(workload) << "name: shell run\ntopics: 1\npartitionsPerTopic: 1\nmessageSize: 128\n"
                             "producersPerTopic: 1\nproducerRate: 100\n"
                             "testDurationMinutes: 2s\nwarmupDurationMinutes: 1s\n";

  std::vector<std::string> ids;
  for (const char* driver : {"telekern", "sink"}) {
    auto run = run_telesh(
        daemon,
        std::string("-o json -c ") + shell_quote(std::string("bench run ") + workload.string() +
                                                 " --driver " + driver + " --report"),
        {.redirect = "2>&1"});
    ASSERT_EQ(run.exit_code, 0) << run.output;
    auto lines = json_lines(run.output);
    ASSERT_GE(lines.size(), 4u) << run.output;
    EXPECT_TRUE(lines.front().value("started", false));
    size_t windows = 0;
    for (const auto& line : lines) windows += line.contains("window") ? 1 : 0;
    EXPECT_GE(windows, 3u) << run.output;
    const auto& finished = lines.back();
    ASSERT_TRUE(finished.contains("finished")) << run.output;
    EXPECT_EQ(finished["finished"]["state"], "completed");
    EXPECT_EQ(finished["finished"]["driver"], driver);
    EXPECT_TRUE(std::filesystem::exists(finished["report_path"].get<std::string>()));
    // done/total (whole seconds) drive telesh's progress bar on a terminal.
    EXPECT_EQ(finished.value("total", 0), 3) << "1 s warm-up + 2 s test: " << run.output;
    EXPECT_EQ(finished.value("done", -1), finished.value("total", 0)) << run.output;
    EXPECT_LE(lines[1].value("done", 0), lines[1].value("total", 0)) << run.output;
    ids.push_back(finished["run_id"]);
  }

  auto runs = telesh_commands(daemon, "bench runs");
  ASSERT_EQ(runs.exit_code, 0) << runs.output;
  EXPECT_NE(runs.output.find(ids[0]), std::string::npos) << runs.output;
  EXPECT_NE(runs.output.find(ids[1]), std::string::npos) << runs.output;
  EXPECT_LT(runs.output.find(ids[1]), runs.output.find(ids[0])) << "newest first";

  auto show = run_telesh(daemon, "-o json -c " + shell_quote("bench show " + ids[0]));
  ASSERT_EQ(show.exit_code, 0) << show.output;
  auto shown = json::parse(show.output);
  auto result = json::parse(shown["result_json"].get<std::string>());
  EXPECT_TRUE(result.contains("aggregatedEndToEndLatency99pct"));

  auto report = run_telesh(daemon, "-o json -c " + shell_quote("bench report " + ids[0]));
  ASSERT_EQ(report.exit_code, 0) << report.output;
  EXPECT_TRUE(std::filesystem::exists(json::parse(report.output)["path"].get<std::string>()));

  // The report over the HTTP gateway, as a browser gets it.
  auto [code, page] = daemon.http_get("/bench/runs/" + ids[0] + "/report");
  EXPECT_EQ(code, 200);
  EXPECT_NE(page.find("<html"), std::string::npos);
  EXPECT_NE(page.find(ids[0]), std::string::npos);

  auto compare = telesh_commands(daemon, "bench compare " + ids[0] + " " + ids[1]);
  ASSERT_EQ(compare.exit_code, 0) << compare.output;
  EXPECT_NE(compare.output.find("publish latency p99 ms"), std::string::npos) << compare.output;

  auto cancel =
      run_telesh(daemon, "-c " + shell_quote("bench cancel " + ids[0]), {.redirect = "2>&1"});
  EXPECT_NE(cancel.exit_code, 0);
  EXPECT_NE(cancel.output.find("not running"), std::string::npos) << cancel.output;
}

}  // namespace
}  // namespace telekern::testing
