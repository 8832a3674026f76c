// One set of storage tests run against both stores: SQLite in a temp dir and
// a real PostgreSQL 15 started by the fixture (initdb'd into a temp dir).
#include <gtest/gtest.h>

#include <atomic>

#include "monitor_store.h"
#include "telekern/proto_time.h"
#include "tests/support/postgres_server.h"

namespace telekern::monitor {
namespace {

using namespace std::chrono_literals;

testing::PostgresServer& postgres() {
  static testing::PostgresServer server;  // once per binary, stopped at exit
  return server;
}

class StoreTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (GetParam() == "sqlite") {
      auto store = open_sqlite_store((dir_.path() / "m.db").string());
      ASSERT_TRUE(store.ok()) << store.status();
      store_ = std::move(*store);
    } else {
      auto& server = postgres();
      ASSERT_TRUE(server.ready()) << server.error();
      static std::atomic<int> counter{0};
      std::string conninfo = server.create_database("monitor_" + std::to_string(++counter));
      auto store = open_postgres_store(conninfo);
      ASSERT_TRUE(store.ok()) << store.status();
      store_ = std::move(*store);
      // Migrating again is a no-op.
      ASSERT_TRUE(store_->migrate().ok());
    }
  }

  v1::MetricSample sample(const std::string& node, int64_t ms, double cpu) {
    v1::MetricSample s;
    s.set_node_id(node);
    s.set_node_name("Node " + node);
    *s.mutable_time() = to_timestamp(StoreTime(std::chrono::milliseconds(ms)));
    s.set_cpu_percent(cpu);
    s.set_memory_percent(12.125);
    s.set_disk_write_mbps(0.1);
    s.set_network_tx_mbps(1e-7);
    s.set_load15(3);
    s.set_memory_total_bytes(1ULL << 34);
    s.mutable_interval()->set_seconds(5);
    return s;
  }

  std::vector<v1::MetricSample> scan(const std::string& node, int64_t from, int64_t to) {
    std::vector<v1::MetricSample> out;
    auto status = store_->scan_samples(node, StoreTime(std::chrono::milliseconds(from)),
                                       StoreTime(std::chrono::milliseconds(to)),
                                       [&](const v1::MetricSample& s) {
                                         out.push_back(s);
                                         return true;
                                       });
    EXPECT_TRUE(status.ok()) << status;
    return out;
  }

  testing::TempDir dir_{"monitor-store"};
  std::unique_ptr<MonitorStore> store_;
};

TEST_P(StoreTest, SamplesRoundTripDeduplicatedAndOrdered) {
  std::vector<v1::MetricSample> batch;
  for (int i = 0; i < 5000; ++i) batch.push_back(sample(i % 2 ? "a" : "b", 1000 + i / 2, i * 0.5));
  auto with_cores = sample("a", 999, 1);
  with_cores.add_cores()->set_cpu_percent(77);
  batch.push_back(with_cores);
  ASSERT_TRUE(store_->insert_samples(batch).ok());
  ASSERT_TRUE(store_->insert_samples({sample("a", 1000, 123)}).ok());  // duplicate: skipped
  auto all = scan("", 0, 1'000'000);
  ASSERT_EQ(all.size(), 5001u);
  for (size_t i = 1; i < all.size(); ++i)
    ASSERT_LE(from_timestamp(all[i - 1].time()), from_timestamp(all[i].time()));
  auto a = scan("a", 0, 1'000'000);
  ASSERT_EQ(a.size(), 2501u);
  EXPECT_EQ(a[0].cores_size(), 1);
  EXPECT_EQ(a[0].cores(0).cpu_percent(), 77);
  EXPECT_EQ(a[1].cpu_percent(), 0.5);  // the first stored, not the duplicate
  EXPECT_EQ(a[1].memory_percent(), 12.125);
  EXPECT_EQ(a[1].network_tx_mbps(), 1e-7);
  EXPECT_EQ(a[1].network_mbps(), 1e-7);
  EXPECT_EQ(a[1].memory_total_bytes(), 1ULL << 34);
  EXPECT_EQ(a[1].node_name(), "Node a");
  EXPECT_EQ(scan("a", 1000, 1010).size(), 10u);
  auto removed = store_->delete_samples_before(StoreTime(std::chrono::milliseconds(2000)));
  ASSERT_TRUE(removed.ok());
  EXPECT_EQ(*removed, 2001u);
  EXPECT_EQ(scan("", 0, 1'000'000).size(), 3000u);
}

