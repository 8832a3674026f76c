#include "router.h"

#include <algorithm>
#include <sstream>

#include "hash.h"
#include "telekern/strings.h"

namespace telekern::proxy {

const char* health_name(UpstreamHealth health) {
  switch (health) {
    case UpstreamHealth::kHealthy:
      return "healthy";
    case UpstreamHealth::kUnhealthy:
      return "unhealthy";
    case UpstreamHealth::kRejoining:
      return "rejoining";
    case UpstreamHealth::kDraining:
      return "draining";
  }
  return "unknown";
}

std::string RemapReport::describe() const {
  std::ostringstream out;
  out << reason << ": " << moved << " of " << sampled << " sample partitions moved ("
      << static_cast<int>(moved_share() * 1000 + 0.5) / 10.0 << "%)";
  for (const auto& move : moves) {
    out << "; " << (move.from.empty() ? "-" : move.from) << " -> "
        << (move.to.empty() ? "-" : move.to) << ": " << move.partitions;
  }
  return out.str();
}

RemapReport compare_placements(const Placement* before, const Placement* after,
                               std::string reason) {
  RemapReport report;
  report.reason = std::move(reason);
  report.sampled = RemapReport::kRemapSample;
  std::map<std::pair<std::string, std::string>, size_t> moves;
  for (uint32_t i = 0; i < RemapReport::kRemapSample; ++i) {
    uint64_t hash = partition_hash("sample", i);
    std::string from = before && !before->empty() ? before->members()[before->owner(hash)] : "";
    std::string to = after && !after->empty() ? after->members()[after->owner(hash)] : "";
    if (from == to) continue;
    ++report.moved;
    ++moves[{from, to}];
  }
  for (const auto& [pair, count] : moves) report.moves.push_back({pair.first, pair.second, count});
  return report;
}

Router::Router(RouterOptions options) : options_(options) { rebuild_locked("start"); }

bool Router::routable_locked(const Upstream& upstream) const {
  return upstream.health == UpstreamHealth::kHealthy;
}

RemapReport Router::rebuild_locked(const std::string& reason) {
  std::vector<std::string> live, all;
  std::vector<std::shared_ptr<Upstream>> live_members;
  for (const auto& [address, upstream] : upstreams_) {
    all.push_back(address);
    if (routable_locked(*upstream)) {
      live.push_back(address);
      live_members.push_back(upstream);  // map order = sorted = placement order
    }
  }
  std::shared_ptr<const Placement> next =
      make_placement(options_.algorithm, live, options_.virtual_nodes, options_.ring_probes);
  auto report = compare_placements(live_.get(), next.get(), reason);
  live_ = std::move(next);
  home_ = make_placement(options_.algorithm, all, options_.virtual_nodes, options_.ring_probes);
  live_members_ = std::move(live_members);
  return report;
}

std::optional<RemapReport> Router::set_members(std::vector<std::string> addresses,
                                               const std::string& reason) {
  std::sort(addresses.begin(), addresses.end());
  addresses.erase(std::unique(addresses.begin(), addresses.end()), addresses.end());
  std::lock_guard lock(mutex_);
  std::vector<std::string> current;
  for (const auto& [address, _] : upstreams_) current.push_back(address);
  if (current == addresses) return std::nullopt;
  std::map<std::string, std::shared_ptr<Upstream>> next;
  for (const auto& address : addresses) {
    auto it = upstreams_.find(address);
    next[address] = it != upstreams_.end() ? it->second : std::make_shared<Upstream>(address);
  }
  upstreams_ = std::move(next);
  ++rebalances_;
  return rebuild_locked(reason);
}

absl::StatusOr<RemapReport> Router::add(const std::string& address) {
  if (address.empty() || address.find(':') == std::string::npos)
    return absl::InvalidArgumentError(
        str_cat("upstream '", address, "' is not host:port; give e.g. broker-0.local:7070"));
  std::lock_guard lock(mutex_);
  auto it = upstreams_.find(address);
  if (it != upstreams_.end()) {
    if (it->second->health != UpstreamHealth::kDraining)
      return absl::AlreadyExistsError(str_cat("upstream ", address, " is already a member"));
    it->second->health = UpstreamHealth::kHealthy;  // add after drain brings it back
  } else {
    upstreams_[address] = std::make_shared<Upstream>(address);
  }
  ++rebalances_;
  return rebuild_locked("add " + address);
}

absl::StatusOr<RemapReport> Router::remove(const std::string& address) {
  std::lock_guard lock(mutex_);
  if (upstreams_.erase(address) == 0)
    return absl::NotFoundError(
        str_cat("upstream ", address, " is not a member; `proxy upstreams` lists them"));
  ++rebalances_;
  return rebuild_locked("remove " + address);
}

absl::StatusOr<RemapReport> Router::drain(const std::string& address) {
  std::lock_guard lock(mutex_);
  auto it = upstreams_.find(address);
  if (it == upstreams_.end())
    return absl::NotFoundError(
        str_cat("upstream ", address, " is not a member; `proxy upstreams` lists them"));
  it->second->health = UpstreamHealth::kDraining;
  ++rebalances_;
  return rebuild_locked("drain " + address);
}

std::optional<RemapReport> Router::record_check(const std::string& address, bool ok,
                                                const std::string& error,
                                                std::chrono::system_clock::time_point now) {
  std::lock_guard lock(mutex_);
  auto it = upstreams_.find(address);
  if (it == upstreams_.end()) return std::nullopt;
  Upstream& upstream = *it->second;
  upstream.last_check = now;
  upstream.last_error = ok ? "" : error;
  if (ok) {
    upstream.failures = 0;
    ++upstream.successes;
  } else {
    upstream.successes = 0;
    ++upstream.failures;
  }
  switch (upstream.health) {
    case UpstreamHealth::kHealthy:
      if (!ok && upstream.failures >= options_.unhealthy_threshold) {
        upstream.health = UpstreamHealth::kUnhealthy;
        ++failovers_;
        return rebuild_locked(str_cat("failover: ", address, " unhealthy after ", upstream.failures,
                                      " failed checks (", error, ")"));
      }
      return std::nullopt;
    case UpstreamHealth::kUnhealthy:
      if (ok && upstream.successes >= options_.healthy_threshold) {
        if (options_.failback == Failback::kAfterDrain) {
          upstream.health = UpstreamHealth::kRejoining;
          upstream.rejoining_since = std::chrono::steady_clock::now();
          return std::nullopt;
        }
        upstream.health = UpstreamHealth::kHealthy;
        ++rebalances_;
        return rebuild_locked(str_cat("failback: ", address, " healthy after ", upstream.successes,
                                      " passed checks"));
      }
      return std::nullopt;
    case UpstreamHealth::kRejoining:
      if (!ok && upstream.failures >= options_.unhealthy_threshold)
        upstream.health = UpstreamHealth::kUnhealthy;
      return std::nullopt;
    case UpstreamHealth::kDraining:
      return std::nullopt;
  }
  return std::nullopt;
}

std::optional<RemapReport> Router::tick(std::chrono::steady_clock::time_point now) {
  std::lock_guard lock(mutex_);
  std::vector<std::string> rejoined;
  for (auto& [address, upstream] : upstreams_) {
    if (upstream->health != UpstreamHealth::kRejoining) continue;
    // Its partitions are served by the live members meanwhile: wait until
    // their calls drained (or the timeout), so no call sees two owners.
    int64_t in_flight = 0;
    for (const auto& member : live_members_) in_flight += member->in_flight.load();
    if (in_flight == 0 || now - upstream->rejoining_since >= options_.failback_timeout) {
      upstream->health = UpstreamHealth::kHealthy;
      rejoined.push_back(address);
    }
  }
  if (rejoined.empty()) return std::nullopt;
  ++rebalances_;
  std::string names;
  for (const auto& address : rejoined) names += (names.empty() ? "" : ", ") + address;
  return rebuild_locked("failback after drain: " + names);
}

absl::StatusOr<std::shared_ptr<Upstream>> Router::route(const std::string& topic,
                                                        uint32_t partition) const {
  std::lock_guard lock(mutex_);
  if (live_->empty()) {
    if (upstreams_.empty())
      return absl::UnavailableError(
          "the proxy has no upstreams; set modules.proxy.upstreams (or broker_service and "
          "broker_count) or add one with `proxy upstream add HOST:PORT`");
    return absl::UnavailableError(str_cat("no healthy upstream for ", topic, "/", partition,
                                          ": all ", upstreams_.size(),
                                          " upstreams are unhealthy or drained; check the "
                                          "brokers (`proxy upstreams`)"));
  }
  return live_members_[live_->owner(partition_hash(topic, partition))];
}

std::string Router::home(const std::string& topic, uint32_t partition) const {
  std::lock_guard lock(mutex_);
  if (home_->empty()) return "";
  return home_->members()[home_->owner(partition_hash(topic, partition))];
}

std::vector<std::shared_ptr<Upstream>> Router::routable() const {
  std::lock_guard lock(mutex_);
  return live_members_;
}

std::vector<std::shared_ptr<Upstream>> Router::all() const {
  std::lock_guard lock(mutex_);
  std::vector<std::shared_ptr<Upstream>> out;
  for (const auto& [_, upstream] : upstreams_) out.push_back(upstream);
  return out;
}

size_t Router::member_count() const {
  std::lock_guard lock(mutex_);
  return upstreams_.size();
}

size_t Router::routable_count() const {
  std::lock_guard lock(mutex_);
  return live_members_.size();
}

std::vector<UpstreamView> Router::view() const {
  std::lock_guard lock(mutex_);
  auto live_shares = live_->shares();
  auto home_shares = home_->shares();
  auto home_points = home_->points();
  std::vector<UpstreamView> out;
  size_t index = 0;
  for (const auto& [address, upstream] : upstreams_) {
    UpstreamView view;
    view.address = address;
    view.health = upstream->health;
    view.last_check = upstream->last_check;
    view.last_error = upstream->last_error;
    view.home_share = home_shares[index];
    view.points = home_points[index];
    const auto& live = live_->members();
    auto it = std::lower_bound(live.begin(), live.end(), address);
    if (it != live.end() && *it == address) view.share = live_shares[it - live.begin()];
    view.in_flight = upstream->in_flight.load();
    view.calls = upstream->calls.load();
    out.push_back(std::move(view));
    ++index;
  }
  return out;
}

}  // namespace telekern::proxy
