#include "record.h"

#include <cstring>

#include "crc32c.h"
#include "telekern/strings.h"

namespace telekern::broker {
namespace {

template <typename T>
void put(std::string& out, T value) {
  char bytes[sizeof(T)];
  std::memcpy(bytes, &value, sizeof(T));  // the broker runs on little-endian hosts only
  out.append(bytes, sizeof(T));
}

void put_bytes(std::string& out, std::string_view bytes) {
  put<uint32_t>(out, static_cast<uint32_t>(bytes.size()));
  out.append(bytes);
}

template <typename T>
T get_at(std::string_view bytes, size_t position) {
  T value;
  std::memcpy(&value, bytes.data() + position, sizeof(T));
  return value;
}

class Reader {
 public:
  explicit Reader(std::string_view bytes) : bytes_(bytes) {}
  template <typename T>
  bool get(T& value) {
    if (bytes_.size() - position_ < sizeof(T)) return false;
    value = get_at<T>(bytes_, position_);
    position_ += sizeof(T);
    return true;
  }
  bool get_bytes(std::string& out) {
    uint32_t size = 0;
    if (!get(size) || bytes_.size() - position_ < size) return false;
    out.assign(bytes_.data() + position_, size);
    position_ += size;
    return true;
  }
  bool done() const { return position_ == bytes_.size(); }

 private:
  std::string_view bytes_;
  size_t position_ = 0;
};

}  // namespace

size_t encoded_record_size(const Record& record) {
  size_t size = 8 + 4 + record.key.size() + 4 + record.value.size() + 4;
  for (const auto& header : record.headers) size += 8 + header.key.size() + header.value.size();
  return size;
}

size_t record_user_bytes(const Record& record) {
  size_t size = record.key.size() + record.value.size();
  for (const auto& header : record.headers) size += header.key.size() + header.value.size();
  return size;
}

std::string encode_batch(uint64_t base_offset, const std::vector<Record>& records) {
  std::string out;
  size_t payload = 0;
  for (const auto& record : records) payload += encoded_record_size(record);
  out.reserve(kBatchHeaderSize + payload);
  int64_t first_timestamp = records.empty() ? 0 : records.front().timestamp_ms;
  int64_t max_timestamp = first_timestamp;
  for (const auto& record : records) max_timestamp = std::max(max_timestamp, record.timestamp_ms);
  put<uint32_t>(out, kBatchMagic);
  put<uint32_t>(out, static_cast<uint32_t>(payload));
  put<uint32_t>(out, 0);  // crc, filled below
  put<uint64_t>(out, base_offset);
  put<uint32_t>(out, static_cast<uint32_t>(records.size()));
  put<int64_t>(out, first_timestamp);
  put<int64_t>(out, max_timestamp);
  for (const auto& record : records) {
    put<int64_t>(out, record.timestamp_ms);
    put_bytes(out, record.key);
    put_bytes(out, record.value);
    put<uint32_t>(out, static_cast<uint32_t>(record.headers.size()));
    for (const auto& header : record.headers) {
      put_bytes(out, header.key);
      put_bytes(out, header.value);
    }
  }
  uint32_t crc = crc32c(out.data() + 12, out.size() - 12);
  std::memcpy(out.data() + 8, &crc, sizeof(crc));
  return out;
}

absl::StatusOr<BatchHeader> parse_batch_header(std::string_view bytes) {
  if (bytes.size() < kBatchHeaderSize) return absl::DataLossError("short batch header");
  if (get_at<uint32_t>(bytes, 0) != kBatchMagic) return absl::DataLossError("bad batch magic");
  BatchHeader header;
  header.payload_size = get_at<uint32_t>(bytes, 4);
  header.crc = get_at<uint32_t>(bytes, 8);
  header.base_offset = get_at<uint64_t>(bytes, 12);
  header.count = get_at<uint32_t>(bytes, 20);
  header.first_timestamp_ms = get_at<int64_t>(bytes, 24);
  header.max_timestamp_ms = get_at<int64_t>(bytes, 32);
  if (header.payload_size > kMaxBatchPayload) {
    return absl::DataLossError(
        str_cat("batch payload size ", header.payload_size, " is implausible"));
  }
  if (header.count == 0 || header.count > header.payload_size / 20 + 1) {
    return absl::DataLossError(str_cat("batch record count ", header.count, " is implausible"));
  }
  return header;
}

bool batch_checksum_ok(const BatchHeader& header, std::string_view batch) {
  if (batch.size() != header.total_size()) return false;
  return crc32c(batch.data() + 12, batch.size() - 12) == header.crc;
}

absl::StatusOr<std::vector<StoredRecord>> decode_batch(std::string_view batch) {
  auto header = parse_batch_header(batch);
  if (!header.ok()) return header.status();
  if (!batch_checksum_ok(*header, batch)) {
    return absl::DataLossError(str_cat("CRC32C mismatch in batch at offset ", header->base_offset));
  }
  std::vector<StoredRecord> records;
  records.reserve(header->count);
  Reader reader(batch.substr(kBatchHeaderSize));
  for (uint32_t index = 0; index < header->count; ++index) {
    StoredRecord stored;
    stored.offset = header->base_offset + index;
    uint32_t header_count = 0;
    if (!reader.get(stored.record.timestamp_ms) || !reader.get_bytes(stored.record.key) ||
        !reader.get_bytes(stored.record.value) || !reader.get(header_count)) {
      return absl::DataLossError(
          str_cat("truncated record in batch at offset ", header->base_offset));
    }
    stored.record.headers.resize(header_count);
    for (auto& item : stored.record.headers) {
      if (!reader.get_bytes(item.key) || !reader.get_bytes(item.value)) {
        return absl::DataLossError(
            str_cat("truncated header in batch at offset ", header->base_offset));
      }
    }
    records.push_back(std::move(stored));
  }
  if (!reader.done()) {
    return absl::DataLossError(str_cat("trailing bytes in batch at offset ", header->base_offset));
  }
  return records;
}

}  // namespace telekern::broker