TEST_P(StoreTest, SamplesWithinOneMillisecondAreKeptApartWithTheirExactTimes) {
  auto first = sample("a", 5000, 10);
  auto second = sample("a", 5000, 20);
  second.mutable_time()->set_nanos(second.time().nanos() + 250'000);  // 0.25 ms later
  auto third = sample("a", 5000, 30);
  third.mutable_time()->set_nanos(third.time().nanos() + 999'999);
  ASSERT_TRUE(store_->insert_samples({third, first, second}).ok());
  ASSERT_TRUE(store_->insert_samples({second}).ok());  // a redelivery: same nanosecond, skipped
  for (const std::string node : {"", "a"}) {
    auto got = scan(node, 5000, 5001);
    ASSERT_EQ(got.size(), 3u) << "node filter '" << node << "'";
    EXPECT_EQ(got[0].cpu_percent(), 10);
    EXPECT_EQ(got[1].cpu_percent(), 20);
    EXPECT_EQ(got[1].time().nanos() - got[0].time().nanos(), 250'000);
    EXPECT_EQ(got[2].cpu_percent(), 30);
    EXPECT_EQ(from_timestamp(got[2].time()), from_timestamp(third.time()));
  }
}

TEST_P(StoreTest, ThresholdsAlertsEventsNodesUsers) {
  v1::Threshold threshold;
  threshold.set_node_id("*");
  threshold.set_metric("cpu");
  threshold.set_value(90);
  auto id = store_->save_threshold(threshold);
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_GT(*id, 0u);
  threshold.set_id(*id);
  threshold.set_value(95);
  ASSERT_TRUE(store_->save_threshold(threshold).ok());
  auto loaded = store_->load_thresholds();
  ASSERT_TRUE(loaded.ok());
  ASSERT_EQ(loaded->size(), 1u);
  EXPECT_EQ((*loaded)[0].value(), 95);
  ASSERT_TRUE(store_->delete_threshold(*id).ok());
  EXPECT_TRUE(store_->load_thresholds()->empty());

  v1::Alert alert;
  alert.set_id(7);
  alert.set_node_id("a");
  alert.set_state(v1::ALERT_STATE_FIRING);
  alert.set_severity(v1::SEVERITY_CRITICAL);
  v1::AlertEvent event;
  event.set_alert_id(7);
  event.set_node_id("a");
  event.set_state(v1::ALERT_STATE_FIRING);
  *event.mutable_time() = to_timestamp(StoreTime(10s));
  ASSERT_TRUE(store_->save_alert(alert, event).ok());
  alert.set_state(v1::ALERT_STATE_ACKNOWLEDGED);
  alert.set_acknowledged(true);
  event.set_state(v1::ALERT_STATE_ACKNOWLEDGED);
  ASSERT_TRUE(store_->save_alert(alert, event).ok());
  AlertQuery open;
  open.states = {v1::ALERT_STATE_FIRING, v1::ALERT_STATE_ACKNOWLEDGED};
  EXPECT_EQ(store_->list_alerts(open)->size(), 1u);
  AlertQuery unacked;
  unacked.acknowledged = false;
  EXPECT_TRUE(store_->list_alerts(unacked)->empty());
  AlertQuery other_node;
  other_node.node_id = "b";
  EXPECT_TRUE(store_->list_alerts(other_node)->empty());
  EXPECT_EQ(*store_->max_alert_id(), 7u);
  auto events = store_->alert_events(7, "", StoreTime{}, 100);
  ASSERT_TRUE(events.ok());
  ASSERT_EQ(events->size(), 2u);
  EXPECT_EQ((*events)[1].state(), v1::ALERT_STATE_ACKNOWLEDGED);

  v1::Node node;
  node.set_node_id("a");
  node.set_samples(3);
  ASSERT_TRUE(store_->save_nodes({node}).ok());
  node.set_samples(4);
  ASSERT_TRUE(store_->save_nodes({node}).ok());
  auto nodes = store_->load_nodes();
  ASSERT_TRUE(nodes.ok());
  ASSERT_EQ(nodes->size(), 1u);
  EXPECT_EQ((*nodes)[0].samples(), 4u);

  ASSERT_TRUE(store_->save_user({"bob", "pbkdf2-sha256$1$00$00", 2, 5}).ok());
  auto users = store_->list_users();
  ASSERT_TRUE(users.ok());
  ASSERT_EQ(users->size(), 1u);
  EXPECT_EQ((*users)[0].role, 2);
  ASSERT_TRUE(store_->delete_user("bob").ok());
  EXPECT_EQ(store_->delete_user("bob").code(), absl::StatusCode::kNotFound);
}

INSTANTIATE_TEST_SUITE_P(Stores, StoreTest, ::testing::Values("sqlite", "postgresql"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace telekern::monitor
