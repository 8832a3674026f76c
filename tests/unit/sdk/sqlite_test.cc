// The SQLite helper: WAL on open, binds and columns, transactions rolling back.
#include "telekern/sqlite.h"

#include <gtest/gtest.h>

#include <filesystem>

namespace telekern::sqlite {
namespace {

TEST(Sqlite, OpensInWalModeAndRoundTripsValues) {
  auto path = std::filesystem::temp_directory_path() / "telekern-sqlite-test.db";
  std::filesystem::remove(path);
  auto database = Database::open(path.string());
  ASSERT_TRUE(database.ok()) << database.status();
  auto mode = (*database)->prepare("PRAGMA journal_mode");
  ASSERT_TRUE(mode.ok());
  ASSERT_TRUE(*mode->step());
  EXPECT_EQ(mode->column_text(0), "wal");
  ASSERT_TRUE((*database)->exec("CREATE TABLE t (i INTEGER, d REAL, s TEXT)").ok());
  auto insert = (*database)->prepare("INSERT INTO t VALUES (?1, ?2, ?3)");
  ASSERT_TRUE(insert.ok());
  ASSERT_TRUE(insert->bind(1, int64_t{1} << 40).bind(2, 0.5).bind(3, "a'b").run().ok());
  auto select = (*database)->prepare("SELECT i, d, s FROM t");
  ASSERT_TRUE(*select->step());
  EXPECT_EQ(select->column_int64(0), int64_t{1} << 40);
  EXPECT_DOUBLE_EQ(select->column_double(1), 0.5);
  EXPECT_EQ(select->column_text(2), "a'b");
  EXPECT_FALSE(*select->step());
  std::filesystem::remove(path);
  std::filesystem::remove(path.string() + "-wal");
  std::filesystem::remove(path.string() + "-shm");
}

TEST(Sqlite, AFailedTransactionLeavesNothingAndErrorsNameTheStatement) {
  auto database = Database::open(":memory:", {.wal = false});
  ASSERT_TRUE(database.ok());
  ASSERT_TRUE((*database)->exec("CREATE TABLE t (k TEXT PRIMARY KEY)").ok());
  auto failed = (*database)->transaction([&]() -> absl::Status {
    auto first = (*database)->exec("INSERT INTO t VALUES ('x')");
    if (!first.ok()) return first;
    return (*database)->exec("INSERT INTO t VALUES ('x')");
  });
  EXPECT_EQ(failed.code(), absl::StatusCode::kInvalidArgument) << failed;
  EXPECT_NE(failed.message().find("INSERT INTO t"), std::string::npos) << failed;
  auto count = (*database)->prepare("SELECT count(*) FROM t");
  ASSERT_TRUE(*count->step());
  EXPECT_EQ(count->column_int64(0), 0);
  auto bad = (*database)->prepare("SELEKT 1");
  EXPECT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("SELEKT"), std::string::npos) << bad.status();
}

}  // namespace
}  // namespace telekern::sqlite
