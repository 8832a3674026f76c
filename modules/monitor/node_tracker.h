// Node liveness: a node registers itself with its first sample, is active
// while samples arrive, stale after `stale_intervals` of its own interval
// without one, and down after `down_after`. Times are the backend's clock at
// receipt (agents' clocks may be off).
#pragma once

#include <chrono>
#include <map>
#include <string>
#include <vector>

#include "alert_book.h"
#include "telekern/monitor/v1/monitor.pb.h"

namespace telekern::monitor {

struct NodeStatusChange {
  std::string node_id;
  std::string node_name;
  v1::NodeStatus status;
};

class NodeTracker {
 public:
  NodeTracker(uint32_t stale_intervals, std::chrono::milliseconds down_after,
              std::chrono::milliseconds default_interval)
      : stale_intervals_(stale_intervals),
        down_after_(down_after),
        default_interval_(default_interval) {}

  // Nodes known from an earlier run; their status is re-derived by sweep().
  void restore(const v1::Node& node, TimePoint last_seen);
  // Records a sample; false when it is not newer than the node's latest
  // (a redelivery), which must not be evaluated again. `status_change` is set
  // when the node came back.
  bool observe(const v1::MetricSample& sample, TimePoint now, std::vector<NodeStatusChange>& changes);
  // Moves nodes to stale or down as time passes.
  std::vector<NodeStatusChange> sweep(TimePoint now);

  bool active(const std::string& node_id) const;
  const std::map<std::string, v1::Node>& nodes() const { return nodes_; }
  const v1::Node* find(const std::string& node_id) const;

 private:
  v1::NodeStatus status_for(const v1::Node& node, TimePoint now) const;
  uint32_t stale_intervals_;
  std::chrono::milliseconds down_after_;
  std::chrono::milliseconds default_interval_;
  std::map<std::string, v1::Node> nodes_;
  std::map<std::string, TimePoint> last_seen_;
};

}  // namespace telekern::monitor
