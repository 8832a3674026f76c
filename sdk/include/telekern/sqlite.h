// A small RAII layer over SQLite3 (library telekern_sqlite): a database
// handle, prepared statements with typed binds and columns, and a
// transaction guard. Errors are absl::Status values naming the statement and
// SQLite's message. One Database is used from one thread at a time.
#pragma once

#include <absl/status/status.h>
#include <absl/status/statusor.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

struct sqlite3;
struct sqlite3_stmt;

namespace telekern::sqlite {

class Statement {
 public:
  Statement() = default;
  Statement(Statement&&) noexcept = default;
  Statement& operator=(Statement&&) noexcept = default;

  // Binds are 1-based, as in SQLite.
  Statement& bind(int index, int64_t value);
  Statement& bind(int index, double value);
  Statement& bind(int index, std::string_view text);
  Statement& bind_blob(int index, std::string_view bytes);
  Statement& bind_null(int index);
  // True when a row is available, false when done.
  absl::StatusOr<bool> step();
  // Runs to completion (statements without rows).
  absl::Status run();
  // Clears binds and rewinds for another run.
  void reset();

  int64_t column_int(int index) const;
  double column_double(int index) const;
  std::string column_text(int index) const;
  bool column_is_null(int index) const;
  int64_t changes() const;

 private:
  friend class Database;
  struct Finalize {
    void operator()(sqlite3_stmt* statement) const;
  };
  Statement(sqlite3* database, sqlite3_stmt* statement, std::string sql);
  sqlite3* database_ = nullptr;
  std::unique_ptr<sqlite3_stmt, Finalize> statement_;
  std::string sql_;
  absl::Status bind_error_;
};

class Database {
 public:
  // Opens (creates) the file with WAL journaling and a busy timeout; ":memory:" works too.
  static absl::StatusOr<Database> open(const std::filesystem::path& path);

  Database(Database&&) noexcept = default;
  Database& operator=(Database&&) noexcept = default;

  // Runs one or more statements without results.
  absl::Status exec(std::string_view sql);
  absl::StatusOr<Statement> prepare(std::string_view sql);
  int64_t last_insert_id() const;
  sqlite3* handle() const { return database_.get(); }

 private:
  struct Close {
    void operator()(sqlite3* database) const;
  };
  Database() = default;
  std::unique_ptr<sqlite3, Close> database_;
  std::string path_;
};

// BEGIN IMMEDIATE on construction; ROLLBACK in the destructor unless commit() succeeded.
class Transaction {
 public:
  explicit Transaction(Database& database);
  ~Transaction();
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  const absl::Status& begun() const { return begun_; }
  absl::Status commit();

 private:
  Database& database_;
  absl::Status begun_;
  bool done_ = false;
};

}  // namespace telekern::sqlite
