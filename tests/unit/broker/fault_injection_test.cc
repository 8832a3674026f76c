// Segment and index files damaged on disk the ways a power loss or a bad disk
// leaves them: flipped bits in index entries and in sealed batches, cut and
// empty segment files, missing ones. Checks what a restart costs with many
// sealed segments, that no readable record is skipped or refused, that
// damage is reported with file and byte, and that offsets are never reused.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "file.h"
#include "partition.h"
#include "record.h"
#include "segment.h"
#include "tests/support/process.h"

namespace telekern::broker {
namespace {

class TempDirectory : public telekern::testing::TempDir {
 public:
  TempDirectory() : TempDir("broker-faults") {}
};

Record make_record(const std::string& value, int64_t timestamp_ms) {
  Record record;
  record.value = value;
  record.timestamp_ms = timestamp_ms;
  return record;
}

std::string value_for(uint64_t offset) { return "value-" + std::to_string(offset); }

void flip_bit(const std::filesystem::path& path, uint64_t position, int bit) {
  std::fstream file(path, std::ios::binary | std::ios::in | std::ios::out);
  file.seekg(static_cast<std::streamoff>(position));
  char byte = 0;
  file.get(byte);
  file.seekp(static_cast<std::streamoff>(position));
  file.put(static_cast<char>(byte ^ (1 << bit)));
}

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void write_file(const std::filesystem::path& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

// Every record readable from `from` on, reading the way a consumer does.
std::vector<StoredRecord> read_everything(const Partition& partition, uint64_t from = 0) {
  std::vector<StoredRecord> out;
  uint64_t next = from;
  while (next < partition.end_offset()) {
    auto records = partition.read(next, 7, 1 << 20);
    EXPECT_TRUE(records.ok()) << records.status();
    if (!records.ok() || records->empty()) break;
    for (auto& record : *records) {
      next = record.offset + 1;
      out.push_back(std::move(record));
    }
  }
  return out;
}

// Size of the batch at the start of a log file.
uint64_t first_batch_size(const std::filesystem::path& log) {
  auto bytes = read_file(log);
  return parse_batch_header(bytes)->total_size();
}

std::vector<uint64_t> segment_bases(const std::filesystem::path& directory) {
  std::vector<uint64_t> out;
  for (const auto& entry : std::filesystem::directory_iterator(directory)) {
    if (entry.path().extension() == ".log") out.push_back(std::stoull(entry.path().stem()));
  }
  std::sort(out.begin(), out.end());
  return out;
}

// The repro: segment_bytes=4096, 150 produces of 4 x 1000 bytes.
TEST(RestartCostTest, OpeningManySealedSegmentsReadsOnlyTheirTails) {
  TempDirectory dir;
  constexpr int kProduces = 150;
  {
    auto partition = Partition::open(dir.path(), 0, {4096, 4096}, nullptr);
    ASSERT_TRUE(partition.ok());
    for (int i = 0; i < kProduces; ++i) {
      std::vector<Record> records;
      for (int j = 0; j < 4; ++j) records.push_back(make_record(std::string(1000, 'a' + j), i));
      ASSERT_TRUE((*partition)->append(records).ok());
    }
    ASSERT_TRUE((*partition)->sync().ok());
  }
  auto segments = segment_bases(dir.path()).size();
  ASSERT_GE(segments, 140u);
  uint64_t before = File::total_bytes_read();
  auto partition = Partition::open(dir.path(), 0, {4096, 4096}, nullptr);
  ASSERT_TRUE(partition.ok());
  uint64_t read = File::total_bytes_read() - before;
  // Each sealed segment costs its last index entries and the batches after
  // the last offset entry (here one 4 KiB batch), never its whole index or a
  // buffer of the size asked for.
  EXPECT_LE(read, segments * (4096 + 200)) << read << " bytes for " << segments << " segments";
  EXPECT_EQ((*partition)->end_offset(), 4u * kProduces);
  EXPECT_TRUE((*partition)->faults().empty());
  // Lookups still work (the index of a sealed segment loads on first use).
  auto records = (*partition)->read(301, 1, 1);
  ASSERT_TRUE(records.ok());
  EXPECT_EQ(records->front().offset, 301u);
  EXPECT_EQ(records->front().record.value, std::string(1000, 'a' + 1));
  EXPECT_EQ(*(*partition)->offset_for_timestamp(77), 4u * 77);
}

TEST(RestartCostTest, SealedSegmentIndexesLoadOnFirstLookupOnly) {
  TempDirectory dir;
  {
    auto segment = Segment::create(dir.path(), 0, 256);
    for (int i = 0; i < 40; ++i) {
      auto batch = encode_batch(i, {make_record(value_for(i), i)});
      ASSERT_TRUE((*segment)->append(batch, *parse_batch_header(batch)).ok());
    }
    ASSERT_TRUE((*segment)->seal().ok());
  }
  auto segment = Segment::open(dir.path(), 0, 256, false, nullptr);
  ASSERT_TRUE(segment.ok());
  EXPECT_FALSE((*segment)->indexes_loaded());
  EXPECT_EQ((*segment)->next_offset(), 40u);
  EXPECT_EQ((*segment)->read(17, 1, 1)->front().record.value, value_for(17));
  EXPECT_TRUE((*segment)->indexes_loaded());
}

// Batches of one record each, every index entry a few batches apart.
class IndexDamageTest : public ::testing::Test {
 protected:
  static constexpr int kRecords = 80;
  void SetUp() override {
    auto segment = Segment::create(dir_.path(), 0, 512);
    for (int i = 0; i < kRecords; ++i) {
      auto batch = encode_batch(i, {make_record(value_for(i) + std::string(60, 'x'), 1000 + i)});
      ASSERT_TRUE((*segment)->append(batch, *parse_batch_header(batch)).ok());
    }
    ASSERT_TRUE((*segment)->seal().ok());
    index_ = read_file(Segment::index_path(dir_.path(), 0));
    time_index_ = read_file(Segment::time_index_path(dir_.path(), 0));
    ASSERT_GE(index_.size() / 8, 6u);
    ASSERT_GE(time_index_.size() / 12, 6u);
  }
  void restore() {
    write_file(Segment::index_path(dir_.path(), 0), index_);
    write_file(Segment::time_index_path(dir_.path(), 0), time_index_);
  }
  // Every offset reads as itself and every timestamp finds its record.
  void expect_intact(const std::string& what) {
    auto segment = Segment::open(dir_.path(), 0, 512, false, nullptr);
    ASSERT_TRUE(segment.ok()) << what << ": " << segment.status();
    for (int i = 0; i < kRecords; ++i) {
      auto records = (*segment)->read(i, 1, 1);
      ASSERT_TRUE(records.ok()) << what << " offset " << i << ": " << records.status();
      ASSERT_FALSE(records->empty()) << what << " offset " << i;
      EXPECT_EQ(records->front().offset, static_cast<uint64_t>(i)) << what;
      auto found = (*segment)->find_timestamp(1000 + i);
      ASSERT_TRUE(found.ok()) << what << ": " << found.status();
      ASSERT_TRUE(found->has_value()) << what << " timestamp " << 1000 + i;
      EXPECT_EQ(**found, static_cast<uint64_t>(i)) << what << " timestamp " << 1000 + i;
    }
    EXPECT_TRUE((*segment)->damaged_ranges().empty()) << what;
  }
  TempDirectory dir_;
  std::string index_;
  std::string time_index_;
};

TEST_F(IndexDamageTest, FlippedOffsetIndexEntryNeverSkipsOrFailsARecord) {
  size_t entries = index_.size() / 8;
  for (size_t entry = 1; entry + 1 < entries; ++entry) {
    for (size_t byte : {0, 4, 5}) {  // relative offset low byte, position low bytes
      for (int bit : {0, 3, 6}) {
        restore();
        flip_bit(Segment::index_path(dir_.path(), 0), entry * 8 + byte, bit);
        expect_intact("offset entry " + std::to_string(entry) + " byte " + std::to_string(byte) +
                      " bit " + std::to_string(bit));
      }
    }
  }
}

TEST_F(IndexDamageTest, FlippedTimeIndexEntryNeverSkipsARecord) {
  size_t entries = time_index_.size() / 12;
  for (size_t entry = 1; entry + 1 < entries; ++entry) {
    for (size_t byte : {0, 1, 8}) {  // max timestamp low bytes, relative offset low byte
      for (int bit : {0, 2, 5}) {
        restore();
        flip_bit(Segment::time_index_path(dir_.path(), 0), entry * 12 + byte, bit);
        expect_intact("time entry " + std::to_string(entry) + " byte " + std::to_string(byte) +
                      " bit " + std::to_string(bit));
      }
    }
  }
}

// A partition of several sealed segments of 1-record batches.
class SealedDamageTest : public ::testing::Test {
 protected:
  static constexpr int kRecords = 142;
  void SetUp() override {
    auto partition = Partition::open(dir_.path(), 0, {2048, 512}, nullptr);
    ASSERT_TRUE(partition.ok());
    for (int i = 0; i < kRecords; ++i) {
      ASSERT_TRUE((*partition)->append({make_record(value_for(i) + std::string(80, 'y'), i)}).ok());
    }
    ASSERT_TRUE((*partition)->sync().ok());
    ASSERT_TRUE((*partition)->write_high_water().ok());
    bases_ = segment_bases(dir_.path());
    ASSERT_GE(bases_.size(), 4u);
  }
  std::filesystem::path log(size_t index) const {
    return Segment::log_path(dir_.path(), bases_[index]);
  }
  std::unique_ptr<Partition> reopen() {
    auto partition = Partition::open(dir_.path(), 0, {2048, 512}, nullptr);
    EXPECT_TRUE(partition.ok()) << partition.status();
    return partition.ok() ? std::move(*partition) : nullptr;
  }
  // Every record except those in [lost_from, lost_to) comes back, in order.
  void expect_all_but(Partition& partition, uint64_t lost_from, uint64_t lost_to) {
    auto records = read_everything(partition);
    std::vector<uint64_t> offsets;
    for (const auto& record : records) {
      offsets.push_back(record.offset);
      EXPECT_EQ(record.record.value, value_for(record.offset) + std::string(80, 'y'));
    }
    std::vector<uint64_t> expected;
    for (uint64_t i = 0; i < kRecords; ++i) {
      if (i < lost_from || i >= lost_to) expected.push_back(i);
    }
    EXPECT_EQ(offsets, expected);
  }
  TempDirectory dir_;
  std::vector<uint64_t> bases_;
};

TEST_F(SealedDamageTest, CorruptBatchInsideASealedSegmentIsServedAroundAndReported) {
  // A flipped payload byte in the second batch of the second segment.
  uint64_t batch_size = first_batch_size(log(1));
  flip_bit(log(1), batch_size + 60, 2);
  auto partition = reopen();
  auto records = read_everything(*partition);
  uint64_t lost = bases_[1] + 1;
  expect_all_but(*partition, lost, lost + 1);
  auto reason = partition->degraded_reason();
  ASSERT_TRUE(reason.has_value());
  EXPECT_NE(reason->find(log(1).string()), std::string::npos) << *reason;
  EXPECT_NE(reason->find("bytes " + std::to_string(batch_size) + ".."), std::string::npos)
      << *reason;
  EXPECT_EQ(partition->faults()["corrupt_batch"], 1u);
  // A second pass serves the same records and counts the damage once.
  expect_all_but(*partition, lost, lost + 1);
  EXPECT_EQ(partition->faults()["corrupt_batch"], 1u);
}

TEST_F(SealedDamageTest, DamagedBatchHeaderIsSkippedToTheNextGoodBatch) {
  flip_bit(log(2), 1, 0);  // the magic of the segment's first batch
  auto partition = reopen();
  expect_all_but(*partition, bases_[2], bases_[2] + 1);
  EXPECT_TRUE(partition->degraded_reason().has_value());
}

TEST_F(SealedDamageTest, CorruptBatchInTheRescannedTailIsFoundAtOpenAndKeepsWhatFollows) {
  // The last batches of a sealed segment are checked at open: a flip there
  // is reported before anyone reads, and the intact batches after it stay.
  auto size = std::filesystem::file_size(log(1));
  uint64_t batch_size = first_batch_size(log(1));
  flip_bit(log(1), size - 2 * batch_size + 50, 1);
  auto partition = reopen();
  ASSERT_TRUE(partition->degraded_reason().has_value());
  EXPECT_EQ(std::filesystem::file_size(log(1)), size);  // nothing cut
  uint64_t lost = bases_[2] - 2;
  expect_all_but(*partition, lost, lost + 1);
}

TEST_F(SealedDamageTest, EmptyMiddleSegmentIsReportedAndServedAround) {
  std::filesystem::resize_file(log(1), 0);
  auto partition = reopen();
  EXPECT_EQ(partition->faults()["missing_offsets"], 1u);
  auto reason = partition->degraded_reason();
  ASSERT_TRUE(reason.has_value());
  EXPECT_NE(reason->find(std::to_string(bases_[1]) + ".." + std::to_string(bases_[2] - 1)),
            std::string::npos)
      << *reason;
  expect_all_but(*partition, bases_[1], bases_[2]);
}

TEST_F(SealedDamageTest, MissingMiddleSegmentIsReportedAndServedAround) {
  std::filesystem::remove(log(2));
  std::filesystem::remove(Segment::index_path(dir_.path(), bases_[2]));
  std::filesystem::remove(Segment::time_index_path(dir_.path(), bases_[2]));
  auto partition = reopen();
  EXPECT_EQ(partition->faults()["missing_offsets"], 1u);
  EXPECT_TRUE(partition->degraded_reason().has_value());
  expect_all_but(*partition, bases_[2], bases_[3]);
}

TEST_F(SealedDamageTest, OffsetsAreNotReusedAfterTheActiveSegmentIsCut) {
  auto active = log(bases_.size() - 1);
  std::filesystem::resize_file(active, std::filesystem::file_size(active) - 5);
  auto partition = reopen();
  EXPECT_EQ(partition->faults()["torn_tail"], 1u);
  EXPECT_EQ(partition->faults()["offsets_skipped"], 1u);
  EXPECT_EQ(partition->end_offset(), static_cast<uint64_t>(kRecords));
  expect_all_but(*partition, kRecords - 1, kRecords);
  auto appended = partition->append({make_record("after", 1)});
  ASSERT_TRUE(appended.ok());
  EXPECT_EQ(appended->first_offset, static_cast<uint64_t>(kRecords));
  // The gap is on purpose now: the next restart neither reports nor moves it.
  partition.reset();
  partition = reopen();
  EXPECT_TRUE(partition->faults().empty());
  EXPECT_EQ(partition->end_offset(), static_cast<uint64_t>(kRecords) + 1);
}

TEST_F(SealedDamageTest, OffsetsAreNotReusedAfterTheActiveSegmentIsEmptied) {
  std::filesystem::resize_file(log(bases_.size() - 1), 0);
  auto partition = reopen();
  EXPECT_EQ(partition->end_offset(), static_cast<uint64_t>(kRecords));
  EXPECT_EQ(partition->faults()["offsets_skipped"], 1u);
  expect_all_but(*partition, bases_.back(), kRecords);
}

TEST_F(SealedDamageTest, AdvanceToMovesNewOffsetsPastACommittedOffset) {
  auto partition = reopen();
  ASSERT_TRUE(partition->advance_to(kRecords + 5, "group 'g' committed 147").ok());
  EXPECT_EQ(partition->end_offset(), static_cast<uint64_t>(kRecords) + 5);
  auto appended = partition->append({make_record("after", 1)});
  EXPECT_EQ(appended->first_offset, static_cast<uint64_t>(kRecords) + 5);
  ASSERT_TRUE(partition->advance_to(3, "lower: no-op").ok());
  EXPECT_EQ(partition->end_offset(), static_cast<uint64_t>(kRecords) + 6);
}

}  // namespace
}  // namespace telekern::broker
