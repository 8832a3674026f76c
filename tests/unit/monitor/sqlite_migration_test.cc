// A database written by the first schema (samples keyed by node, then time)
// opens with every sample intact under the current one.
#include <gtest/gtest.h>

#include "monitor_store.h"
#include "telekern/proto_time.h"
#include "telekern/sqlite.h"
#include "tests/support/process.h"

namespace telekern::monitor {
namespace {

TEST(SqliteMigrationTest, SamplesOfSchemaOneSurviveTheMoveToTimeOrder) {
  testing::TempDir dir("monitor-migration");
  std::string path = (dir.path() / "monitor.db").string();
  {
    auto db = sqlite::Database::open(path);
    ASSERT_TRUE(db.ok()) << db.status();
    ASSERT_TRUE((*db)
                    ->exec(R"sql(
CREATE TABLE schema_version (version INTEGER NOT NULL);
INSERT INTO schema_version VALUES (1);
CREATE TABLE samples (
  node_id TEXT NOT NULL, ts_ms INTEGER NOT NULL, node_name TEXT NOT NULL,
  cpu REAL, memory REAL, disk_read REAL, disk_write REAL, network_rx REAL, network_tx REAL,
  load1 REAL, load5 REAL, load15 REAL, memory_used INTEGER, memory_total INTEGER,
  interval_ms INTEGER, detail BLOB,
  PRIMARY KEY (node_id, ts_ms)) WITHOUT ROWID;
CREATE INDEX samples_by_time ON samples (ts_ms);
CREATE TABLE nodes (node_id TEXT PRIMARY KEY, last_seen_ms INTEGER, body BLOB NOT NULL);
CREATE TABLE thresholds (id INTEGER PRIMARY KEY AUTOINCREMENT, node_id TEXT, metric TEXT,
  body BLOB NOT NULL);
CREATE TABLE alerts (id INTEGER PRIMARY KEY, node_id TEXT NOT NULL, state INTEGER NOT NULL,
  severity INTEGER NOT NULL, acknowledged INTEGER NOT NULL, fired_ms INTEGER, body BLOB NOT NULL);
CREATE TABLE alert_events (seq INTEGER PRIMARY KEY AUTOINCREMENT, alert_id INTEGER NOT NULL,
  node_id TEXT NOT NULL, ts_ms INTEGER NOT NULL, body BLOB NOT NULL);
CREATE TABLE users (name TEXT PRIMARY KEY, password_hash TEXT NOT NULL, role INTEGER NOT NULL,
  created_ms INTEGER NOT NULL);
INSERT INTO samples (node_id, ts_ms, node_name, cpu, memory, interval_ms)
  VALUES ('b', 2000, 'B', 20, 40, 5000), ('a', 3000, 'A', 30, 60, 5000),
         ('a', 1000, 'A', 10, 50, 5000);
)sql")
                    .ok());
  }
  auto store = open_sqlite_store(path);
  ASSERT_TRUE(store.ok()) << store.status();
  std::vector<std::pair<std::string, double>> all;
  auto scan = (*store)->scan_samples("", StoreTime(std::chrono::milliseconds(0)),
                                     StoreTime(std::chrono::milliseconds(10'000)),
                                     [&](const v1::MetricSample& s) {
                                       all.emplace_back(s.node_id(), s.cpu_percent());
                                       return true;
                                     });
  ASSERT_TRUE(scan.ok()) << scan;
  EXPECT_EQ(all, (std::vector<std::pair<std::string, double>>{{"a", 10}, {"b", 20}, {"a", 30}}));
  std::vector<int64_t> times;
  ASSERT_TRUE((*store)
                  ->scan_samples("a", StoreTime(std::chrono::milliseconds(0)),
                                 StoreTime(std::chrono::milliseconds(10'000)),
                                 [&](const v1::MetricSample& s) {
                                   times.push_back(s.time().seconds() * 1000 +
                                                   s.time().nanos() / 1'000'000);
                                   return true;
                                 })
                  .ok());
  EXPECT_EQ(times, (std::vector<int64_t>{1000, 3000}));
  // New samples go in after the migration, and the old key rules still hold.
  v1::MetricSample fresh;
  fresh.set_node_id("a");
  fresh.set_node_name("A");
  fresh.set_cpu_percent(99);
  *fresh.mutable_time() = to_timestamp(StoreTime(std::chrono::milliseconds(4000)));
  ASSERT_TRUE((*store)->insert_samples({fresh}).ok());
  ASSERT_TRUE((*store)->insert_samples({fresh}).ok());  // a redelivery is skipped
  size_t count = 0;
  ASSERT_TRUE((*store)
                  ->scan_samples("a", StoreTime(std::chrono::milliseconds(0)),
                                 StoreTime(std::chrono::milliseconds(10'000)),
                                 [&](const v1::MetricSample&) { return ++count, true; })
                  .ok());
  EXPECT_EQ(count, 3u);
}

}  // namespace
}  // namespace telekern::monitor
