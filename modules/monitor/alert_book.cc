#include "alert_book.h"

#include <absl/strings/ascii.h>
#include <absl/strings/str_cat.h>
#include <absl/strings/str_format.h>

#include "metric_catalog.h"
#include "telekern/proto_time.h"
#include "telekern/strings.h"

namespace telekern::monitor {
namespace {

bool crosses(const std::string& condition, double value, double limit) {
  if (condition == ">") return value > limit;
  if (condition == ">=") return value >= limit;
  if (condition == "<") return value < limit;
  return value <= limit;  // "<="
}

const char* severity_name(v1::Severity severity) {
  switch (severity) {
    case v1::SEVERITY_INFO:
      return "info";
    case v1::SEVERITY_CRITICAL:
      return "critical";
    default:
      return "warning";
  }
}

}  // namespace

absl::StatusOr<std::string> canonical_condition(std::string_view condition) {
  std::string lower = to_lower(trim(condition));
  if (lower == ">" || lower == "gt" || lower == "greater" || lower == "greater_than" ||
      lower == "above")
    return std::string(">");
  if (lower == "<" || lower == "lt" || lower == "less" || lower == "less_than" || lower == "below")
    return std::string("<");
  if (lower == ">=" || lower == "ge" || lower == "gte") return std::string(">=");
  if (lower == "<=" || lower == "le" || lower == "lte") return std::string("<=");
  return absl::InvalidArgumentError(str_cat(
      "unknown condition '", condition, "'; use '>' (greater than) or '<' (less than), or >=, <="));
}

absl::Status normalize_threshold(v1::Threshold& threshold) {
  if (threshold.node_id().empty()) threshold.set_node_id("*");
  auto metric = canonical_metric(threshold.metric());
  if (!metric.ok()) return metric.status();
  threshold.set_metric(*metric);
  auto condition = canonical_condition(threshold.condition().empty() ? ">" : threshold.condition());
  if (!condition.ok()) return condition.status();
  threshold.set_condition(*condition);
  if (threshold.severity() == v1::SEVERITY_UNSPECIFIED) threshold.set_severity(v1::SEVERITY_WARNING);
  if (!threshold.has_clear_threshold()) threshold.set_clear_threshold(threshold.value());
  bool greater = threshold.condition()[0] == '>';
  if (greater && threshold.clear_threshold() > threshold.value())
    return absl::InvalidArgumentError(absl::StrFormat(
        "clear_threshold %g is above value %g for '%s': an alert would clear while still breached; "
        "use a clear value at or below %g",
        threshold.clear_threshold(), threshold.value(), threshold.condition(), threshold.value()));
  if (!greater && threshold.clear_threshold() < threshold.value())
    return absl::InvalidArgumentError(absl::StrFormat(
        "clear_threshold %g is below value %g for '%s'; use a clear value at or above %g",
        threshold.clear_threshold(), threshold.value(), threshold.condition(), threshold.value()));
  if (threshold.for_().seconds() < 0)
    return absl::InvalidArgumentError("'for' must not be negative");
  return absl::OkStatus();
}

std::chrono::milliseconds AlertBook::hold_of(const v1::Threshold& threshold) {
  return to_milliseconds(threshold.for_());
}

void AlertBook::restore(const std::vector<v1::Alert>& open_alerts) {
  for (const auto& alert : open_alerts) {
    open_[alert.id()] = alert;
    open_by_key_[{alert.node_id(), alert.metric(), alert.threshold_id()}] = alert.id();
    if (alert.id() >= next_id_) next_id_ = alert.id() + 1;
  }
}

void AlertBook::set_threshold(const v1::Threshold& threshold) {
  thresholds_[threshold.id()] = threshold;
  if (!threshold.enabled()) {
    for (auto it = pending_.begin(); it != pending_.end();)
      it = std::get<2>(it->first) == threshold.id() ? pending_.erase(it) : std::next(it);
  }
}

std::vector<AlertChange> AlertBook::remove_threshold(uint64_t id, TimePoint now,
                                                     const std::string& actor) {
  std::vector<AlertChange> changes;
  thresholds_.erase(id);
  for (auto it = pending_.begin(); it != pending_.end();)
    it = std::get<2>(it->first) == id ? pending_.erase(it) : std::next(it);
  std::vector<uint64_t> to_resolve;
  for (const auto& [key, alert_id] : open_by_key_)
    if (std::get<2>(key) == id && id != 0) to_resolve.push_back(alert_id);
  for (uint64_t alert_id : to_resolve) {
    double last = open_[alert_id].last_value();
    changes.push_back(resolve(alert_id, now, actor, "threshold deleted", last));
  }
  return changes;
}

std::vector<const v1::Threshold*> AlertBook::effective(const std::string& node_id,
                                                       const std::string& metric) const {
  std::vector<const v1::Threshold*> own, global;
  for (const auto& [id, threshold] : thresholds_) {
    if (!threshold.enabled() || threshold.metric() != metric) continue;
    if (threshold.node_id() == node_id) own.push_back(&threshold);
    if (threshold.node_id() == "*") global.push_back(&threshold);
  }
  return own.empty() ? global : own;
}

std::vector<AlertChange> AlertBook::evaluate(const v1::MetricSample& sample, TimePoint now) {
  std::vector<AlertChange> changes;
  const std::string& node = sample.node_id();
  for (const auto& info : metric_catalog()) {
    std::string metric(info.name);
    double value = info.read(sample);
    auto in_effect = effective(node, metric);
    for (const v1::Threshold* threshold : in_effect) {
      Key key{node, metric, threshold->id()};
      auto open = open_by_key_.find(key);
      if (open != open_by_key_.end()) {
        auto& alert = open_[open->second];
        alert.set_last_value(value);
        // Hysteresis: clear only once the value is back past the clear value.
        if (!crosses(threshold->condition(), value, threshold->clear_threshold()))
          changes.push_back(resolve(open->second, now, "monitor",
                                    absl::StrFormat("%s back to %g", metric, value), value));
        continue;
      }
      if (!crosses(threshold->condition(), value, threshold->value())) {
        pending_.erase(key);  // a spike that did not last
        continue;
      }
      auto [pending, inserted] = pending_.try_emplace(key, Pending{now, value, sample.node_name()});
      pending->second.value = value;
      if (now - pending->second.since >= hold_of(*threshold)) {
        changes.push_back(fire(key, *threshold, pending->second, now));
        pending_.erase(pending);
      }
    }
    // Open alerts of thresholds no longer in effect here (deleted, disabled,
    // or overridden by a node's own threshold) resolve.
    std::vector<uint64_t> stale;
    for (auto it = open_by_key_.lower_bound({node, metric, 0});
         it != open_by_key_.end() && std::get<0>(it->first) == node &&
         std::get<1>(it->first) == metric;
         ++it) {
      bool applies = false;
      for (const auto* threshold : in_effect) applies |= threshold->id() == std::get<2>(it->first);
      if (!applies) stale.push_back(it->second);
    }
    for (uint64_t id : stale)
      changes.push_back(resolve(id, now, "monitor", "threshold no longer applies", value));
  }
  return changes;
}

std::vector<AlertChange> AlertBook::node_status(const std::string& node_id,
                                                const std::string& node_name,
                                                v1::NodeStatus status, TimePoint now) {
  std::vector<AlertChange> changes;
  Key key{node_id, std::string(kNodeStatusMetric), 0};
  auto open = open_by_key_.find(key);
  if (status == v1::NODE_STATUS_ACTIVE) {
    if (open != open_by_key_.end())
      changes.push_back(resolve(open->second, now, "monitor", "node reports again", 0));
    return changes;
  }
  bool down = status == v1::NODE_STATUS_DOWN;
  auto severity = down ? v1::SEVERITY_CRITICAL : v1::SEVERITY_WARNING;
  std::string message =
      str_cat("node ", node_id, " is ", down ? "down" : "stale", ": no samples arriving");
  if (open != open_by_key_.end()) {
    auto& alert = open_[open->second];
    if (alert.severity() == severity) return changes;
    alert.set_severity(severity);
    alert.set_message(message);
    alert.set_value(static_cast<double>(status));
    alert.set_last_value(static_cast<double>(status));
    // An escalation re-opens attention: the acknowledgement was for "stale".
    changes.push_back(change(alert, v1::ALERT_STATE_FIRING, now, "monitor", message, status));
    return changes;
  }
  v1::Alert alert;
  alert.set_id(next_id_++);
  alert.set_node_id(node_id);
  alert.set_node_name(node_name);
  alert.set_metric(std::string(kNodeStatusMetric));
  alert.set_severity(severity);
  alert.set_condition("status");
  alert.set_value(static_cast<double>(status));
  alert.set_last_value(static_cast<double>(status));
  alert.set_message(message);
  *alert.mutable_breach_started_at() = to_timestamp(now);
  *alert.mutable_fired_at() = to_timestamp(now);
  open_by_key_[key] = alert.id();
  auto& stored = open_[alert.id()] = alert;
  changes.push_back(change(stored, v1::ALERT_STATE_FIRING, now, "monitor", message, status));
  return changes;
}

absl::StatusOr<AlertChange> AlertBook::acknowledge(uint64_t alert_id, const std::string& actor,
                                                   const std::string& note, TimePoint now) {
  auto it = open_.find(alert_id);
  if (it == open_.end())
    return absl::NotFoundError(str_cat(
        "alert ", alert_id, " is not open (resolved or unknown); list open ones with "
        "`monitor alerts --filter open`"));
  auto& alert = it->second;
  if (alert.state() == v1::ALERT_STATE_ACKNOWLEDGED)
    return absl::FailedPreconditionError(str_cat("alert ", alert_id, " was acknowledged by ",
                                                      alert.acknowledged_by(), " already"));
  alert.set_acknowledged(true);
  alert.set_acknowledged_by(actor);
  alert.set_note(note);
  *alert.mutable_acknowledged_at() = to_timestamp(now);
  return change(alert, v1::ALERT_STATE_ACKNOWLEDGED, now, actor, note, alert.last_value());
}

AlertChange AlertBook::fire(const Key& key, const v1::Threshold& threshold, const Pending& pending,
                            TimePoint now) {
  v1::Alert alert;
  alert.set_id(next_id_++);
  alert.set_node_id(std::get<0>(key));
  alert.set_node_name(pending.node_name);
  alert.set_metric(std::get<1>(key));
  alert.set_threshold_id(threshold.id());
  alert.set_severity(threshold.severity());
  alert.set_condition(threshold.condition());
  alert.set_threshold_value(threshold.value());
  alert.set_value(pending.value);
  alert.set_last_value(pending.value);
  alert.set_message(absl::StrFormat("%s %s on %s: %g %s %g", severity_name(threshold.severity()),
                                    alert.metric(), alert.node_id(), pending.value,
                                    threshold.condition(), threshold.value()));
  *alert.mutable_breach_started_at() = to_timestamp(pending.since);
  *alert.mutable_fired_at() = to_timestamp(now);
  open_by_key_[key] = alert.id();
  auto& stored = open_[alert.id()] = alert;
  return change(stored, v1::ALERT_STATE_FIRING, now, "monitor", "", pending.value);
}

AlertChange AlertBook::resolve(uint64_t alert_id, TimePoint now, const std::string& actor,
                               const std::string& note, double value) {
  v1::Alert alert = open_[alert_id];
  open_.erase(alert_id);
  open_by_key_.erase({alert.node_id(), alert.metric(), alert.threshold_id()});
  *alert.mutable_resolved_at() = to_timestamp(now);
  return change(alert, v1::ALERT_STATE_RESOLVED, now, actor, note, value);
}

AlertChange AlertBook::change(v1::Alert& alert, v1::AlertState state, TimePoint now,
                              const std::string& actor, const std::string& note, double value) {
  alert.set_state(state);
  AlertChange result;
  result.alert = alert;
  auto& event = result.event;
  event.set_alert_id(alert.id());
  event.set_state(state);
  *event.mutable_time() = to_timestamp(now);
  event.set_actor(actor);
  event.set_note(note);
  event.set_value(value);
  event.set_node_id(alert.node_id());
  event.set_metric(alert.metric());
  event.set_severity(alert.severity());
  return result;
}

}  // namespace telekern::monitor
