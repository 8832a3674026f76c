// Where a (topic, partition) lives: a placement maps a 64-bit key hash to one
// of a set of upstream ids. Two kinds: a consistent-hash ring with virtual
// nodes (ring.cc) and a Maglev lookup table (maglev.cc). Both are built from
// the sorted ids, so the same membership gives the same placement in every
// proxy replica. No gRPC types here.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace telekern::proxy {

enum class Algorithm { kRing, kMaglev };

class Placement {
 public:
  virtual ~Placement() = default;
  // The members, sorted; owner() returns an index into this list.
  const std::vector<std::string>& members() const { return members_; }
  bool empty() const { return members_.empty(); }
  // Index of the member owning `hash`; members() must not be empty.
  virtual size_t owner(uint64_t hash) const = 0;
  // Share of the 64-bit key space each member owns (sums to 1).
  virtual std::vector<double> shares() const = 0;
  // Points (ring) or table slots (maglev) per member.
  virtual std::vector<size_t> points() const = 0;

 protected:
  explicit Placement(std::vector<std::string> members);
  std::vector<std::string> members_;
};

// A ring of `virtual_nodes` points per member at hash64("<id>#<i>"). A key
// is looked up at `probes` positions (its hash and probes - 1 rehashes of it)
// and belongs to the point nearest clockwise of any probe (multi-probe
// consistent hashing, Appleton & O'Reilly 2015). With one probe a member's
// share is a sum of 150 random arcs (spread 1/sqrt(150) = 8%, max/mean up to
// 1.2 at 8-16 members); four probes average four such draws, so max/mean
// stays under 1.10 for 2..16 members. Adding a member still only takes keys
// onto it, and leaving one out moves only its keys.
class Ring final : public Placement {
 public:
  static constexpr uint32_t kDefaultProbes = 4;
  // probes = 1 is the classic ring: the first point clockwise of the hash.
  Ring(std::vector<std::string> members, uint32_t virtual_nodes, uint32_t probes = kDefaultProbes);
  size_t owner(uint64_t hash) const override;
  std::vector<double> shares() const override;
  std::vector<size_t> points() const override;

 private:
  struct Point {
    uint64_t hash;
    uint32_t member;
  };
  // Index of the first point at or after `hash` (wrapping).
  size_t next_point(uint64_t hash) const;
  uint32_t virtual_nodes_;
  uint32_t probes_;
  std::vector<Point> points_;           // sorted by hash
  std::vector<uint32_t> bucket_start_;  // first point at or after each bucket's start
  int bucket_shift_ = 63;
  std::vector<double> shares_;
};

// Maglev (Eisenbud et al., NSDI 2016): every member fills its preference
// permutation of a prime-sized table in turn; lookup is table[hash % size].
class Maglev final : public Placement {
 public:
  static constexpr uint32_t kDefaultTableSize = 65537;
  Maglev(std::vector<std::string> members, uint32_t table_size = kDefaultTableSize);
  size_t owner(uint64_t hash) const override;
  std::vector<double> shares() const override;
  std::vector<size_t> points() const override;

 private:
  std::vector<uint32_t> table_;
};

std::unique_ptr<Placement> make_placement(Algorithm algorithm, std::vector<std::string> members,
                                          uint32_t virtual_nodes,
                                          uint32_t ring_probes = Ring::kDefaultProbes);

}  // namespace telekern::proxy
