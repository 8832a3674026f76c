// The broker's record types and the on-disk record batch: a fixed header with
// a CRC32C over everything after the checksum, then the records.
#pragma once

#include <absl/status/statusor.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace telekern::broker {

struct Header {
  std::string key;
  std::string value;
};

struct Record {
  std::string key;
  std::string value;
  std::vector<Header> headers;
  int64_t timestamp_ms = 0;
};

struct StoredRecord {
  uint64_t offset = 0;
  Record record;
};

// Batch layout, little endian:
//   magic u32 | payload_size u32 | crc32c u32 | base_offset u64 | count u32 |
//   first_timestamp_ms i64 | max_timestamp_ms i64 | payload
// The CRC covers base_offset through the end of the payload. Each record in the
// payload: timestamp_ms i64 | key_size u32 | key | value_size u32 | value |
// header_count u32 | (key_size u32 | key | value_size u32 | value)*
inline constexpr uint32_t kBatchMagic = 0x31424B54;  // "TKB1"
inline constexpr size_t kBatchHeaderSize = 40;
inline constexpr uint32_t kMaxBatchPayload = 256u << 20;

struct BatchHeader {
  uint32_t payload_size = 0;
  uint32_t crc = 0;
  uint64_t base_offset = 0;
  uint32_t count = 0;
  int64_t first_timestamp_ms = 0;
  int64_t max_timestamp_ms = 0;
  size_t total_size() const { return kBatchHeaderSize + payload_size; }
  uint64_t next_offset() const { return base_offset + count; }
};

// Bytes a record takes inside a batch payload (user bytes plus framing).
size_t encoded_record_size(const Record& record);

// Bytes the producer sent: key + value + every header's key and value (what
// max_record_bytes limits).
size_t record_user_bytes(const Record& record);

// A complete batch (header + payload) holding `records` at base_offset.
std::string encode_batch(uint64_t base_offset, const std::vector<Record>& records);

// Reads and sanity-checks a header (magic, sizes); does not verify the CRC.
absl::StatusOr<BatchHeader> parse_batch_header(std::string_view bytes);

// True when the CRC of a complete batch (header + payload) matches.
bool batch_checksum_ok(const BatchHeader& header, std::string_view batch);

// Verifies the CRC and decodes every record; DATA_LOSS when anything is off.
absl::StatusOr<std::vector<StoredRecord>> decode_batch(std::string_view batch);

}  // namespace telekern::broker
