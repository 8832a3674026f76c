// The monitor's config map: defaults bind, the README's table is the schema's
// (the contract suite checks it too; this prints the table to paste).
#include "monitor_config.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

namespace telekern::monitor {
namespace {

TEST(MonitorConfigTest, ReadmeTableIsTheSchema) {
  std::string table = schema_to_markdown(monitor_config().schema());
  std::ifstream in(std::string(TELEKERN_SOURCE_DIR) + "/modules/monitor/README.md");
  std::stringstream readme;
  readme << in.rdbuf();
  EXPECT_NE(readme.str().find(table), std::string::npos) << "expected table:\n" << table;
}

}  // namespace
}  // namespace telekern::monitor
