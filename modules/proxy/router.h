// The proxy's routing state: the upstream set (membership, health with
// thresholds, admin drain, failback policy) and the placement over the
// upstreams that may take calls. Every membership or health change that
// alters the routable set rebuilds the placement and yields a remap report.
// No gRPC types here: the engine feeds it health-check results.
#pragma once

#include <absl/status/statusor.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "placement.h"

namespace telekern::proxy {

enum class Failback {
  kImmediate,   // a recovered upstream takes its partitions back at once
  kAfterDrain,  // ... once calls on the fallback owners drained, or failback_timeout passed
};

struct RouterOptions {
  Algorithm algorithm = Algorithm::kRing;
  uint32_t virtual_nodes = 150;
  uint32_t ring_probes = 4;
  uint32_t unhealthy_threshold = 3;
  uint32_t healthy_threshold = 2;
  Failback failback = Failback::kImmediate;
  std::chrono::milliseconds failback_timeout{10000};
};

enum class UpstreamHealth {
  kHealthy,
  kUnhealthy,  // failed unhealthy_threshold checks in a row; its partitions failed over
  kRejoining,  // healthy again, waiting for the failback policy
  kDraining,   // drained by an operator: takes no new calls
};
const char* health_name(UpstreamHealth health);

struct Move {
  std::string from;
  std::string to;
  size_t partitions = 0;
};

// Which partitions changed owner, measured over kRemapSample sample
// partitions of the key space.
struct RemapReport {
  static constexpr uint32_t kRemapSample = 10000;
  std::string reason;
  size_t sampled = 0;
  size_t moved = 0;
  std::vector<Move> moves;
  double moved_share() const { return sampled == 0 ? 0.0 : double(moved) / double(sampled); }
  std::string describe() const;
};

// One upstream's state; in_flight is counted by the engine around calls.
struct Upstream {
  explicit Upstream(std::string address) : address(std::move(address)) {}
  const std::string address;
  std::atomic<int64_t> in_flight{0};
  std::atomic<uint64_t> calls{0};
  // Guarded by the router's mutex.
  UpstreamHealth health = UpstreamHealth::kHealthy;
  uint32_t failures = 0;   // consecutive failed checks
  uint32_t successes = 0;  // consecutive passed checks
  std::chrono::system_clock::time_point last_check{};
  std::string last_error;
  std::chrono::steady_clock::time_point rejoining_since{};
};

struct UpstreamView {
  std::string address;
  UpstreamHealth health = UpstreamHealth::kHealthy;
  std::chrono::system_clock::time_point last_check{};
  std::string last_error;
  double share = 0;       // of the key space, in the current (routable) placement
  double home_share = 0;  // with every member routable
  size_t points = 0;      // virtual nodes or table slots
  int64_t in_flight = 0;
  uint64_t calls = 0;
};

class Router {
 public:
  explicit Router(RouterOptions options);

  // Replaces the membership (static list or re-resolved pattern); upstreams
  // that stay keep their health. nullopt when nothing changed.
  std::optional<RemapReport> set_members(std::vector<std::string> addresses,
                                         const std::string& reason);
  absl::StatusOr<RemapReport> add(const std::string& address);
  absl::StatusOr<RemapReport> remove(const std::string& address);
  // Stops new calls to `address` (its partitions move on); add() or undrain() brings it back.
  absl::StatusOr<RemapReport> drain(const std::string& address);

  // A health check's result; a report when it changed the routable set.
  std::optional<RemapReport> record_check(const std::string& address, bool ok,
                                          const std::string& error,
                                          std::chrono::system_clock::time_point now);
  // Applies the after_drain failback policy; a report when an upstream rejoined.
  std::optional<RemapReport> tick(std::chrono::steady_clock::time_point now);

  // The upstream serving (topic, partition) now; UNAVAILABLE naming the
  // cause when none may take calls.
  absl::StatusOr<std::shared_ptr<Upstream>> route(const std::string& topic,
                                                  uint32_t partition) const;
  // The owner with every member routable (where the partition lives normally).
  std::string home(const std::string& topic, uint32_t partition) const;
  std::vector<std::shared_ptr<Upstream>> routable() const;
  std::vector<std::shared_ptr<Upstream>> all() const;
  std::vector<UpstreamView> view() const;
  size_t member_count() const;
  size_t routable_count() const;
  Algorithm algorithm() const { return options_.algorithm; }
  uint32_t virtual_nodes() const { return options_.virtual_nodes; }
  uint64_t failovers() const { return failovers_.load(); }
  uint64_t rebalances() const { return rebalances_.load(); }

 private:
  bool routable_locked(const Upstream& upstream) const;
  // Rebuilds the placements; returns the report against the previous one.
  RemapReport rebuild_locked(const std::string& reason);

  RouterOptions options_;
  mutable std::mutex mutex_;
  std::map<std::string, std::shared_ptr<Upstream>> upstreams_;
  std::shared_ptr<const Placement> live_;                // routable members
  std::shared_ptr<const Placement> home_;                // every member
  std::vector<std::shared_ptr<Upstream>> live_members_;  // by live_ index
  std::atomic<uint64_t> failovers_{0};
  std::atomic<uint64_t> rebalances_{0};
};

// Moves between two placements over kRemapSample sample partitions.
RemapReport compare_placements(const Placement* before, const Placement* after, std::string reason);

}  // namespace telekern::proxy
