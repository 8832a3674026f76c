#include <algorithm>
#include <limits>

#include "hash.h"
#include "placement.h"

namespace telekern::proxy {

Placement::Placement(std::vector<std::string> members) : members_(std::move(members)) {
  std::sort(members_.begin(), members_.end());
  members_.erase(std::unique(members_.begin(), members_.end()), members_.end());
}

Ring::Ring(std::vector<std::string> members, uint32_t virtual_nodes)
    : Placement(std::move(members)), virtual_nodes_(std::max<uint32_t>(1, virtual_nodes)) {
  points_.reserve(members_.size() * virtual_nodes_);
  for (uint32_t member = 0; member < members_.size(); ++member) {
    for (uint32_t i = 0; i < virtual_nodes_; ++i) {
      points_.push_back({hash64(members_[member] + "#" + std::to_string(i)), member});
    }
  }
  // Ties (astronomically rare) break by member index, so the order is total.
  std::sort(points_.begin(), points_.end(), [](const Point& a, const Point& b) {
    return a.hash != b.hash ? a.hash < b.hash : a.member < b.member;
  });
}

size_t Ring::owner(uint64_t hash) const {
  auto it = std::lower_bound(points_.begin(), points_.end(), hash,
                             [](const Point& point, uint64_t value) { return point.hash < value; });
  if (it == points_.end()) it = points_.begin();
  return it->member;
}

std::vector<double> Ring::shares() const {
  std::vector<double> shares(members_.size(), 0.0);
  if (points_.empty()) return shares;
  constexpr double kSpace = 18446744073709551616.0;  // 2^64
  // A point owns the arc from the previous point (exclusive) up to itself.
  for (size_t i = 0; i < points_.size(); ++i) {
    uint64_t previous = points_[(i + points_.size() - 1) % points_.size()].hash;
    uint64_t arc = points_[i].hash - previous;  // wraps modulo 2^64 for the first point
    if (points_.size() == 1) {
      shares[points_[i].member] = 1.0;
      return shares;
    }
    shares[points_[i].member] += static_cast<double>(arc) / kSpace;
  }
  return shares;
}

std::vector<size_t> Ring::points() const {
  return std::vector<size_t>(members_.size(), virtual_nodes_);
}

std::unique_ptr<Placement> make_placement(Algorithm algorithm, std::vector<std::string> members,
                                          uint32_t virtual_nodes) {
  if (algorithm == Algorithm::kMaglev) return std::make_unique<Maglev>(std::move(members));
  return std::make_unique<Ring>(std::move(members), virtual_nodes);
}

}  // namespace telekern::proxy
