// The alert state machine on its own: `for` durations, spikes, hysteresis,
// acknowledgement, layered thresholds and node liveness; time is given.
#include "alert_book.h"

#include <gtest/gtest.h>

#include "telekern/proto_time.h"

namespace telekern::monitor {
namespace {

using namespace std::chrono_literals;

v1::Threshold cpu_threshold(uint64_t id, const std::string& node, double value, double clear,
                            std::chrono::seconds hold) {
  v1::Threshold t;
  t.set_id(id);
  t.set_node_id(node);
  t.set_metric("cpu");
  t.set_condition(">");
  t.set_value(value);
  t.set_clear_threshold(clear);
  t.set_severity(v1::SEVERITY_CRITICAL);
  t.mutable_for_()->set_seconds(hold.count());
  t.set_enabled(true);
  EXPECT_TRUE(normalize_threshold(t).ok());
  return t;
}

v1::MetricSample cpu(const std::string& node, double value, TimePoint at) {
  v1::MetricSample s;
  s.set_node_id(node);
  s.set_node_name(node + "-name");
  s.set_cpu_percent(value);
  *s.mutable_time() = to_timestamp(at);
  return s;
}

size_t count_state(const std::vector<AlertChange>& changes, v1::AlertState state) {
  size_t n = 0;
  for (const auto& c : changes) n += c.event.state() == state;
  return n;
}

TEST(AlertBookTest, SpikeShorterThanForDoesNotFire) {
  AlertBook book;
  book.set_threshold(cpu_threshold(1, "*", 90, 80, 30s));
  TimePoint t0{};
  EXPECT_TRUE(book.evaluate(cpu("n1", 99, t0), t0).empty());
  EXPECT_TRUE(book.evaluate(cpu("n1", 10, t0 + 5s), t0 + 5s).empty());
  EXPECT_TRUE(book.tick(t0 + 60s, [](const std::string&) { return true; }).empty());
  EXPECT_TRUE(book.open_alerts().empty());
}

TEST(AlertBookTest, SustainedBreachFiresOnceThenHysteresisThenResolve) {
  AlertBook book;
  book.set_threshold(cpu_threshold(1, "*", 90, 80, 30s));
  TimePoint t0{};
  std::vector<AlertChange> all;
  for (int i = 0; i <= 12; ++i) {
    auto at = t0 + std::chrono::seconds(5 * i);
    auto changes = book.evaluate(cpu("n1", 95, at), at);
    all.insert(all.end(), changes.begin(), changes.end());
    if (i < 6) EXPECT_TRUE(changes.empty()) << "fired early at " << 5 * i << "s";
  }
  ASSERT_EQ(count_state(all, v1::ALERT_STATE_FIRING), 1u);
  EXPECT_EQ(all[0].alert.value(), 95);
  EXPECT_EQ(all[0].alert.severity(), v1::SEVERITY_CRITICAL);
  ASSERT_EQ(book.open_alerts().size(), 1u);
  // Between clear (80) and fire (90): stays open, no new alert.
  EXPECT_TRUE(book.evaluate(cpu("n1", 85, t0 + 70s), t0 + 70s).empty());
  EXPECT_EQ(book.open_alerts().size(), 1u);
  auto resolved = book.evaluate(cpu("n1", 79, t0 + 75s), t0 + 75s);
  ASSERT_EQ(count_state(resolved, v1::ALERT_STATE_RESOLVED), 1u);
  EXPECT_TRUE(book.open_alerts().empty());
}

TEST(AlertBookTest, TickFiresWhenForElapsesBetweenSamples) {
  AlertBook book;
  book.set_threshold(cpu_threshold(1, "*", 90, 90, 10s));
  TimePoint t0{};
  EXPECT_TRUE(book.evaluate(cpu("n1", 95, t0), t0).empty());
  EXPECT_TRUE(book.tick(t0 + 9s, [](const std::string&) { return true; }).empty());
  // A node that went silent does not fire on old data.
  EXPECT_TRUE(book.tick(t0 + 10s, [](const std::string&) { return false; }).empty());
  auto fired = book.tick(t0 + 10s, [](const std::string&) { return true; });
  EXPECT_EQ(count_state(fired, v1::ALERT_STATE_FIRING), 1u);
  EXPECT_TRUE(book.tick(t0 + 20s, [](const std::string&) { return true; }).empty());
}

TEST(AlertBookTest, AcknowledgementRecordedAndKeptThroughResolve) {
  AlertBook book;
  book.set_threshold(cpu_threshold(1, "*", 90, 80, 0s));
  TimePoint t0{};
  auto fired = book.evaluate(cpu("n1", 95, t0), t0);
  ASSERT_EQ(fired.size(), 1u);
  uint64_t id = fired[0].alert.id();
  auto acked = book.acknowledge(id, "alice", "looking", t0 + 1s);
  ASSERT_TRUE(acked.ok()) << acked.status();
  EXPECT_EQ(acked->alert.state(), v1::ALERT_STATE_ACKNOWLEDGED);
  EXPECT_EQ(acked->alert.acknowledged_by(), "alice");
  EXPECT_EQ(acked->alert.note(), "looking");
  EXPECT_EQ(from_timestamp(acked->alert.acknowledged_at()), t0 + 1s);
  EXPECT_EQ(book.acknowledge(id, "bob", "", t0 + 2s).status().code(),
            absl::StatusCode::kFailedPrecondition);
  // Still breached: no second alert.
  EXPECT_TRUE(book.evaluate(cpu("n1", 97, t0 + 3s), t0 + 3s).empty());
  auto resolved = book.evaluate(cpu("n1", 50, t0 + 4s), t0 + 4s);
  ASSERT_EQ(resolved.size(), 1u);
  EXPECT_EQ(resolved[0].alert.state(), v1::ALERT_STATE_RESOLVED);
  EXPECT_TRUE(resolved[0].alert.acknowledged());
  EXPECT_EQ(book.acknowledge(id, "bob", "", t0 + 5s).status().code(), absl::StatusCode::kNotFound);
  // A new breach is a new alert.
  auto again = book.evaluate(cpu("n1", 99, t0 + 6s), t0 + 6s);
  ASSERT_EQ(again.size(), 1u);
  EXPECT_NE(again[0].alert.id(), id);
}

TEST(AlertBookTest, NodeThresholdOverridesGlobal) {
  AlertBook book;
  book.set_threshold(cpu_threshold(1, "*", 50, 50, 0s));
  book.set_threshold(cpu_threshold(2, "db", 95, 95, 0s));
  TimePoint t0{};
  auto web = book.evaluate(cpu("web", 60, t0), t0);
  ASSERT_EQ(web.size(), 1u);
  EXPECT_EQ(web[0].alert.threshold_id(), 1u);
  EXPECT_TRUE(book.evaluate(cpu("db", 60, t0), t0).empty());
  auto db = book.evaluate(cpu("db", 96, t0 + 1s), t0 + 1s);
  ASSERT_EQ(db.size(), 1u);
  EXPECT_EQ(db[0].alert.threshold_id(), 2u);
}

TEST(AlertBookTest, NodeStatusStaleThenDownThenBack) {
  AlertBook book;
  TimePoint t0{};
  auto stale = book.node_status("n1", "one", v1::NODE_STATUS_STALE, t0);
  ASSERT_EQ(stale.size(), 1u);
  EXPECT_EQ(stale[0].alert.severity(), v1::SEVERITY_WARNING);
  auto down = book.node_status("n1", "one", v1::NODE_STATUS_DOWN, t0 + 1s);
  ASSERT_EQ(down.size(), 1u);
  EXPECT_EQ(down[0].alert.id(), stale[0].alert.id());  // the same alert, escalated
  EXPECT_EQ(down[0].alert.severity(), v1::SEVERITY_CRITICAL);
  EXPECT_TRUE(book.node_status("n1", "one", v1::NODE_STATUS_DOWN, t0 + 2s).empty());
  auto back = book.node_status("n1", "one", v1::NODE_STATUS_ACTIVE, t0 + 3s);
  ASSERT_EQ(back.size(), 1u);
  EXPECT_EQ(back[0].alert.state(), v1::ALERT_STATE_RESOLVED);
}

TEST(AlertBookTest, ThresholdValidationNamesTheProblem) {
  v1::Threshold t;
  t.set_metric("cpu");
  t.set_condition(">");
  t.set_value(90);
  t.set_clear_threshold(95);
  auto status = normalize_threshold(t);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(std::string(status.message()).find("clear_threshold"), std::string::npos);
  t.set_clear_threshold(80);
  t.set_metric("gpu");
  EXPECT_NE(std::string(normalize_threshold(t).message()).find("unknown metric 'gpu'"),
            std::string::npos);
  t.set_metric("cpu_percent");
  t.set_condition("above");
  ASSERT_TRUE(normalize_threshold(t).ok());
  EXPECT_EQ(t.metric(), "cpu");
  EXPECT_EQ(t.node_id(), "*");
  EXPECT_EQ(t.severity(), v1::SEVERITY_WARNING);
}

}  // namespace
}  // namespace telekern::monitor
