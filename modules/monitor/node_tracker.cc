#include "node_tracker.h"

#include "telekern/proto_time.h"

namespace telekern::monitor {

void NodeTracker::restore(const v1::Node& node, TimePoint last_seen) {
  nodes_[node.node_id()] = node;
  last_seen_[node.node_id()] = last_seen;
}

bool NodeTracker::observe(const v1::MetricSample& sample, TimePoint now,
                          std::vector<NodeStatusChange>& changes) {
  auto [it, created] = nodes_.try_emplace(sample.node_id());
  v1::Node& node = it->second;
  if (!created && node.has_latest() &&
      from_timestamp(sample.time()) <= from_timestamp(node.latest().time()))
    return false;
  if (created) {
    node.set_node_id(sample.node_id());
    *node.mutable_first_seen() = to_timestamp(now);
    node.set_status(v1::NODE_STATUS_ACTIVE);
    *node.mutable_status_since() = to_timestamp(now);
  }
  if (!sample.node_name().empty()) node.set_node_name(sample.node_name());
  if (sample.has_interval()) *node.mutable_interval() = sample.interval();
  *node.mutable_last_seen() = to_timestamp(now);
  *node.mutable_latest() = sample;
  node.set_samples(node.samples() + 1);
  last_seen_[node.node_id()] = now;
  if (node.status() != v1::NODE_STATUS_ACTIVE) {
    node.set_status(v1::NODE_STATUS_ACTIVE);
    *node.mutable_status_since() = to_timestamp(now);
    changes.push_back({node.node_id(), node.node_name(), v1::NODE_STATUS_ACTIVE});
  }
  return true;
}

v1::NodeStatus NodeTracker::status_for(const v1::Node& node, TimePoint now) const {
  auto interval = node.has_interval() ? to_milliseconds(node.interval()) : default_interval_;
  if (interval.count() <= 0) interval = default_interval_;
  auto silent = now - last_seen_.at(node.node_id());
  if (silent >= down_after_) return v1::NODE_STATUS_DOWN;
  if (silent >= interval * stale_intervals_) return v1::NODE_STATUS_STALE;
  return v1::NODE_STATUS_ACTIVE;
}

std::vector<NodeStatusChange> NodeTracker::sweep(TimePoint now) {
  std::vector<NodeStatusChange> changes;
  for (auto& [id, node] : nodes_) {
    auto status = status_for(node, now);
    if (status == node.status()) continue;
    // Only time moves a node towards down; coming back happens in observe().
    if (status == v1::NODE_STATUS_ACTIVE) continue;
    if (node.status() == v1::NODE_STATUS_DOWN) continue;
    node.set_status(status);
    *node.mutable_status_since() = to_timestamp(now);
    changes.push_back({id, node.node_name(), status});
  }
  return changes;
}

bool NodeTracker::active(const std::string& node_id) const {
  auto it = nodes_.find(node_id);
  return it != nodes_.end() && it->second.status() == v1::NODE_STATUS_ACTIVE;
}

const v1::Node* NodeTracker::find(const std::string& node_id) const {
  auto it = nodes_.find(node_id);
  return it == nodes_.end() ? nullptr : &it->second;
}

}  // namespace telekern::monitor
