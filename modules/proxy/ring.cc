#include <algorithm>
#include <limits>

#include "hash.h"
#include "placement.h"

namespace telekern::proxy {

Placement::Placement(std::vector<std::string> members) : members_(std::move(members)) {
  std::sort(members_.begin(), members_.end());
  members_.erase(std::unique(members_.begin(), members_.end()), members_.end());
}

Ring::Ring(std::vector<std::string> members, uint32_t virtual_nodes, uint32_t probes)
    : Placement(std::move(members)),
      virtual_nodes_(std::max<uint32_t>(1, virtual_nodes)),
      probes_(std::max<uint32_t>(1, probes)) {
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
  // About four buckets per point (a power of two) index the sorted points.
  uint32_t bits = 1;
  while ((size_t(1) << bits) < points_.size() * 4 && bits < 24) ++bits;
  bucket_shift_ = 64 - bits;
  bucket_start_.resize(size_t(1) << bits);
  size_t index = 0;
  for (size_t bucket = 0; bucket < bucket_start_.size(); ++bucket) {
    uint64_t start = uint64_t(bucket) << bucket_shift_;
    while (index < points_.size() && points_[index].hash < start) ++index;
    bucket_start_[bucket] = static_cast<uint32_t>(index);
  }
  // Probes make ownership a union of scattered pieces, so shares are
  // measured: kShareSamples keys, one per equal stratum of the key space.
  constexpr uint32_t kShareSamples = 1u << 16;
  shares_.assign(members_.size(), 0.0);
  if (members_.empty()) return;
  for (uint64_t sample = 0; sample < kShareSamples; ++sample) {
    uint64_t key = (sample << 48) | (mix64(sample) >> 16);
    shares_[owner(key)] += 1.0 / kShareSamples;
  }
}

size_t Ring::next_point(uint64_t hash) const {
  // The bucket of the hash's top bits gives the first point at or after the
  // bucket's start; about a quarter of a point per bucket is left to step over.
  size_t index = bucket_start_[hash >> bucket_shift_];
  while (index < points_.size() && points_[index].hash < hash) ++index;
  return index == points_.size() ? 0 : index;
}

size_t Ring::owner(uint64_t hash) const {
  // Clockwise distance (mod 2^64) from each probe to its next point; the
  // nearest wins, ties by member index so the result is total.
  uint64_t best_distance = std::numeric_limits<uint64_t>::max();
  uint32_t best_member = 0;
  for (uint32_t probe = 0; probe < probes_; ++probe) {
    uint64_t position = probe == 0 ? hash : mix64(hash + probe * 0x9e3779b97f4a7c15ull);
    const Point& point = points_[next_point(position)];
    uint64_t distance = point.hash - position;
    if (distance < best_distance || (distance == best_distance && point.member < best_member)) {
      best_distance = distance;
      best_member = point.member;
    }
  }
  return best_member;
}

std::vector<double> Ring::shares() const { return shares_; }

std::vector<size_t> Ring::points() const {
  return std::vector<size_t>(members_.size(), virtual_nodes_);
}

std::unique_ptr<Placement> make_placement(Algorithm algorithm, std::vector<std::string> members,
                                          uint32_t virtual_nodes, uint32_t ring_probes) {
  if (algorithm == Algorithm::kMaglev) return std::make_unique<Maglev>(std::move(members));
  return std::make_unique<Ring>(std::move(members), virtual_nodes, ring_probes);
}

}  // namespace telekern::proxy
