// The broker's storage engine: CRC32C, batch format, segments with their
// indexes, recovery of torn or corrupt tails, retention and group commit.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include "crc32c.h"
#include "group_commit.h"
#include "partition.h"
#include "record.h"
#include "segment.h"
#include "tests/support/process.h"
#include "topic.h"

namespace telekern::broker {
namespace {

// A temp dir removed with its contents at scope end (tests/support).
class TempDirectory : public telekern::testing::TempDir {
 public:
  TempDirectory() : TempDir("broker-unit") {}
};

Record make_record(const std::string& value, int64_t timestamp_ms = 1000, std::string key = "") {
  Record record;
  record.key = std::move(key);
  record.value = value;
  record.timestamp_ms = timestamp_ms;
  return record;
}

void append_bytes(const std::filesystem::path& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::app) << bytes;
}

uint64_t size_of(const std::filesystem::path& path) { return std::filesystem::file_size(path); }

TEST(Crc32cTest, MatchesKnownVectors) {
  EXPECT_EQ(crc32c(std::string_view("123456789")), 0xE3069283u);
  EXPECT_EQ(crc32c(std::string(32, '\0')), 0x8A9136AAu);
  EXPECT_EQ(crc32c(std::string(32, '\xff')), 0x62A8AB43u);
  std::string ascending;
  for (int i = 0; i < 32; ++i) ascending += static_cast<char>(i);
  EXPECT_EQ(crc32c(ascending), 0x46DD794Eu);
  EXPECT_EQ(crc32c(std::string_view()), 0u);
}

TEST(Crc32cTest, ExtendingEqualsOneShot) {
  std::string text = "the quick brown fox jumps over the lazy dog, twice over";
  for (size_t cut = 0; cut <= text.size(); ++cut) {
    uint32_t partial = crc32c_extend(0, text.data(), cut);
    EXPECT_EQ(crc32c_extend(partial, text.data() + cut, text.size() - cut), crc32c(text)) << cut;
  }
}

TEST(RecordBatchTest, RoundTripsRecordsWithHeaders) {
  Record first = make_record("v1", 5, "k1");
  first.headers = {{"h1", "x"}, {"h2", std::string("\0\1", 2)}};
  Record second = make_record(std::string(1000, 'z'), 9);
  auto batch = encode_batch(42, {first, second});
  auto header = parse_batch_header(batch);
  ASSERT_TRUE(header.ok());
  EXPECT_EQ(header->base_offset, 42u);
  EXPECT_EQ(header->count, 2u);
  EXPECT_EQ(header->max_timestamp_ms, 9);
  EXPECT_EQ(header->total_size(), batch.size());
  auto records = decode_batch(batch);
  ASSERT_TRUE(records.ok()) << records.status();
  ASSERT_EQ(records->size(), 2u);
  EXPECT_EQ((*records)[0].offset, 42u);
  EXPECT_EQ((*records)[0].record.key, "k1");
  EXPECT_EQ((*records)[0].record.headers[1].value, std::string("\0\1", 2));
  EXPECT_EQ((*records)[1].offset, 43u);
  EXPECT_EQ((*records)[1].record.value, std::string(1000, 'z'));
}

TEST(RecordBatchTest, DetectsEveryFlippedBit) {
  auto batch = encode_batch(7, {make_record("payload", 1, "key")});
  for (size_t byte = 8; byte < batch.size(); ++byte) {
    for (int bit = 0; bit < 8; bit += 3) {
      std::string corrupt = batch;
      corrupt[byte] = static_cast<char>(corrupt[byte] ^ (1 << bit));
      EXPECT_FALSE(decode_batch(corrupt).ok()) << "byte " << byte << " bit " << bit;
    }
  }
}

TEST(SegmentTest, AppendsReadsAndKeepsSparseIndexes) {
  TempDirectory dir;
  auto segment = Segment::create(dir.path(), 100, 256);
  ASSERT_TRUE(segment.ok()) << segment.status();
  for (int i = 0; i < 50; ++i) {
    auto batch = encode_batch(100 + i, {make_record("value-" + std::to_string(i), 1000 + i * 10)});
    ASSERT_TRUE((*segment)->append(batch, *parse_batch_header(batch)).ok());
  }
  EXPECT_EQ((*segment)->next_offset(), 150u);
  // Sparse: fewer entries than batches, but more than one.
  EXPECT_GT((*segment)->offset_index().size(), 1u);
  EXPECT_LT((*segment)->offset_index().size(), 50u);
  auto records = (*segment)->read(137, 5, 1 << 20);
  ASSERT_TRUE(records.ok());
  ASSERT_EQ(records->size(), 5u);
  EXPECT_EQ(records->front().offset, 137u);
  EXPECT_EQ(records->front().record.value, "value-37");
  auto found = (*segment)->find_timestamp(1205);
  ASSERT_TRUE(found.ok());
  ASSERT_TRUE(found->has_value());
  EXPECT_EQ(**found, 121u);  // timestamps 1000, 1010, ...: 1210 is the first >= 1205
  EXPECT_FALSE((*segment)->find_timestamp(99999)->has_value());
  EXPECT_EQ(**(*segment)->find_timestamp(0), 100u);
}

TEST(SegmentTest, ReopenUsesIndexAndRebuildsMissingIndex) {
  TempDirectory dir;
  {
    auto segment = Segment::create(dir.path(), 0, 128);
    for (int i = 0; i < 40; ++i) {
      auto batch = encode_batch(i, {make_record(std::string(50, 'a' + i % 26), i)});
      ASSERT_TRUE((*segment)->append(batch, *parse_batch_header(batch)).ok());
    }
    ASSERT_TRUE((*segment)->seal().ok());
  }
  auto index_file = Segment::index_path(dir.path(), 0);
  auto expected_index_size = size_of(index_file);
  ASSERT_GT(expected_index_size, 8u);
  std::filesystem::remove(index_file);
  SegmentRecovery recovery;
  auto segment = Segment::open(dir.path(), 0, 128, false, &recovery);
  ASSERT_TRUE(segment.ok()) << segment.status();
  EXPECT_TRUE(recovery.index_rebuilt);
  EXPECT_EQ(recovery.truncated_bytes, 0u);
  EXPECT_EQ((*segment)->next_offset(), 40u);
  EXPECT_EQ(size_of(index_file), expected_index_size);
  auto records = (*segment)->read(33, 1, 1);
  ASSERT_TRUE(records.ok());
  EXPECT_EQ(records->front().record.value, std::string(50, 'a' + 33 % 26));

  // A garbled index is detected and rebuilt as well.
  segment->reset();
  { std::ofstream(index_file, std::ios::binary | std::ios::trunc) << std::string(16, '\x7f'); }
  SegmentRecovery second;
  segment = Segment::open(dir.path(), 0, 128, false, &second);
  ASSERT_TRUE(segment.ok());
  EXPECT_TRUE(second.index_rebuilt);
  EXPECT_EQ(size_of(index_file), expected_index_size);
}

class TornTailTest : public ::testing::Test {
 protected:
  // Writes 20 batches of 3 records and returns the log size after 12 batches.
  uint64_t write_batches() {
    auto segment = Segment::create(dir_.path(), 0, 512);
    uint64_t size_after_12 = 0;
    for (int i = 0; i < 20; ++i) {
      std::vector<Record> records;
      for (int j = 0; j < 3; ++j)
        records.push_back(make_record("r" + std::to_string(i * 3 + j), i));
      auto batch = encode_batch(i * 3, records);
      EXPECT_TRUE((*segment)->append(batch, *parse_batch_header(batch)).ok());
      if (i == 11) size_after_12 = (*segment)->size_bytes();
    }
    return size_after_12;
  }
  std::filesystem::path log() const { return Segment::log_path(dir_.path(), 0); }
  std::unique_ptr<Segment> reopen(SegmentRecovery& recovery) {
    auto segment = Segment::open(dir_.path(), 0, 512, true, &recovery);
    EXPECT_TRUE(segment.ok()) << segment.status();
    return segment.ok() ? std::move(*segment) : nullptr;
  }
  void expect_all_readable(Segment& segment, uint64_t records) {
    auto read = segment.read(0, 1000, 1 << 20);
    ASSERT_TRUE(read.ok()) << read.status();
    ASSERT_EQ(read->size(), records);
    for (uint64_t i = 0; i < records; ++i) {
      EXPECT_EQ((*read)[i].offset, i);
      EXPECT_EQ((*read)[i].record.value, "r" + std::to_string(i));
    }
  }
  TempDirectory dir_;
};

TEST_F(TornTailTest, TruncatesMidBatch) {
  write_batches();
  auto full = size_of(log());
  std::filesystem::resize_file(log(), full - 7);
  SegmentRecovery recovery;
  auto segment = reopen(recovery);
  EXPECT_EQ(segment->next_offset(), 57u);  // the 20th batch (57..59) was torn
  EXPECT_GT(recovery.truncated_bytes, 0u);
  EXPECT_NE(recovery.reason.find("torn"), std::string::npos) << recovery.reason;
  expect_all_readable(*segment, 57);
  // Appending after recovery continues at the cut.
  auto batch = encode_batch(57, {make_record("r57", 1)});
  ASSERT_TRUE(segment->append(batch, *parse_batch_header(batch)).ok());
  expect_all_readable(*segment, 58);
}

TEST_F(TornTailTest, DropsGarbageAppended) {
  write_batches();
  auto full = size_of(log());
  std::string garbage(3000, '\0');
  std::mt19937 random(7);
  for (auto& c : garbage) c = static_cast<char>(random());
  append_bytes(log(), garbage);
  SegmentRecovery recovery;
  auto segment = reopen(recovery);
  EXPECT_EQ(segment->next_offset(), 60u);
  EXPECT_EQ(recovery.truncated_bytes, 3000u);
  EXPECT_EQ(size_of(log()), full);
  expect_all_readable(*segment, 60);
}

TEST_F(TornTailTest, CutsAtZeroedPage) {
  uint64_t size_after_12 = write_batches();
  // Zero a 4 KiB-aligned page that starts inside batch 13 (as a lost page would).
  uint64_t page_start = size_after_12 + 10;
  {
    std::fstream file(log(), std::ios::binary | std::ios::in | std::ios::out);
    file.seekp(static_cast<std::streamoff>(page_start));
    std::string zeros(std::min<uint64_t>(4096, size_of(log()) - page_start), '\0');
    file.write(zeros.data(), static_cast<std::streamsize>(zeros.size()));
  }
  SegmentRecovery recovery;
  auto segment = reopen(recovery);
  EXPECT_EQ(segment->next_offset(), 36u);  // 12 good batches of 3
  EXPECT_FALSE(recovery.reason.empty());
  expect_all_readable(*segment, 36);
}

TEST_F(TornTailTest, NeverServesACorruptRecordOfASealedSegment) {
  write_batches();
  {
    std::fstream file(log(), std::ios::binary | std::ios::in | std::ios::out);
    file.seekp(100);
    file.put('\x55');
  }
  // Not validated on open (sealed), but the read checks the CRC: the damaged
  // batch (offsets 0..2) is skipped and reported, the next one is served.
  auto segment = Segment::open(dir_.path(), 0, 512, false, nullptr);
  ASSERT_TRUE(segment.ok());
  auto read = (*segment)->read(0, 3, 1);
  ASSERT_TRUE(read.ok()) << read.status();
  ASSERT_FALSE(read->empty());
  EXPECT_EQ(read->front().offset, 3u);
  auto damaged = (*segment)->damaged_ranges();
  ASSERT_EQ(damaged.size(), 1u);
  EXPECT_EQ(damaged[0].first_offset, 0u);
  EXPECT_EQ(damaged[0].end_offset, 3u);
  EXPECT_EQ(damaged[0].position, 0u);
}

TEST(PartitionTest, RollsSegmentsAndRecoversAcrossThem) {
  TempDirectory dir;
  {
    auto partition = Partition::open(dir.path(), 0, {2048, 512}, nullptr);
    ASSERT_TRUE(partition.ok());
    for (int i = 0; i < 100; ++i) {
      auto appended =
          (*partition)->append({make_record(std::string(100, 'x') + std::to_string(i), i)});
      ASSERT_TRUE(appended.ok());
      EXPECT_EQ(appended->first_offset, static_cast<uint64_t>(i));
    }
    EXPECT_GT((*partition)->stats().segments, 3u);
  }
  auto partition = Partition::open(dir.path(), 0, {2048, 512}, nullptr);
  ASSERT_TRUE(partition.ok());
  EXPECT_EQ((*partition)->end_offset(), 100u);
  uint64_t next = 0;
  while (next < 100) {
    auto records = (*partition)->read(next, 7, 1 << 20);
    ASSERT_TRUE(records.ok());
    ASSERT_FALSE(records->empty()) << next;
    for (const auto& record : *records) {
      EXPECT_EQ(record.offset, next);
      EXPECT_EQ(record.record.value, std::string(100, 'x') + std::to_string(next));
      ++next;
    }
  }
  EXPECT_EQ(*(*partition)->offset_for_timestamp(57), 57u);
  EXPECT_EQ(*(*partition)->offset_for_timestamp(1000), 100u);
}

TEST(PartitionTest, RetentionDeletesWholeOldSegments) {
  TempDirectory dir;
  auto partition = Partition::open(dir.path(), 0, {1024, 512}, nullptr);
  ASSERT_TRUE(partition.ok());
  for (int i = 0; i < 60; ++i) {
    ASSERT_TRUE((*partition)->append({make_record(std::string(200, 'y'), 1000 + i)}).ok());
  }
  auto before = (*partition)->stats();
  ASSERT_GT(before.segments, 5u);
  // Bytes: keep at most ~3 KiB; whole segments go, the active one stays.
  auto removed = (*partition)->enforce_retention(0, 3000, 0);
  ASSERT_TRUE(removed.ok());
  auto after = (*partition)->stats();
  EXPECT_GT(*removed, 0);
  EXPECT_LT(after.bytes, before.bytes);
  EXPECT_GE(after.bytes + 1300, 3000u);  // not more than one segment too many went
  EXPECT_GT(after.start_offset, 0u);
  EXPECT_EQ(after.end_offset, 60u);
  auto records = (*partition)->read(0, 1, 1 << 20);  // below start: serves from start
  ASSERT_TRUE(records.ok());
  EXPECT_EQ(records->front().offset, after.start_offset);

  // Time: every sealed segment is older than 10 ms at t=100000; the active one stays.
  removed = (*partition)->enforce_retention(10, 0, 100000);
  ASSERT_TRUE(removed.ok());
  after = (*partition)->stats();
  EXPECT_EQ(after.segments, 1u);
  EXPECT_EQ(after.end_offset, 60u);
  size_t log_files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir.path())) {
    log_files += entry.path().extension() == ".log";
  }
  EXPECT_EQ(log_files, 1u);
}

