#include "hash.h"
#include "placement.h"

namespace telekern::proxy {

Maglev::Maglev(std::vector<std::string> members, uint32_t table_size)
    : Placement(std::move(members)) {
  if (members_.empty()) return;
  const uint64_t size = table_size;
  const size_t count = members_.size();
  std::vector<uint64_t> offset(count), skip(count), next(count, 0);
  for (size_t i = 0; i < count; ++i) {
    offset[i] = hash64(members_[i] + "#offset") % size;
    skip[i] = hash64(members_[i] + "#skip") % (size - 1) + 1;
  }
  constexpr uint32_t kEmpty = UINT32_MAX;
  table_.assign(size, kEmpty);
  uint64_t filled = 0;
  while (true) {
    for (size_t i = 0; i < count; ++i) {
      uint64_t slot = (offset[i] + next[i] * skip[i]) % size;
      while (table_[slot] != kEmpty) {
        ++next[i];
        slot = (offset[i] + next[i] * skip[i]) % size;
      }
      table_[slot] = static_cast<uint32_t>(i);
      ++next[i];
      if (++filled == size) return;
    }
  }
}

size_t Maglev::owner(uint64_t hash) const { return table_[hash % table_.size()]; }

std::vector<double> Maglev::shares() const {
  std::vector<double> shares(members_.size(), 0.0);
  for (uint32_t member : table_) shares[member] += 1.0 / static_cast<double>(table_.size());
  return shares;
}

std::vector<size_t> Maglev::points() const {
  std::vector<size_t> points(members_.size(), 0);
  for (uint32_t member : table_) ++points[member];
  return points;
}

}  // namespace telekern::proxy
