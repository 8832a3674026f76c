// Record batches as they come off disk (torn or corrupt tails included): the
// decoder never crashes, and whatever it accepts encodes back to a batch that
// decodes to the same records. Inputs are also read as record lists, encoded
// and decoded, which must give the records back.
#include <cstring>

#include "record.h"
#include "tests/fuzz/fuzz_target.h"

namespace {
using namespace telekern::broker;

bool same(const std::vector<StoredRecord>& a, const std::vector<StoredRecord>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    const auto& x = a[i];
    const auto& y = b[i];
    if (x.offset != y.offset || x.record.key != y.record.key || x.record.value != y.record.value ||
        x.record.timestamp_ms != y.record.timestamp_ms ||
        x.record.headers.size() != y.record.headers.size()) {
      return false;
    }
    for (size_t h = 0; h < x.record.headers.size(); ++h) {
      if (x.record.headers[h].key != y.record.headers[h].key ||
          x.record.headers[h].value != y.record.headers[h].value) {
        return false;
      }
    }
  }
  return true;
}

std::vector<Record> as_records(std::string_view input) {
  std::vector<Record> records;
  while (!input.empty() && records.size() < 64) {
    size_t take = static_cast<unsigned char>(input[0]) % 24;
    input.remove_prefix(1);
    Record record;
    std::string_view part = input.substr(0, std::min(input.size(), take));
    record.key = std::string(part.substr(0, part.size() / 3));
    record.value = std::string(part.substr(part.size() / 3));
    record.timestamp_ms = static_cast<int64_t>(take) * 1000;
    if (take % 4 == 0) record.headers.push_back({"h", record.key});
    records.push_back(std::move(record));
    input.remove_prefix(std::min(input.size(), take));
  }
  return records;
}
}  // namespace

std::vector<std::string> telekern_fuzz_seeds() {
  return {encode_batch(0, {{"k", "v", {}, 1}}),
          encode_batch(42, {{"", "value", {{"trace", "abc"}}, 1700000000000},
                            {"key", "", {}, 1700000000001}}),
          std::string(kBatchHeaderSize, '\0')};
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  (void)parse_batch_header(input);
  auto decoded = decode_batch(input);
  if (decoded.ok() && !decoded->empty()) {
    std::vector<Record> records;
    for (const auto& stored : *decoded) records.push_back(stored.record);
    auto again = decode_batch(encode_batch(decoded->front().offset, records));
    FUZZ_CHECK(again.ok());
    FUZZ_CHECK(same(*decoded, *again));
  }
  auto records = as_records(input);
  if (!records.empty()) {
    auto round_trip = decode_batch(encode_batch(7, records));
    FUZZ_CHECK(round_trip.ok());
    FUZZ_CHECK(round_trip->size() == records.size());
    for (size_t i = 0; i < records.size(); ++i) {
      FUZZ_CHECK((*round_trip)[i].offset == 7 + i);
      FUZZ_CHECK((*round_trip)[i].record.value == records[i].value);
    }
  }
  return 0;
}