TEST(GroupCommitTest, OneFsyncCoversConcurrentProducers) {
  TempDirectory dir;
  std::shared_ptr<Partition> partition = std::move(*Partition::open(dir.path(), 0, {}, nullptr));
  GroupCommitter committer;
  constexpr int kThreads = 8;
  constexpr int kPerThread = 50;
  std::atomic<int> acknowledged{0};
  std::vector<std::thread> producers;
  for (int t = 0; t < kThreads; ++t) {
    producers.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        auto appended =
            partition->append({make_record(std::to_string(t) + ":" + std::to_string(i))});
        ASSERT_TRUE(appended.ok());
        std::mutex mutex;
        std::condition_variable done;
        bool finished = false;
        committer.await(partition, appended->sync_sequence, nullptr, [&](absl::Status status) {
          EXPECT_TRUE(status.ok());
          EXPECT_GE(partition->durable_sequence(), appended->sync_sequence);
          std::lock_guard lock(mutex);
          finished = true;
          done.notify_one();
        });
        std::unique_lock lock(mutex);
        done.wait(lock, [&] { return finished; });
        ++acknowledged;
      }
    });
  }
  for (auto& producer : producers) producer.join();
  committer.stop();
  EXPECT_EQ(acknowledged.load(), kThreads * kPerThread);
  EXPECT_EQ(partition->durable_sequence(), partition->appended_sequence());
  // Group commit: fewer fsyncs than acknowledged appends.
  EXPECT_LT(committer.fsyncs(), static_cast<uint64_t>(kThreads * kPerThread));
  EXPECT_GT(committer.fsyncs(), 0u);
}

TEST(TopicTest, PersistsSpecAndGrows) {
  TempDirectory dir;
  {
    auto topic =
        Topic::create(dir.path() / "orders", "orders", {3, 1000, 5000, 4096}, 512, nullptr);
    ASSERT_TRUE(topic.ok());
    ASSERT_TRUE((*topic)->grow(5).ok());
  }
  auto topic = Topic::open(dir.path() / "orders", "orders", 512, nullptr);
  ASSERT_TRUE(topic.ok()) << topic.status();
  EXPECT_EQ((*topic)->partition_count(), 5u);
  EXPECT_EQ((*topic)->spec().retention_ms, 1000);
  EXPECT_EQ((*topic)->spec().retention_bytes, 5000u);
  EXPECT_EQ((*topic)->spec().segment_bytes, 4096u);
  EXPECT_FALSE(validate_topic_name("a/b").ok());
  EXPECT_FALSE(validate_topic_name("..").ok());
  EXPECT_TRUE(validate_topic_name("telemetry.gpu-0_a").ok());
}

}  // namespace
}  // namespace telekern::broker
