// Open descriptors bounded by max_open_files: idle files close least recently
// used first and reopen on their next call, so many partitions with many
// sealed segments are served under a small cap.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "file.h"
#include "partition.h"
#include "tests/support/process.h"

namespace telekern::broker {
namespace {

class OpenFilesTest : public ::testing::Test {
 protected:
  void TearDown() override { OpenFiles::set_cap(0); }
  telekern::testing::TempDir dir_{"broker-open-files"};
};

Record make_record(const std::string& value, int64_t timestamp_ms) {
  Record record;
  record.value = value;
  record.timestamp_ms = timestamp_ms;
  return record;
}

TEST_F(OpenFilesTest, IdleFilesCloseUnderTheCapAndReopenOnUse) {
  OpenFiles::set_cap(4);
  uint64_t before = OpenFiles::usage().open;
  std::vector<std::unique_ptr<File>> files;
  for (int i = 0; i < 12; ++i) {
    auto file = File::open(dir_.path() / ("f" + std::to_string(i)), true);
    ASSERT_TRUE(file.ok()) << file.status();
    ASSERT_TRUE((*file)->write_at(0, "file " + std::to_string(i)).ok());
    files.push_back(std::move(*file));
    EXPECT_LE(OpenFiles::usage().open, 4u);
  }
  // The least recently used went first; the newest are still open.
  EXPECT_FALSE(files[0]->is_open());
  EXPECT_TRUE(files[11]->is_open());
  for (int round = 0; round < 2; ++round) {
    for (int i = 0; i < 12; ++i) {
      auto text = files[i]->read_at(0, 64);
      ASSERT_TRUE(text.ok()) << text.status();
      EXPECT_EQ(*text, "file " + std::to_string(i));
      EXPECT_LE(OpenFiles::usage().open, 4u);
    }
  }
  EXPECT_GT(OpenFiles::usage().reopens, 0u);
  // Lowering the cap closes idle descriptors at once.
  OpenFiles::set_cap(2);
  EXPECT_LE(OpenFiles::usage().open, 2u);
  files.clear();
  EXPECT_EQ(OpenFiles::usage().open, before);
}

// file_idle_timeout: descriptors no call used for that long close even under
// the cap, and the file reopens on its next use.
TEST_F(OpenFilesTest, FilesUnusedForTheIdleTimeoutCloseAndReopenOnUse) {
  std::vector<std::unique_ptr<File>> files;
  for (int i = 0; i < 3; ++i) {
    auto file = File::open(dir_.path() / ("idle" + std::to_string(i)), true);
    ASSERT_TRUE(file.ok()) << file.status();
    ASSERT_TRUE((*file)->write_at(0, "idle " + std::to_string(i)).ok());
    files.push_back(std::move(*file));
  }
  for (const auto& file : files) EXPECT_TRUE(file->is_open());
  // Used within the last hour: nothing closes.
  EXPECT_EQ(OpenFiles::close_unused_for(std::chrono::hours(1)), 0u);
  for (const auto& file : files) EXPECT_TRUE(file->is_open());
  // Unused for at least no time at all: every idle one closes.
  EXPECT_GE(OpenFiles::close_unused_for(std::chrono::seconds(0)), 3u);
  for (const auto& file : files) EXPECT_FALSE(file->is_open());
  auto text = files[1]->read_at(0, 64);
  ASSERT_TRUE(text.ok()) << text.status();
  EXPECT_EQ(*text, "idle 1");
  EXPECT_TRUE(files[1]->is_open());
}

TEST_F(OpenFilesTest, ManyPartitionsWithSealedSegmentsServeEverythingUnderASmallCap) {
  OpenFiles::set_cap(16);
  constexpr int kPartitions = 20;
  constexpr int kRecords = 30;
  std::vector<std::unique_ptr<Partition>> partitions;
  for (int p = 0; p < kPartitions; ++p) {
    auto partition =
        Partition::open(dir_.path() / ("partition-" + std::to_string(p)), p, {1024, 256}, nullptr);
    ASSERT_TRUE(partition.ok()) << partition.status();
    partitions.push_back(std::move(*partition));
  }
  // Interleaved appends: every partition's active segment is touched in turn.
  for (int i = 0; i < kRecords; ++i) {
    for (int p = 0; p < kPartitions; ++p) {
      auto appended = partitions[p]->append({make_record(std::string(200, 'a' + p % 26), i)});
      ASSERT_TRUE(appended.ok()) << appended.status();
      EXPECT_LE(OpenFiles::usage().open, 16u);
    }
  }
  size_t segments = 0;
  for (auto& partition : partitions) segments += partition->stats().segments;
  // Three files a segment would need far more than the cap.
  EXPECT_GT(segments * 3, 10u * 16u);
  for (int p = 0; p < kPartitions; ++p) {
    ASSERT_TRUE(partitions[p]->sync().ok());
    uint64_t next = 0;
    while (next < kRecords) {
      auto records = partitions[p]->read(next, 5, 1 << 20);
      ASSERT_TRUE(records.ok()) << records.status();
      ASSERT_FALSE(records->empty());
      for (const auto& record : *records) {
        EXPECT_EQ(record.offset, next++);
        EXPECT_EQ(record.record.value, std::string(200, 'a' + p % 26));
      }
    }
    EXPECT_EQ(*partitions[p]->offset_for_timestamp(7), 7u);
    EXPECT_LE(OpenFiles::usage().open, 16u);
  }
  // Reopened after a restart under the same cap.
  partitions.clear();
  for (int p = 0; p < kPartitions; ++p) {
    auto partition =
        Partition::open(dir_.path() / ("partition-" + std::to_string(p)), p, {1024, 256}, nullptr);
    ASSERT_TRUE(partition.ok()) << partition.status();
    EXPECT_EQ((*partition)->end_offset(), static_cast<uint64_t>(kRecords));
    partitions.push_back(std::move(*partition));
    EXPECT_LE(OpenFiles::usage().open, 16u);
  }
}

}  // namespace
}  // namespace telekern::broker
