// The alert state machine, without storage or threads: thresholds in layers
// (a node's own thresholds for a metric replace the global "*" ones), a
// breach must hold for the threshold's `for` before it fires (pending ->
// firing), it clears only past the clear value (hysteresis), an
// acknowledgement lasts until the alert resolves, and there is at most one
// open alert per (node, metric, threshold). Node liveness (stale, down)
// alerts through the same book. Every change comes back as an AlertChange
// for the engine to store and broadcast.
#pragma once

#include <absl/status/statusor.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "telekern/monitor/v1/monitor.pb.h"

namespace telekern::monitor {

using Clock = std::chrono::system_clock;
using TimePoint = Clock::time_point;

struct AlertChange {
  v1::Alert alert;       // after the change
  v1::AlertEvent event;  // the change
};

// Parses ">", "<", ">=", "<=", "gt", "lt", "greater", "less" to the symbol form.
absl::StatusOr<std::string> canonical_condition(std::string_view condition);
// Checks a threshold's fields and fills defaults (severity, clear value, enabled).
absl::Status normalize_threshold(v1::Threshold& threshold);

class AlertBook {
 public:
  // `next_alert_id`: one past the largest id ever stored.
  explicit AlertBook(uint64_t next_alert_id = 1) : next_id_(next_alert_id) {}

  // Alerts still open from an earlier run (firing or acknowledged).
  void restore(const std::vector<v1::Alert>& open_alerts);
  void set_threshold(const v1::Threshold& threshold);
  // Resolves the threshold's open alerts and forgets its pending breaches.
  std::vector<AlertChange> remove_threshold(uint64_t id, TimePoint now, const std::string& actor);

  // Thresholds in effect for a node and metric (node's own, else global).
  std::vector<const v1::Threshold*> effective(const std::string& node_id,
                                              const std::string& metric) const;

  // Evaluates a new sample of a node at `now`.
  std::vector<AlertChange> evaluate(const v1::MetricSample& sample, TimePoint now);
  // Fires pending breaches whose `for` has elapsed while the node kept
  // reporting (its last sample still breached); `fresh(node_id)` says whether
  // the node is active.
  template <typename Fresh>
  std::vector<AlertChange> tick(TimePoint now, Fresh fresh) {
    std::vector<AlertChange> changes;
    for (auto it = pending_.begin(); it != pending_.end();) {
      auto& [key, pending] = *it;
      auto threshold = thresholds_.find(std::get<2>(key));
      if (threshold == thresholds_.end()) {
        it = pending_.erase(it);
        continue;
      }
      if (fresh(std::get<0>(key)) && now - pending.since >= hold_of(threshold->second)) {
        changes.push_back(fire(key, threshold->second, pending, now));
        it = pending_.erase(it);
        continue;
      }
      ++it;
    }
    return changes;
  }
  // A node's liveness changed: stale opens a warning alert, down raises it
  // to critical, active resolves it.
  std::vector<AlertChange> node_status(const std::string& node_id, const std::string& node_name,
                                       v1::NodeStatus status, TimePoint now);
  absl::StatusOr<AlertChange> acknowledge(uint64_t alert_id, const std::string& actor,
                                          const std::string& note, TimePoint now);

  const std::map<uint64_t, v1::Alert>& open_alerts() const { return open_; }
  size_t pending_count() const { return pending_.size(); }
  const std::map<uint64_t, v1::Threshold>& thresholds() const { return thresholds_; }

 private:
  using Key = std::tuple<std::string, std::string, uint64_t>;  // node, metric, threshold
  struct Pending {
    TimePoint since;
    double value = 0;
    std::string node_name;
  };
  static std::chrono::milliseconds hold_of(const v1::Threshold& threshold);
  AlertChange fire(const Key& key, const v1::Threshold& threshold, const Pending& pending,
                   TimePoint now);
  AlertChange resolve(uint64_t alert_id, TimePoint now, const std::string& actor,
                      const std::string& note, double value);
  AlertChange change(v1::Alert& alert, v1::AlertState state, TimePoint now,
                     const std::string& actor, const std::string& note, double value);

  uint64_t next_id_;
  std::map<uint64_t, v1::Threshold> thresholds_;
  std::map<Key, Pending> pending_;
  std::map<Key, uint64_t> open_by_key_;
  std::map<uint64_t, v1::Alert> open_;
};

}  // namespace telekern::monitor
