// The 64-bit hash placement uses for ring points and partition keys: FNV-1a
// over the bytes, then the splitmix64 finalizer so nearby keys ("t/1", "t/2")
// land far apart on the ring. Deterministic across processes and builds.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace telekern::proxy {

inline uint64_t mix64(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  x ^= x >> 31;
  return x;
}

inline uint64_t hash64(std::string_view bytes) {
  uint64_t hash = 0xcbf29ce484222325ull;
  for (unsigned char c : bytes) {
    hash ^= c;
    hash *= 0x100000001b3ull;
  }
  return mix64(hash);
}

// The key of (topic, partition) on the ring.
inline uint64_t partition_hash(std::string_view topic, uint32_t partition) {
  std::string key;
  key.reserve(topic.size() + 11);
  key.append(topic);
  key.push_back('/');
  key.append(std::to_string(partition));
  return hash64(key);
}

// The broker's own key -> partition choice (fnv1a64(key) mod partitions), so
// a keyed record lands in the same partition through the proxy or directly.
inline uint32_t key_partition(std::string_view key, uint32_t partitions) {
  uint64_t hash = 0xcbf29ce484222325ull;
  for (unsigned char c : key) {
    hash ^= c;
    hash *= 0x100000001b3ull;
  }
  return partitions == 0 ? 0 : static_cast<uint32_t>(hash % partitions);
}

}  // namespace telekern::proxy
