// CRC32C (Castagnoli), the checksum of every record batch and state-log entry.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace telekern::broker {

// Extends `crc` (0 to start) over `size` bytes; table-driven, slicing by 8.
uint32_t crc32c_extend(uint32_t crc, const void* data, size_t size);

inline uint32_t crc32c(const void* data, size_t size) { return crc32c_extend(0, data, size); }
inline uint32_t crc32c(std::string_view bytes) { return crc32c(bytes.data(), bytes.size()); }

}  // namespace telekern::broker
